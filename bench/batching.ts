/**
 * The `batching` benchmark: what the engine's shared running batch gives concurrent callers, on the
 * synthetic checkpoint at Qwen2-VL-2B widths (bench/synthetic.ts).
 *
 * 1. Concurrent streams: 1, 4 and 16 `stream()` calls started together (different prompts, greedy,
 *    a fixed number of new tokens each). Aggregate decode tokens/s counts the chunks (one per token,
 *    nearly) that arrive while every stream decodes, from the last stream's first chunk to the
 *    first stream's end, over that window; end-to-end tokens/s is all tokens over the whole run
 *    (the prompts' prefill included). Time to first token is each stream's wait for its first
 *    chunk (p50 / p95), beside one prompt's alone.
 *    Decode is memory-bound: one pass over the weights serves every running sequence, so the
 *    aggregate should grow nearly with the streams (the issue asks ≥ 5× at 16 streams).
 * 2. Vision cache: the same image asked twice, with the cache and without (`visionCacheBytes: 0`):
 *    the second request's time to its first token.
 *
 * `QWENVL_BENCH_LAYERS` (default 4) sets the decoder depth, `QWENVL_BENCH_VISION_DEPTH` (default 8)
 * the vision tower's, `QWENVL_BENCH_NEW_TOKENS` (default 96) the tokens each stream generates,
 * `QWENVL_BENCH_ROUNDS` (default 3) how many times the 1/4/16 series runs.
 * @module
 */
import { loadModel, type Model } from '../lib/index.js';
import { native } from '../lib/native/binding.js';
import { TEXT, writeSyntheticCheckpoint } from './synthetic.js';

/** An end-of-sequence id outside the vocabulary: random weights must not stop a run early. */
const NO_EOS = [TEXT.vocab];

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

/** A text prompt of roughly `words` tokens, different for each `i`. */
const prompt = (words: number, i: number) => [
  { role: 'user' as const, content: `request ${i}: ` + Array.from({ length: words }, (_, k) => `w${(k * 7 + i * 13) % 89}`).join(' ') },
];

interface StreamRun {
  /** ms from the start to the first chunk. */
  ttft: number;
  /** ms from the start to the end. */
  end: number;
  /** ms from the start to each chunk. */
  at: number[];
  tokens: number;
}

async function oneStream(model: Model, i: number, words: number, tokens: number, t0: number): Promise<StreamRun> {
  const it = model.stream(prompt(words, i), { doSample: false, maxTokens: tokens, eosTokenIds: NO_EOS });
  const at: number[] = [];
  for (;;) {
    const r = await it.next();
    const now = performance.now() - t0;
    if (r.done) return { ttft: at[0] ?? now, end: now, at, tokens: r.value.tokens.length };
    at.push(now);
  }
}

async function concurrent(model: Model, n: number, words: number, tokens: number) {
  const t0 = performance.now();
  const runs = await Promise.all(Array.from({ length: n }, (_, i) => oneStream(model, i, words, tokens, t0)));
  const lastFirst = Math.max(...runs.map((r) => r.ttft));
  const firstEnd = Math.min(...runs.map((r) => r.end));
  const lastEnd = Math.max(...runs.map((r) => r.end));
  // Chunks after lastFirst up to firstEnd: every stream decoding, no prefill left.
  const inWindow = runs.reduce((s, r) => s + r.at.filter((t) => t > lastFirst && t <= firstEnd).length, 0);
  return {
    n,
    decodeTps: firstEnd > lastFirst ? inWindow / ((firstEnd - lastFirst) / 1000) : NaN,
    window: firstEnd - lastFirst,
    endToEndTps: runs.reduce((s, r) => s + r.tokens, 0) / (lastEnd / 1000),
    ttftP50: pct(runs.map((r) => r.ttft), 50),
    ttftP95: pct(runs.map((r) => r.ttft), 95),
  };
}

/** A 448×448 RGB image (256 vision tokens after merging), given as raw pixels. */
function testImage(): { data: Uint8Array; width: number; height: number } {
  const width = 448, height = 448;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 7)) & 255;
  return { data, width, height };
}

async function visionCache(dir: string, image: ReturnType<typeof testImage>): Promise<void> {
  const ask = [{ role: 'user' as const, content: [{ type: 'image' as const, image }, { type: 'text' as const, text: 'What is it?' }] }];
  for (const cached of [false, true]) {
    const model = await loadModel(dir, { engine: cached ? {} : { visionCacheBytes: 0 } });
    try {
      const times: number[] = [];
      for (let i = 0; i < 2; i++) {
        const t0 = performance.now();
        await model.chat(ask, { doSample: false, maxTokens: 1, eosTokenIds: NO_EOS });
        times.push(performance.now() - t0);
      }
      const s = model.stats();
      console.log(
        `  ${cached ? 'with cache   ' : 'without cache'}  first ${times[0].toFixed(0)} ms, repeat ${times[1].toFixed(0)} ms ` +
          `(vision encodes ${s.visionEncodes}, hits ${s.visionCache.hits}, saved ${s.visionCache.savedSeconds.toFixed(2)} s)`,
      );
    } finally {
      model.dispose();
    }
  }
}

export async function runBatching(): Promise<void> {
  const layers = Number(process.env.QWENVL_BENCH_LAYERS ?? 4);
  const depth = Number(process.env.QWENVL_BENCH_VISION_DEPTH ?? 8);
  const tokens = Number(process.env.QWENVL_BENCH_NEW_TOKENS ?? 96);
  const rounds = Number(process.env.QWENVL_BENCH_ROUNDS ?? 3);
  const words = 48;
  const ckpt = await writeSyntheticCheckpoint(layers, depth);
  try {
    console.log(
      `synthetic Qwen2-VL-2B widths: ${layers} decoder layers, ${depth} vision blocks, ${(ckpt.bytes / 2 ** 30).toFixed(2)} GiB bf16, ` +
        `${native.info().threads} threads; ${tokens} new tokens per stream, prompts of ~${words + 12} tokens`,
    );
    const model = await loadModel(ckpt.dir, { engine: { prefixCacheBytes: 0 } });
    try {
      // Warm-up (weights paged in, scratch arenas grown), then one prompt's prefill alone.
      await model.chat(prompt(words, 99), { doSample: false, maxTokens: 2, eosTokenIds: NO_EOS });
      const t0 = performance.now();
      await model.chat(prompt(words, 98), { doSample: false, maxTokens: 1, eosTokenIds: NO_EOS });
      const prefillMs = performance.now() - t0;
      console.log(`one prompt alone     time to first token ${prefillMs.toFixed(0)} ms`);
      console.log('streams  decode tok/s  (× one)  window ms  end-to-end tok/s  TTFT p50 ms  TTFT p95 ms  (p95 / one prompt alone)');
      // Rounds of 1, 4, 16 back to back: on a shared machine the load drifts, so each round's ratio
      // compares runs made close together.
      const ratios: number[] = [];
      for (let round = 0; round < rounds; round++) {
        const rows = [];
        for (const n of [1, 4, 16]) rows.push(await concurrent(model, n, words, tokens));
        const base = rows[0].decodeTps;
        ratios.push(rows[2].decodeTps / base);
        console.log(`round ${round + 1}`);
        for (const r of rows) {
        console.log(
          `${String(r.n).padStart(7)}  ${r.decodeTps.toFixed(1).padStart(12)}  ${(r.decodeTps / base).toFixed(2).padStart(7)}  ${r.window.toFixed(0).padStart(9)}  ` +
            `${r.endToEndTps.toFixed(1).padStart(16)}  ${r.ttftP50.toFixed(0).padStart(11)}  ${r.ttftP95.toFixed(0).padStart(11)}  ` +
            `${(r.ttftP95 / prefillMs).toFixed(2).padStart(8)}`,
          );
        }
      }
      console.log(`16 streams / one stream, decode tok/s, per round: ${ratios.map((r) => r.toFixed(2)).join(', ')} (median ${pct(ratios, 50).toFixed(2)})`);
    } finally {
      model.dispose();
    }
    console.log('vision cache: the same image twice (maxTokens 1)');
    await visionCache(ckpt.dir, testImage());
  } finally {
    await ckpt.remove();
  }
}
