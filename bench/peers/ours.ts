/**
 * The qwenvl side of the peer benchmark, through the public API on the Qwen2-VL-2B-shaped
 * checkpoint: decode after a 512-token prompt (as llama.cpp's tg64 follows its pp512), the
 * prefill of that prompt under each precision, and the vision tower on one image.
 * @module
 */
import { loadModel, type Model, type PreparedInputs } from '../../lib/index.js';
import type { PeerArtifacts, OurWeights } from './artifacts.js';

export type Precision = 'exact' | 'fast';

/** One weights format loaded under both precisions (they share the mapped checkpoint and the weight cache). */
export type OurModels = Record<Precision, Model>;

/** Loads the checkpoint with `weights` under 'exact' and 'fast', `threads` compute threads. */
export async function loadOurs(a: PeerArtifacts, weights: OurWeights, threads: number): Promise<OurModels> {
  // No prefix cache: every timed run must prefill its prompt. The weight cache keeps q8/q4
  // conversions between runs of the suite (and between the two precisions).
  const load = (precision: Precision) =>
    loadModel(a.checkpoint, { weights, precision, threads, engine: { prefixCacheBytes: 0 }, weightCache: a.weightCache });
  const exact = await load('exact');
  try {
    return { exact, fast: await load('fast') };
  } catch (e) {
    exact.dispose();
    throw e;
  }
}

/**
 * The vision tower's third variant: precision 'fast' with the tower's linear weights in q8
 * (loadModel's `visionWeights`; its int8 GEMM where the CPU has no AMX). The language model as stored.
 */
export type VisionVariant = Precision | 'fast, vision q8';
export const VISION_VARIANTS: readonly VisionVariant[] = ['exact', 'fast', 'fast, vision q8'];

/** The models the vision rounds time: the bf16 pair and one loaded with visionWeights q8 under 'fast'. */
export type VisionModels = Record<VisionVariant, Model>;

export async function loadVisionQ8(a: PeerArtifacts, threads: number): Promise<Model> {
  // placement 'mmap': only its vision tower runs, so the language model need not be copied out of the mapping
  return loadModel(a.checkpoint, {
    visionWeights: 'q8', precision: 'fast', threads, placement: 'mmap', engine: { prefixCacheBytes: 0 }, weightCache: a.weightCache,
  });
}

export function disposeOurs(m: OurModels): void {
  m.exact.dispose();
  m.fast.dispose();
}

/** Words the Qwen tokenizer keeps as one token each after a space. */
const WORDS = ['the', 'city', 'and', 'its', 'people', 'walk', 'in', 'streets', 'of', 'light'];

/** A user message whose chat prompt is exactly `tokens` tokens, and its prepared inputs. */
export async function exactPrompt(model: Model, tokens: number): Promise<{ messages: { role: 'user'; content: string }[]; prepared: PreparedInputs }> {
  const make = (n: number) => [{ role: 'user' as const, content: Array.from({ length: n }, (_, i) => WORDS[i % WORDS.length]).join(' ') }];
  let words = tokens;
  for (let attempt = 0; attempt < 6; attempt++) {
    const messages = make(words);
    const prepared = await model.prepare(messages);
    if (prepared.seqLength === tokens) return { messages, prepared };
    words += tokens - prepared.seqLength;
  }
  throw new Error(`peers: could not build a prompt of exactly ${tokens} tokens`);
}

/** An end-of-sequence id outside the vocabulary: random weights must not stop a run early. */
const greedy = (model: Model, maxTokens: number) => ({ doSample: false, maxTokens, eosTokenIds: [model.config.text.vocabSize] });

/**
 * Decode tokens/s after the prompt: `tokens` steps timed from the first streamed chunk (which
 * arrives once the prompt is prefilled and its first token sampled) to the end of the stream.
 */
export async function ourDecode(model: Model, messages: { role: 'user'; content: string }[], tokens: number): Promise<number> {
  const it = model.stream(messages, greedy(model, tokens + 1));
  let step = await it.next();
  const t0 = performance.now();
  while (!step.done) step = await it.next();
  const seconds = (performance.now() - t0) / 1000;
  const steps = step.value.usage.completionTokens - 1;
  if (steps < tokens / 2) throw new Error(`peers: decode stopped after ${steps + 1} tokens`);
  return steps / seconds;
}

/** Seconds `fn` takes. */
export async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** Prefill tokens/s of the prepared prompt (logits of its last token). */
export async function ourPrefill(model: Model, prepared: PreparedInputs): Promise<number> {
  return prepared.seqLength / (await seconds(() => model.logits(prepared)));
}

/** The suite's test image: the pattern bench/model.ts uses, any size. */
export function testPixels(width: number, height: number): Uint8Array {
  return new Uint8Array(width * height * 3).map((_, i) => (i * 37) & 0xff);
}

/** Seconds of the vision tower on one image (preprocessing included, as a request runs it). */
export async function ourVision(model: Model, width: number, height: number, pixels: Uint8Array): Promise<number> {
  return seconds(() => model.encodeImages([{ data: pixels, width, height }]));
}
