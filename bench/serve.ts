/**
 * The `serve` benchmark: `qwenvl serve`'s server (in process, on 127.0.0.1) over the synthetic
 * checkpoint at Qwen2-VL-2B widths (bench/synthetic.ts), driven by the official openai client.
 *
 * - Text: 1, 4 and 16 concurrent streams of distinct prompts; aggregate decode tokens/s (all streams'
 *   generated tokens over the wall time) and time to first token p50/p95, with the ratio of each
 *   level's throughput to one stream's.
 * - Image: requests with a 448x448 image, one at a time, first with a new image each time, then
 *   the same image again and again (a vision-feature cache would show as a shorter time to first
 *   token), and 4 concurrent streams of the same image.
 *
 * Random weights may end a stream early (an end-of-sequence token): the generated tokens counted are
 * the ones the server reports in `usage`. `QWENVL_BENCH_LAYERS` (default 4), `QWENVL_BENCH_VISION_DEPTH`
 * (default 2) and `QWENVL_BENCH_SERVE_TOKENS` (default 32) set the depths and the tokens per stream.
 * @module
 */
import OpenAI from 'openai';
import sharp from 'sharp';
import { loadModel } from '../lib/index.js';
import { createMediaResolver } from '../lib/openai/media.js';
import { createServer } from '../lib/server/server.js';
import { writeSyntheticCheckpoint } from './synthetic.js';

interface StreamStats {
  ttft: number;
  end: number;
  tokens: number;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** One stream from `start`: its time to first text, end, and generated tokens (seconds from `start`). */
async function oneStream(client: OpenAI, content: OpenAI.ChatCompletionUserMessageParam['content'], maxTokens: number, start: number): Promise<StreamStats> {
  const stream = await client.chat.completions.create({
    model: 'bench',
    messages: [{ role: 'user', content }],
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let ttft = -1;
  let tokens = 0;
  for await (const c of stream) {
    if (ttft < 0 && c.choices[0]?.delta.content) ttft = (performance.now() - start) / 1000;
    if (c.usage) tokens = c.usage.completion_tokens;
  }
  const end = (performance.now() - start) / 1000;
  return { ttft: ttft < 0 ? end : ttft, end, tokens };
}

/** `n` concurrent streams; aggregate tokens/s and TTFT percentiles. */
async function level(client: OpenAI, n: number, contentOf: (i: number) => OpenAI.ChatCompletionUserMessageParam['content'], maxTokens: number) {
  const start = performance.now();
  const stats = await Promise.all(Array.from({ length: n }, (_, i) => oneStream(client, contentOf(i), maxTokens, start)));
  const wall = Math.max(...stats.map((s) => s.end));
  const tokens = stats.reduce((t, s) => t + s.tokens, 0);
  const ttfts = stats.map((s) => s.ttft);
  return { n, tokens, wall, tps: tokens / wall, p50: percentile(ttfts, 50), p95: percentile(ttfts, 95) };
}

const ms = (s: number) => `${(s * 1e3).toFixed(0).padStart(6)} ms`;

/** A distinct 448x448 PNG per seed, as a data: URL. */
async function imageUrl(seed: number): Promise<string> {
  const side = 448;
  const pixels = Buffer.alloc(side * side * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + seed * 101) & 0xff;
  const png = await sharp(pixels, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

export async function runServe(): Promise<void> {
  const layers = Number(process.env.QWENVL_BENCH_LAYERS ?? 4);
  const depth = Number(process.env.QWENVL_BENCH_VISION_DEPTH ?? 2);
  const maxTokens = Number(process.env.QWENVL_BENCH_SERVE_TOKENS ?? 32);
  const ckpt = await writeSyntheticCheckpoint(layers, depth);
  try {
    console.log(`synthetic Qwen2-VL-2B widths: ${layers} decoder layers, ${depth} vision blocks; ${maxTokens} tokens per stream, greedy`);
    const model = await loadModel(ckpt.dir);
    const server = createServer({ model, modelId: 'bench', resolver: createMediaResolver(), maxRunning: 16, maxQueue: 64 });
    try {
      const base = await server.listen('127.0.0.1', 0);
      const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'bench', maxRetries: 0, timeout: 600_000 });
      const text = (i: number) => `Request ${i}: write a short poem about the number ${i * 7 + 3}.`;
      await level(client, 1, text, 4); // warm-up: threads, page faults of the mapped weights

      console.log('\ntext prompts       streams  tokens    wall      tokens/s   vs 1   TTFT p50    TTFT p95');
      let single = 0;
      for (const n of [1, 4, 16]) {
        const r = await level(client, n, text, maxTokens);
        if (n === 1) single = r.tps;
        console.log(`                   ${String(n).padStart(7)}  ${String(r.tokens).padStart(6)}  ${ms(r.wall)}  ${r.tps.toFixed(1).padStart(9)}  x${(r.tps / single).toFixed(2).padStart(4)}  ${ms(r.p50)}  ${ms(r.p95)}`);
      }

      const urls = await Promise.all([0, 1, 2, 3].map((i) => imageUrl(i + 1)));
      const withImage = (url: string) => (i: number): OpenAI.ChatCompletionUserMessageParam['content'] => [
        { type: 'image_url', image_url: { url } },
        { type: 'text', text: `Describe picture ${i}.` },
      ];
      console.log('\nimage prompts (448x448)                  TTFT each (one at a time)');
      const fresh: number[] = [];
      for (const url of urls) fresh.push((await level(client, 1, withImage(url), 4)).p50);
      console.log(`  a new image each time                  ${fresh.map(ms).join(' ')}`);
      const repeated: number[] = [];
      for (let i = 0; i < 4; i++) repeated.push((await level(client, 1, withImage(urls[0]), 4)).p50);
      console.log(`  the same image again                   ${repeated.map(ms).join(' ')}`);
      console.log(`  repeated / new (median)                x${(percentile(repeated, 50) / percentile(fresh, 50)).toFixed(2)} (below 1: the vision tower was skipped)`);
      const four = await level(client, 4, withImage(urls[0]), maxTokens);
      console.log(`  4 concurrent streams, same image       ${four.tps.toFixed(1)} tokens/s, TTFT p50 ${ms(four.p50).trim()}, p95 ${ms(four.p95).trim()}`);
      console.log('\nshared cores: repeat the run and compare; numbers from one run are noisy.');
    } finally {
      await server.drain(0);
      model.dispose();
    }
  } finally {
    await ckpt.remove();
  }
}
