/**
 * The token loop: vision encoding, prefill, then one decode step per token for every row of a
 * batch, sampling in native code. Rows that finish keep feeding the pad token (as transformers
 * does) until all rows are done. Every native call carries the request's cancel token; a
 * cancelled request rejects with E_ABORTED or E_DISPOSED and its session is freed at once.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
import type { ResolvedGenerateOptions } from '../generate/options.js';
import { native, type NativeForwardArgs, type NativeHandle } from '../native/binding.js';
import type { RequestCancel } from './cancel.js';
import { concatFloat, type PreparedInputs } from './inputs.js';

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
  if (S >= ctx.contextLength) {
    throw new QwenVLError(
      'E_CONTEXT_OVERFLOW',
      `the prompt has ${S} tokens but the model's context is ${ctx.contextLength} (lower the image resolution or shorten the prompt)`,
    );
  }
  const maxTokens = Math.min(o.maxTokens, ctx.contextLength - S);
  ctx.cancel.throwIfCancelled();
  const vision = await encodePrepared(ctx, p);
  const session = native.modelNewSession(ctx.handle, B, S + maxTokens);
  try {
    const first = await native.sessionForward(session, prefillArgs(ctx, p, vision, 'last'));
    let logits = new Float32Array(first.logits!.data);
    const V = logits.length / B;
    const seen = Array.from({ length: B }, (_, b) => Array.from(p.inputIds.subarray(b * S, (b + 1) * S)));
    const done = new Array<boolean>(B).fill(false);
    const eosIds = o.eosTokenIds.length > 0 ? o.eosTokenIds : ctx.eosTokenIds;
    const rng = native.samplingRng(o.seed);
    const params = {
      doSample: o.doSample,
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      minP: o.minP,
      repetitionPenalty: o.repetitionPenalty,
    };
    for (let step = 0; step < maxTokens; step++) {
      const tokens = new Int32Array(B).fill(-1);
      const eos = new Array<boolean>(B).fill(false);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const tok = native.sampleToken(logits.subarray(b * V, (b + 1) * V), params, Int32Array.from(seen[b]), rng);
        tokens[b] = tok;
        seen[b].push(tok);
        if (eosIds.includes(tok)) {
          eos[b] = true;
          done[b] = true;
        }
      }
      yield { tokens, eos };
      for (let b = 0; b < B; b++) if (isStopped(b)) done[b] = true;
      if (done.every(Boolean) || step + 1 === maxTokens) return;
      ctx.cancel.throwIfCancelled();
      const positions = new Int32Array(3 * B);
      const ids = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        ids[b] = tokens[b] >= 0 && !done[b] ? tokens[b] : ctx.padTokenId;
        const pos = S + step + p.ropeDeltas[b];
        positions[b] = positions[B + b] = positions[2 * B + b] = pos;
      }
      const next = await native.sessionForward(session, { ids, steps: 1, positions, logits: 'last', cancel: ctx.cancel.token });
      logits = new Float32Array(next.logits!.data);
    }
  } finally {
    native.disposeHandle(session);
  }
}
