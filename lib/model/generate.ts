/**
 * The token loop: vision encoding, prefill, then one decode step per token for the rows of a
 * batch still running. Sampling and each row's repetition history live in the native session, so
 * logits never travel to JS and a step costs no copy of the history. A row that finishes leaves the
 * step (its cache is no longer computed); the tokens of the others are what they would be had it
 * kept feeding pad tokens, as transformers does. Every native call carries the request's cancel token; a
 * cancelled request rejects with E_ABORTED or E_DISPOSED and its session is freed at once.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
import type { ResolvedGenerateOptions } from '../generate/options.js';
import { native, type NativeForwardArgs, type NativeHandle } from '../native/binding.js';
import type { RequestCancel } from './cancel.js';
import { concatFloat, type PreparedInputs } from './inputs.js';
import { contextOverflow } from './prompt-limits.js';

/** @internal One decode step: the token chosen for each row (-1 for rows already finished). */
export interface StepTokens {
  tokens: Int32Array;
  /** Rows that produced an end-of-sequence token at this step. */
  eos: boolean[];
}

/** @internal */
export interface LoopContext {
  /** The request's cancellation: every native call gets its token. */
  cancel: RequestCancel;
  handle: NativeHandle;
  hidden: number;
  imageTokenId: number;
  videoTokenId: number;
  eosTokenIds: readonly number[];
  padTokenId: number;
  contextLength: number;
  /** The KV pool's storage for generation sessions (default f32, exact; bf16 halves the memory). */
  kvDtype?: 'f32' | 'bf16';
}

/**
 * Rows of the vision embeddings each token takes (-1: a text token). The embeddings hold every
 * image's tokens first, then every video's, each in placeholder order.
 * @internal
 */
export function visualRows(ctx: LoopContext, ids: Int32Array, v: VisionFeatures): Int32Array {
  const rows = new Int32Array(ids.length).fill(-1);
  let img = 0, vid = v.imageTokens;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === ctx.imageTokenId) rows[i] = img++;
    else if (ids[i] === ctx.videoTokenId) rows[i] = vid++;
  }
  const total = v.embeds.length / ctx.hidden;
  if (img !== v.imageTokens || vid !== total) {
    throw new QwenVLError(
      'E_INPUT',
      `the prompt has ${img} image and ${vid - v.imageTokens} video tokens but the vision tower gave ${v.imageTokens} and ${total - v.imageTokens}`,
    );
  }
  return rows;
}

/** @internal Vision features of a prompt: merged embeddings and (Qwen3-VL) DeepStack features. */
export interface VisionFeatures {
  /** [image tokens + video tokens, hidden]: all images' rows, then all videos'. */
  embeds: Float32Array;
  /** Qwen3-VL: per DeepStack level, rows laid out as `embeds`. */
  deepstack: Float32Array[];
  imageTokens: number;
}

type EncodeResult = Awaited<ReturnType<typeof native.modelEncodeVision>>;


/**
 * @internal Runs the vision tower on the prepared images and videos (one call each, so each keeps
 * its own attention segments) and joins their features. `onResult` sees each call's raw output;
 * with it set, the calls also return their intermediate stages.
 */
export async function encodePrepared(
  ctx: LoopContext,
  p: PreparedInputs,
  onResult?: (kind: 'image' | 'video', r: EncodeResult) => void,
): Promise<VisionFeatures | null> {
  const runs: { kind: 'image' | 'video'; pixels: Float32Array; dim: number; grids: [number, number, number][] }[] = [];
  if (p.pixelValues) runs.push({ kind: 'image', pixels: p.pixelValues, dim: p.patchDim, grids: p.imageGridThw });
  if (p.pixelValuesVideos) runs.push({ kind: 'video', pixels: p.pixelValuesVideos, dim: p.videoPatchDim, grids: p.videoGridThw });
  if (runs.length === 0) return null;
  const results: EncodeResult[] = [];
  for (const run of runs) {
    const grids = Int32Array.from(run.grids.flat());
    const r = await native.modelEncodeVision(ctx.handle, run.pixels, run.dim, grids, onResult !== undefined, ctx.cancel.token);
    onResult?.(run.kind, r);
    results.push(r);
  }
  const levels = results[0].deepstack.length;
  return {
    embeds: concatFloat(results.map((r) => new Float32Array(r.embeds.data))),
    deepstack: Array.from({ length: levels }, (_, l) => concatFloat(results.map((r) => new Float32Array(r.deepstack[l].data)))),
    imageTokens: p.pixelValues ? results[0].embeds.shape[0] : 0,
  };
}

/** @internal The forward arguments that run a prepared prompt (the prefill) with its vision features. */
export function prefillArgs(
  ctx: LoopContext,
  p: PreparedInputs,
  v: VisionFeatures | null,
  logits: 'last' | 'all',
  trace = false,
): NativeForwardArgs {
  return {
    ids: p.inputIds,
    steps: p.seqLength,
    pad: Int32Array.from(p.padding),
    positions: p.positionIds,
    ...(v
      ? {
          visionEmbeds: v.embeds,
          visualRows: visualRows(ctx, p.inputIds, v),
          ...(v.deepstack.length > 0 ? { deepstack: v.deepstack } : {}),
        }
      : {}),
    logits,
    trace,
    cancel: ctx.cancel.token,
  };
}

/** @internal Runs a prepared prompt once in a session of its own (logits and traces, no generation). */
export async function prefillOnce(
  ctx: LoopContext,
  p: PreparedInputs,
  v: VisionFeatures | null,
  logits: 'last' | 'all',
  trace = false,
): ReturnType<typeof native.sessionForward> {
  const session = native.modelNewSession(ctx.handle, p.batchSize, p.seqLength);
  try {
    return await native.sessionForward(session, prefillArgs(ctx, p, v, logits, trace));
  } finally {
    native.disposeHandle(session);
  }
}

/** @internal Runs the prompt and yields each step's tokens until every row stops. */
export async function* tokenLoop(
  ctx: LoopContext,
  p: PreparedInputs,
  o: ResolvedGenerateOptions,
  isStopped: (row: number) => boolean,
): AsyncGenerator<StepTokens> {
  const B = p.batchSize, S = p.seqLength;
  if (S >= ctx.contextLength) throw contextOverflow(String(S), ctx.contextLength);
  const maxTokens = Math.min(o.maxTokens, ctx.contextLength - S);
  ctx.cancel.throwIfCancelled();
  const vision = await encodePrepared(ctx, p);
  const session = native.modelNewSession(ctx.handle, B, S + maxTokens, ctx.kvDtype ? { kvDtype: ctx.kvDtype } : undefined);
  try {
    const params = {
      doSample: o.doSample,
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      minP: o.minP,
      repetitionPenalty: o.repetitionPenalty,
    };
    // Each row's repetition history starts as its prompt row (left padding included, as
    // transformers counts input_ids) and grows natively with every token chosen.
    native.sessionSampling(session, { params: Array.from({ length: B }, () => params), seed: o.seed, history: p.inputIds });
    let chosen = (await native.sessionForward(session, { ...prefillArgs(ctx, p, vision, 'last'), logits: 'sample' })).tokens!;
    let running = Array.from({ length: B }, (_, b) => b);
    const eosIds = o.eosTokenIds.length > 0 ? o.eosTokenIds : ctx.eosTokenIds;
    for (let step = 0; step < maxTokens; step++) {
      const tokens = new Int32Array(B).fill(-1);
      const eos = new Array<boolean>(B).fill(false);
      running.forEach((b, i) => {
        tokens[b] = chosen[i];
        eos[b] = eosIds.includes(chosen[i]);
      });
      yield { tokens, eos };
      const still = running.filter((b) => !eos[b] && !isStopped(b));
      if (still.length === 0 || step + 1 === maxTokens) return;
      // A finished row's KV slot goes back to the pool at once.
      for (const b of running) if (!still.includes(b)) native.sessionFreeSequence(session, b);
      running = still;
      ctx.cancel.throwIfCancelled();
      // Only the running rows are computed; finished rows' caches stay as they are.
      const R = running.length;
      const positions = new Int32Array(3 * R);
      const ids = new Int32Array(R);
      running.forEach((b, i) => {
        ids[i] = tokens[b];
        positions[i] = positions[R + i] = positions[2 * R + i] = S + step + p.ropeDeltas[b];
      });
      const next = await native.sessionForward(session, {
        ids,
        steps: 1,
        positions,
        rows: Int32Array.from(running),
        logits: 'sample',
        cancel: ctx.cancel.token,
      });
      chosen = next.tokens!;
    }
  } finally {
    native.disposeHandle(session);
  }
}
