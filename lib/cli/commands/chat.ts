import { readFile, writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { GroundingItem } from '../../grounding/types.js';
import type { ContentPart } from '../../text/chat-template.js';
import type { ToolDefinition } from '../../text/tool-messages.js';
import { ChatPrinter } from '../chat-output.js';
import { UsageError, integerOption, kvCacheOption, numberOption, stringList, stringValue, threadsOption } from '../args.js';
import type { Command } from '../command.js';

const HELP = `usage: qwenvl chat --model DIR [--image PATH]... [--video PATH]... [options] "PROMPT"

Answers one prompt about images and videos; the answer streams to stdout.

options:
  --model DIR|ORG/NAME checkpoint folder (config.json, *.safetensors, tokenizer files) or a Hub id
                       (fetched into the Hugging Face cache on first use); required
  --image PATH         an image file, file: or data: URL (repeatable)
  --video PATH         a video file (repeatable; needs ffmpeg)
  --video-fps F        frames sampled per second of each video (number > 0)
  --video-max-frames N most frames sampled from each video (integer >= 1)
  --system TEXT        a system message
  --max-tokens N       most tokens to generate (integer >= 1)
  --temperature T      sampling temperature (number >= 0; 0 = greedy)
  --top-p P            nucleus sampling mass (number in (0, 1])
  --top-k K            sample among the K most likely tokens (integer >= 0; 0 = all)
  --seed S             sampling seed (integer >= 0)
  --threads N          compute threads (integer from 1 to 1024; default: physical cores)
  --precision P        exact (default) or fast: bf16 prefill and vision tower on AMX /
                       AVX512-BF16, bf16 KV cache (see README, "Precision")
  --kv-cache T         f32 (default, exact; bf16 under --precision fast) or bf16: keys and
                       values stored at half the memory (see README, "Concurrency and caches")
  --draw OUT.png       draw the reply's boxes and points on the image (needs --image); with
                       several images, one file each: OUT-1.png, OUT-2.png, ...
  --tools FILE         a JSON file of tools the model may call (OpenAI's "tools" array, or an
                       object with one); each call prints on stdout as one JSON line
  --json-schema FILE   answer with JSON valid against the JSON schema in FILE (constrained
                       decoding; an unsupported keyword is refused before anything runs)
  --json               answer with a JSON object (any)
  --hide-reasoning     do not print a thinking model's reasoning (it goes to stderr, dimmed
                       on a terminal, so stdout holds the answer alone)
  --no-thinking        ask the chat template to skip thinking (enable_thinking: false)
  -h, --help           show this help
`;

/** The tools of a --tools file: a JSON array of tools, or an object whose "tools" is one (checked by chat). */
async function readToolsFile(file: string): Promise<ToolDefinition[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`--tools: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--tools: ${file} is not JSON (${(e as Error).message})`);
  }
  const list = Array.isArray(v) ? v : typeof v === 'object' && v !== null ? (v as { tools?: unknown }).tools : undefined;
  if (!Array.isArray(list)) throw new UsageError(`--tools: ${file} must hold a JSON array of tools (or {"tools": [...]})`);
  return list as ToolDefinition[];
}

/** The JSON schema of a --json-schema file. */
async function readSchemaFile(file: string): Promise<object | boolean> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`--json-schema: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text) as object | boolean;
  } catch (e) {
    throw new UsageError(`--json-schema: ${file} is not JSON (${(e as Error).message})`);
  }
}

/** OUT.png for one image; OUT-1.png, OUT-2.png, … for several. */
function drawPath(out: string, index: number, count: number): string {
  if (count === 1) return out;
  const ext = extname(out);
  return `${out.slice(0, out.length - ext.length)}-${index + 1}${ext}`;
}

/**
 * Draws `items` on each of `images` (the --image paths, in order) and writes the PNGs; returns the
 * files written (none when there is nothing to draw). @internal
 */
export async function drawReply(images: readonly string[], items: readonly GroundingItem[], out: string): Promise<string[]> {
  if (items.length === 0) return [];
  const { drawGrounding } = await import('../../grounding/draw.js');
  const written: string[] = [];
  for (let i = 0; i < images.length; i++) {
    const path = drawPath(out, i, images.length);
    await writeFile(path, await drawGrounding(images[i], items, { image: i }));
    written.push(path);
  }
  return written;
}

/** `qwenvl chat --model DIR [--image PATH]... [--video PATH]... "prompt"`: streams the answer to stdout. */
export const chatCommand: Command = {
  name: 'chat',
  summary: 'answer one prompt about images and videos, streaming to stdout',
  help: HELP,
  options: {
    model: { type: 'string' },
    image: { type: 'string', multiple: true },
    video: { type: 'string', multiple: true },
    system: { type: 'string' },
    'max-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    'top-k': { type: 'string' },
    seed: { type: 'string' },
    threads: { type: 'string' },
    precision: { type: 'string' },
    'kv-cache': { type: 'string' },
    'video-fps': { type: 'string' },
    'video-max-frames': { type: 'string' },
    draw: { type: 'string' },
    tools: { type: 'string' },
    'json-schema': { type: 'string' },
    json: { type: 'boolean' },
    'hide-reasoning': { type: 'boolean' },
    'no-thinking': { type: 'boolean' },
  },
  async run({ values, positionals, signal }) {
    const model = stringValue(values, 'model');
    if (model === undefined) throw new UsageError('--model DIR is required');
    if (positionals.length === 0) throw new UsageError('a prompt is required');
    if (positionals.length > 1) {
      throw new UsageError(`give the prompt as one argument (quote it); got ${positionals.length} arguments`);
    }
    const prompt = positionals[0];
    const draw = stringValue(values, 'draw');
    if (draw !== undefined && stringList(values, 'image').length === 0) throw new UsageError('--draw needs an --image to draw on');
    if (draw === '') throw new UsageError('--draw needs a file name');
    const sampling = {
      maxTokens: integerOption(values, 'max-tokens', 1),
      temperature: numberOption(values, 'temperature', (x) => x >= 0, 'a number >= 0'),
      topP: numberOption(values, 'top-p', (x) => x > 0 && x <= 1, 'a number in (0, 1]'),
      topK: integerOption(values, 'top-k', 0),
      seed: integerOption(values, 'seed', 0),
    };
    const threads = threadsOption(values);
    const toolsFile = stringValue(values, 'tools');
    const tools = toolsFile === undefined ? undefined : await readToolsFile(toolsFile);
    const schemaFile = stringValue(values, 'json-schema');
    if (schemaFile !== undefined && values.json === true) throw new UsageError('give --json-schema FILE or --json, not both');
    const responseFormat =
      schemaFile !== undefined
        ? { type: 'json_schema' as const, schema: await readSchemaFile(schemaFile) }
        : values.json === true
          ? { type: 'json_object' as const }
          : undefined;
    const precision = stringValue(values, 'precision');
    if (precision !== undefined && precision !== 'exact' && precision !== 'fast') {
      throw new UsageError(`--precision must be exact or fast, got '${precision}'`);
    }
    const kvCache = kvCacheOption(values);
    const videoFps = numberOption(values, 'video-fps', (x) => x > 0, 'a number > 0');
    const videoMaxFrames = integerOption(values, 'video-max-frames', 1);
    const videoSampling = {
      ...(videoFps !== undefined ? { fps: videoFps } : {}),
      ...(videoMaxFrames !== undefined ? { max_frames: videoMaxFrames } : {}),
    };

    // Loaded only now, so that help and usage errors work without the native addon.
    const { loadModel } = await import('../../model/load.js');
    const m = await loadModel(model, {
      ...(threads !== undefined ? { threads } : {}),
      ...(precision !== undefined ? { precision } : {}),
      ...(kvCache !== undefined ? { engine: { kvCache } } : {}),
    });
    try {
      const content: ContentPart[] = [
        ...stringList(values, 'image').map((p) => ({ type: 'image', image: p }) as ContentPart),
        // Sampling of every --video (qwen-vl-utils' fps / max_frames keys).
        ...stringList(values, 'video').map((p) => ({ type: 'video', video: p, ...videoSampling }) as ContentPart),
        { type: 'text', text: prompt },
      ];
      const system = stringValue(values, 'system');
      const messages = [...(system !== undefined ? [{ role: 'system', content: system }] : []), { role: 'user', content }];
      const options = {
        ...Object.fromEntries(Object.entries(sampling).filter(([, v]) => v !== undefined)),
        ...(tools !== undefined ? { tools } : {}),
        ...(responseFormat !== undefined ? { responseFormat } : {}),
        ...(values['no-thinking'] === true ? { templateVariables: { enable_thinking: false } } : {}),
      };
      const printer = new ChatPrinter({
        stdout: (t) => void process.stdout.write(t),
        stderr: (t) => void process.stderr.write(t),
        dim: process.stderr.isTTY === true,
        showReasoning: values['hide-reasoning'] !== true,
      });
      // A closed stdout aborts generation: the stream then ends with what it has.
      const stream = m.streamEvents(messages, { ...options, signal });
      let step = await stream.next();
      for (; !step.done; step = await stream.next()) printer.event(step.value);
      printer.end();
      if (draw !== undefined) {
        const written = await drawReply(stringList(values, 'image'), step.value.grounding ?? [], draw);
        process.stderr.write(written.length > 0 ? `drew ${step.value.grounding!.length} box(es)/point(s): ${written.join(', ')}\n` : `the reply has no boxes or points; nothing drawn to ${draw}\n`);
      }
      return 0;
    } finally {
      m.dispose();
    }
  },
};
