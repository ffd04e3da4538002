// `qwenvl serve` against the official `openai` client: the real server on 127.0.0.1 (port 0) with
// the Qwen3-VL fixture checkpoint, plain and streamed answers, images and videos as data: URLs,
// abort mid-stream, 16 concurrent streams without cross-talk.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../lib/index.js';
import { createMediaResolver } from '../../lib/openai/media.js';
import { createServer, type QwenVLServer } from '../../lib/server/server.js';
import { checkpointDir, fixtureDir } from '../helpers/fixtures.js';
import { metricValue, scrape, waitFor } from './helpers.js';

const MODEL_ID = 'qwen3-vl-fixture';
const PNG = readFileSync(join(fixtureDir('qwen3-vl'), 'inputs', 'gradient_224x224.png'));
const PNG_URL = `data:image/png;base64,${PNG.toString('base64')}`;
const HAVE_FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0 && spawnSync('ffprobe', ['-version']).status === 0;

let model: Model;
let server: QwenVLServer;
let base: string;
let client: OpenAI;

beforeAll(async () => {
  model = await loadModel(checkpointDir('qwen3-vl'));
  server = createServer({ model, modelId: MODEL_ID, resolver: createMediaResolver() });
  base = await server.listen('127.0.0.1', 0);
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await server?.drain(0);
  model?.dispose();
});

const ask = (text: string): OpenAI.ChatCompletionMessageParam[] => [{ role: 'user', content: text }];

describe('openai client', () => {
  it('lists the model', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual([MODEL_ID]);
    expect((await client.models.retrieve(MODEL_ID)).id).toBe(MODEL_ID);
  });

  it('answers without streaming, as the library does', async () => {
    const r = await client.chat.completions.create({ model: MODEL_ID, messages: ask('Hello there'), max_tokens: 6, temperature: 0 });
    const direct = await model.chat([{ role: 'user', content: 'Hello there' }], { maxTokens: 6, temperature: 0 });
    expect(r.object).toBe('chat.completion');
    expect(r.id).toMatch(/^chatcmpl-/);
    expect(r.choices[0].message.content).toBe(direct.text);
    expect(r.choices[0].finish_reason).toBe('length');
    expect(r.usage).toEqual({ prompt_tokens: direct.usage.promptTokens, completion_tokens: 6, total_tokens: direct.usage.totalTokens });
  });

  it('streams chunks that join to the same answer, ending with the usage', async () => {
    const plain = await client.chat.completions.create({ model: MODEL_ID, messages: ask('Tell me'), max_tokens: 8, temperature: 0 });
    const stream = await client.chat.completions.create({
      model: MODEL_ID, messages: ask('Tell me'), max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    let text = '';
    const reasons: (string | null)[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    let first = true;
    for await (const c of stream) {
      expect(c.object).toBe('chat.completion.chunk');
      if (first) expect(c.choices[0].delta.role).toBe('assistant');
      first = false;
      if (c.choices.length > 0) {
        text += c.choices[0].delta.content ?? '';
        reasons.push(c.choices[0].finish_reason);
      }
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe(plain.choices[0].message.content);
    expect(reasons.at(-1)).toBe('length');
    expect(reasons.slice(0, -1).every((r) => r === null)).toBe(true);
    expect(usage).toEqual(plain.usage);
  });

  it('stops at a stop string', async () => {
    const full = await client.chat.completions.create({ model: MODEL_ID, messages: ask('Go on'), max_tokens: 12, temperature: 0 });
    const text = full.choices[0].message.content!;
    const cut = text.slice(2, 5);
    const r = await client.chat.completions.create({ model: MODEL_ID, messages: ask('Go on'), max_tokens: 12, temperature: 0, stop: [cut] });
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.choices[0].message.content).toBe(text.slice(0, text.indexOf(cut)));
  });

  it('reads an image data: URL', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'user', content: [{ type: 'image_url', image_url: { url: PNG_URL } }, { type: 'text', text: 'What is this?' }] },
    ];
    const r = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 5, temperature: 0 });
    const direct = await model.chat(
      [{ role: 'user', content: [{ type: 'image', image: PNG }, { type: 'text', text: 'What is this?' }] }],
      { maxTokens: 5, temperature: 0 },
    );
    expect(r.choices[0].message.content).toBe(direct.text);
    expect(r.usage!.prompt_tokens).toBe(direct.usage.promptTokens);
    expect(r.usage!.prompt_tokens).toBeGreaterThan(40);
  });

  it('refuses a local path and an http URL by default, naming the part', async () => {
    for (const url of [join(fixtureDir('qwen3-vl'), 'inputs', 'gradient_224x224.png'), 'http://127.0.0.1:1/x.png']) {
      const err = await client.chat.completions
        .create({ model: MODEL_ID, messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }, { type: 'image_url', image_url: { url } }] }] })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.APIError>).param).toBe('messages[0].content[1].image_url.url');
    }
  });

  it.skipIf(!HAVE_FFMPEG)('reads a video data: URL (mp4 made by ffmpeg), sampling set through mm_processor_kwargs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qwenvl-serve-video-'));
    try {
      const file = join(dir, 'clip.mp4');
      const made = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=4', '-t', '6', '-c:v', 'mpeg4', file]);
      expect(made.status).toBe(0);
      const url = `data:video/mp4;base64,${readFileSync(file).toString('base64')}`;
      const body = {
        model: MODEL_ID,
        max_tokens: 4,
        temperature: 0,
        mm_processor_kwargs: { fps: 2 },
        messages: [{ role: 'user', content: [{ type: 'video_url', video_url: { url } }, { type: 'text', text: 'What happens?' }] }],
      };
      const r = await client.chat.completions.create(body as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);
      const direct = await model.chat(
        [{ role: 'user', content: [{ type: 'video', video: file, fps: 2 }, { type: 'text', text: 'What happens?' }] }],
        { maxTokens: 4, temperature: 0 },
      );
      expect(r.choices[0].message.content).toBe(direct.text);
      expect(r.usage!.prompt_tokens).toBe(direct.usage.promptTokens);
      // Fewer frames, fewer tokens: the sampling reached the video processor.
      const fewer = await client.chat.completions.create({ ...body, mm_processor_kwargs: { fps: 1 } } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);
      expect(fewer.usage!.prompt_tokens).toBeLessThan(r.usage!.prompt_tokens);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops the generation when the client aborts mid-stream', async () => {
    const before = metricValue(await scrape(base), 'qwenvl_requests_aborted_total{reason="client"}');
    const tokensBefore = metricValue(await scrape(base), 'qwenvl_generation_tokens_total');
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: MODEL_ID, messages: ask('Write a long story'), max_tokens: 4000, temperature: 0, stream: true },
      { signal: controller.signal },
    );
    let chunks = 0;
    try {
      for await (const c of stream) {
        if (c.choices[0]?.delta.content) chunks++;
        if (chunks === 3) controller.abort();
      }
    } catch (e) {
      // The client may end the iteration quietly or with its abort error.
      expect(e).toBeInstanceOf(OpenAI.APIUserAbortError);
    }
    expect(chunks).toBeGreaterThanOrEqual(3);
    // The server sees the disconnect, frees the slot and counts the abort.
    await waitFor(async () => {
      const m = await scrape(base);
      return metricValue(m, 'qwenvl_requests_running') === 0 && metricValue(m, 'qwenvl_requests_aborted_total{reason="client"}') === before + 1;
    });
    const generated = metricValue(await scrape(base), 'qwenvl_generation_tokens_total') - tokensBefore;
    expect(generated).toBeGreaterThanOrEqual(3);
    expect(generated).toBeLessThan(4000);
  });

  it('runs 16 concurrent streams, each equal to the same request alone', async () => {
    const prompts = Array.from({ length: 16 }, (_, i) => `Request number ${i}: ${'abcdefghijklmnop'.slice(0, i + 1)}`);
    const alone: string[] = [];
    for (const p of prompts) {
      const r = await client.chat.completions.create({ model: MODEL_ID, messages: ask(p), max_tokens: 10, temperature: 0 });
      alone.push(r.choices[0].message.content!);
    }
    const together = await Promise.all(
      prompts.map(async (p) => {
        const s = await client.chat.completions.create({ model: MODEL_ID, messages: ask(p), max_tokens: 10, temperature: 0, stream: true });
        let text = '';
        for await (const c of s) text += c.choices[0]?.delta.content ?? '';
        return text;
      }),
    );
    expect(together).toEqual(alone);
    // Distinct prompts gave distinct answers somewhere: a mix-up between streams would show.
    expect(new Set(alone).size).toBeGreaterThan(1);
    const m = await scrape(base);
    expect(metricValue(m, 'qwenvl_requests_running')).toBe(0);
    expect(metricValue(m, 'qwenvl_time_to_first_token_seconds_count')).toBeGreaterThanOrEqual(32);
  });

  it('reports 404 for another model name, in OpenAI error shape', async () => {
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages: ask('x') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('model_not_found');
  });
});
