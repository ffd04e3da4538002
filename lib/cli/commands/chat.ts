import { inputError } from '../../errors.js';
import { loadModel } from '../../model/load.js';
import type { ContentPart } from '../../text/chat-template.js';
import type { Command } from '../main.js';

const USAGE =
  'usage: qwenvl chat --model DIR [--image PATH]... [--video PATH]... [--system TEXT] [--max-tokens N] [--temperature T]\n' +
  '                   [--top-p P] [--top-k K] [--seed S] [--threads N] [--video-fps F] [--video-max-frames N] "prompt"\n';

interface ChatArgs {
  model?: string;
  images: string[];
  videos: string[];
  system?: string;
  prompt?: string;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  threads?: number;
  videoFps?: number;
  videoMaxFrames?: number;
}

function number(flag: string, v: string | undefined): number {
  const n = Number(v);
  if (v === undefined || v === '' || !Number.isFinite(n)) throw inputError(`${flag} needs a number`);
  return n;
}

function parse(args: string[]): ChatArgs {
  const out: ChatArgs = { images: [], videos: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = () => {
      const v = args[++i];
      if (v === undefined) throw inputError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--model': out.model = next(); break;
      case '--image': out.images.push(next()); break;
      case '--video': out.videos.push(next()); break;
      case '--system': out.system = next(); break;
      case '--max-tokens': out.maxTokens = number(a, next()); break;
      case '--temperature': out.temperature = number(a, next()); break;
      case '--top-p': out.topP = number(a, next()); break;
      case '--top-k': out.topK = number(a, next()); break;
      case '--seed': out.seed = number(a, next()); break;
      case '--threads': out.threads = number(a, next()); break;
      case '--video-fps': out.videoFps = number(a, next()); break;
      case '--video-max-frames': out.videoMaxFrames = number(a, next()); break;
      default:
        if (a.startsWith('--')) throw inputError(`unknown option ${a}`);
        if (out.prompt !== undefined) throw inputError('give the prompt as one argument (quote it)');
        out.prompt = a;
    }
  }
  return out;
}

/** `qwenvl chat --model DIR [--image PATH]... [--video PATH]... "prompt"`: streams the answer to stdout. */
export const chatCommand: Command = {
  name: 'chat',
  summary: 'answer one prompt about images and videos, streaming to stdout',
  async run(args) {
    const a = parse(args);
    if (!a.model || a.prompt === undefined) {
      process.stderr.write(USAGE);
      return 2;
    }
    const model = await loadModel(a.model, a.threads !== undefined ? { threads: a.threads } : {});
    try {
      const content: ContentPart[] = [
        ...a.images.map((p) => ({ type: 'image', image: p }) as ContentPart),
        // Sampling of every --video (qwen-vl-utils' fps / max_frames keys).
        ...a.videos.map((p) => ({
          type: 'video',
          video: p,
          ...(a.videoFps !== undefined ? { fps: a.videoFps } : {}),
          ...(a.videoMaxFrames !== undefined ? { max_frames: a.videoMaxFrames } : {}),
        }) as ContentPart),
        { type: 'text', text: a.prompt },
      ];
      const messages = [...(a.system !== undefined ? [{ role: 'system', content: a.system }] : []), { role: 'user', content }];
      const stream = model.stream(messages, {
        ...(a.maxTokens !== undefined ? { maxTokens: a.maxTokens } : {}),
        ...(a.temperature !== undefined ? { temperature: a.temperature } : {}),
        ...(a.topP !== undefined ? { topP: a.topP } : {}),
        ...(a.topK !== undefined ? { topK: a.topK } : {}),
        ...(a.seed !== undefined ? { seed: a.seed } : {}),
      });
      for await (const chunk of stream) process.stdout.write(chunk);
      process.stdout.write('\n');
      return 0;
    } finally {
      model.dispose();
    }
  },
};
