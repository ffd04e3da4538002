/**
 * The generation path's client of the engine (lib/engine/engine.ts): the request's vision features
 * from the engine's vision stage (or its cache), then the prompt's rows as one group of sequences in
 * the model's shared running batch (runOnEngine). tokenLoop runs one request on a private
 * scheduler, one step at a time (the low-level path the engine tests compare against).
 * Sampling, each row's repetition history and the vision features live natively, so neither logits
 * nor features travel to JS. A row that finishes leaves the step and its KV slot is freed at once;
 * the tokens of the others are what they would be had it kept feeding pad tokens, as transformers
 * does. Every native call carries the request's cancel token; a cancelled request rejects with
 * E_ABORTED or E_DISPOSED and its session is freed at once. `logits()` and `trace()` use the
 * one-shot prefill here too (prefillOnce).
 * @internal
 * @module
 */
import type { Engine } from '../engine/engine.js';
import { Scheduler, type GroupSpec } from '../engine/scheduler.js';
import { QwenVLError } from '../errors.js';
import type { ResolvedGenerateOptions } from '../generate/options.js';
import { native, type NativeEncodedFeatures, type NativeForwardArgs, type NativeHandle, type NativeTokenConstraint } from '../native/binding.js';
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
  /** Most tokens one scheduler step computes (default unlimited: a prompt is prefilled in one step). */
  tokenBudget?: number;
  /** The vision merge size: vision tokens per item are t·h·w / merge². */
  spatialMergeSize: number;
  /** Structured output: each prompt row's constraint (the request's responseFormat). */
  constraints?: readonly NativeTokenConstraint[];
}

/**
 * Rows of the vision features each token takes (-1: a text token). The features hold every
 * image's tokens first, then every video's, each in placeholder order.
 * @internal
 */
export function visualRows(ctx: LoopContext, ids: Int32Array, v: { imageTokens: number; tokens: number }): Int32Array {
  const rows = new Int32Array(ids.length).fill(-1);
  let img = 0, vid = v.imageTokens;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === ctx.imageTokenId) rows[i] = img++;
    else if (ids[i] === ctx.videoTokenId) rows[i] = vid++;
  }
  if (img !== v.imageTokens || vid !== v.tokens) {
    throw new QwenVLError(
      'E_INPUT',
      `the prompt has ${img} image and ${vid - v.imageTokens} video tokens but the vision tower gave ${v.imageTokens} and ${v.tokens - v.imageTokens}`,
    );
  }
  return rows;
}

/** @internal Vision features of a prompt copied to JS (the low-level path: `trace()`). */
export interface VisionFeatures {
  /** [image tokens + video tokens, hidden]: all images' rows, then all videos'. */
  embeds: Float32Array;
  /** Qwen3-VL: per DeepStack level, rows laid out as `embeds`. */
  deepstack: Float32Array[];
  imageTokens: number;
  /** Rows of `embeds`. */
  tokens: number;
}

type EncodeResult = Awaited<ReturnType<typeof native.modelEncodeVision>>;

function visionRuns(p: PreparedInputs) {
  return {
    ...(p.pixelValues ? { images: { pixels: p.pixelValues, patchDim: p.patchDim, grids: Int32Array.from(p.imageGridThw.flat()) } } : {}),
    ...(p.pixelValuesVideos
      ? { videos: { pixels: p.pixelValuesVideos, patchDim: p.videoPatchDim, grids: Int32Array.from(p.videoGridThw.flat()) } }
      : {}),
  };
}

/**
 * @internal Runs the vision tower on the prepared images and videos and keeps the features
 * natively (the generation path). The caller disposes `features` (the scheduler does for the
 * groups it is given).
 */
export async function encodeFeatures(ctx: LoopContext, p: PreparedInputs): Promise<NativeEncodedFeatures | null> {
  const runs = visionRuns(p);
  if (!runs.images && !runs.videos) return null;
  return native.modelEncodeFeatures(ctx.handle, runs, ctx.cancel.token);
}

/**
 * @internal Runs the vision tower on the prepared images and videos (one call each, so each keeps
 * its own attention segments) and copies their joined features to JS: the low-level path of
 * `trace()`. `onResult` sees each call's raw output; with it set, the calls also return their
 * intermediate stages.
 */
export async function encodePrepared(
  ctx: LoopContext,
  p: PreparedInputs,
  onResult?: (kind: 'image' | 'video', r: EncodeResult) => void,
): Promise<VisionFeatures | null> {
  const runs = visionRuns(p);
  const list = [...(runs.images ? [['image', runs.images] as const] : []), ...(runs.videos ? [['video', runs.videos] as const] : [])];
  if (list.length === 0) return null;
  const results: EncodeResult[] = [];
  for (const [kind, run] of list) {
    const r = await native.modelEncodeVision(ctx.handle, run.pixels, run.patchDim, run.grids, onResult !== undefined, ctx.cancel.token);
    onResult?.(kind, r);
    results.push(r);
  }
  const levels = results[0].deepstack.length;
  const embeds = concatFloat(results.map((r) => new Float32Array(r.embeds.data)));
  return {
    embeds,
    deepstack: Array.from({ length: levels }, (_, l) => concatFloat(results.map((r) => new Float32Array(r.deepstack[l].data)))),
    imageTokens: runs.images ? results[0].embeds.shape[0] : 0,
    tokens: embeds.length / ctx.hidden,
  };
}

/**
 * @internal The forward arguments that run a prepared prompt (the prefill, left padded) with its
 * vision features: a native handle, or arrays copied to JS.
 */
export function prefillArgs(
  ctx: LoopContext,
  p: PreparedInputs,
  v: VisionFeatures | NativeEncodedFeatures | null,
  logits: 'last' | 'all',
  trace = false,
): NativeForwardArgs {
  const vision = !v
    ? {}
    : 'features' in v
      ? { features: v.features, visualRows: visualRows(ctx, p.inputIds, v) }
      : {
          visionEmbeds: v.embeds,
          visualRows: visualRows(ctx, p.inputIds, v),
          ...(v.deepstack.length > 0 ? { deepstack: v.deepstack } : {}),
        };
  return {
    ids: p.inputIds,
    steps: p.seqLength,
    pad: Int32Array.from(p.padding),
    positions: p.positionIds,
    ...vision,
    logits,
    trace,
    cancel: ctx.cancel.token,
  };
}

/** @internal Runs a prepared prompt once in a session of its own (logits and traces, no generation). */
export async function prefillOnce(
  ctx: LoopContext,
  p: PreparedInputs,
  v: VisionFeatures | NativeEncodedFeatures | null,
  logits: 'last' | 'all',
  trace = false,
): ReturnType<typeof native.sessionForward> {
  const session = native.modelNewSession(ctx.handle, p.batchSize, p.seqLength, ctx.kvDtype ? { kvDtype: ctx.kvDtype } : undefined);
  try {
    return await native.sessionForward(session, prefillArgs(ctx, p, v, logits, trace));
  } finally {
    native.disposeHandle(session);
  }
}

/**
 * @internal A prepared prompt's rows as one scheduler group. Row b is the prompt without its left
 * padding; its repetition history starts as the padded row (transformers counts the padding of
 * input_ids) and its positions are the batch's. The group takes `vision` (disposing it).
 */
export function promptGroup(
  ctx: LoopContext,
  p: PreparedInputs,
  o: ResolvedGenerateOptions,
  vision: NativeEncodedFeatures | null,
  maxTokens: number,
  onToken?: (row: number, token: number, eos: boolean) => unknown,
): GroupSpec {
  const B = p.batchSize, S = p.seqLength;
  const rows = vision ? visualRows(ctx, p.inputIds, vision) : null;
  return {
    sequences: Array.from({ length: B }, (_, b) => {
      const from = b * S + p.padding[b], to = (b + 1) * S, L = to - from;
      const positions = new Int32Array(3 * L);
      for (let a = 0; a < 3; a++) positions.set(p.positionIds.subarray(a * B * S + from, a * B * S + to), a * L);
      return {
        ids: p.inputIds.slice(from, to),
        positions,
        nextPosition: S + p.ropeDeltas[b],
        ...(rows ? { visualRows: rows.slice(from, to) } : {}),
        history: p.inputIds.subarray(b * S, to),
        maxTokens,
        ...(ctx.constraints?.[b] ? { constraint: ctx.constraints[b] } : {}),
        ...(onToken ? { onToken: (token: number, eos: boolean) => onToken(b, token, eos) === true } : {}),
      };
    }),
    sampling: {
      doSample: o.doSample,
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      minP: o.minP,
      repetitionPenalty: o.repetitionPenalty,
    },
    seed: o.seed,
    eosTokenIds: o.eosTokenIds.length > 0 ? o.eosTokenIds : ctx.eosTokenIds,
    ...(vision ? { features: vision.features } : {}),
  };
}

/**
 * @internal Runs the prompt's rows as one scheduler group and yields each step's tokens until
 * every row stops (see promptGroup).
 */
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
  const vision = await encodeFeatures(ctx, p);
  let scheduler: Scheduler | null = null;
  try {
    scheduler = new Scheduler({
      model: ctx.handle,
      cancel: ctx.cancel.token,
      ...(ctx.kvDtype ? { kvDtype: ctx.kvDtype } : {}),
      ...(ctx.tokenBudget ? { tokenBudget: ctx.tokenBudget } : {}),
    });
    let tokens = new Int32Array(B).fill(-1);
    let eos = new Array<boolean>(B).fill(false);
    let any = false;
    const sequences = scheduler.submit(
      promptGroup(ctx, p, o, vision, maxTokens, (b, token, isEos) => {
        tokens[b] = token;
        eos[b] = isEos;
        any = true;
      }),
    );
    while (await scheduler.step()) {
      if (!any) {
        // A step of prefill chunks short of the prompts' ends: nothing to hand out yet.
        ctx.cancel.throwIfCancelled();
        continue;
      }
      yield { tokens, eos };
      // A row its client stopped (a stop string) leaves before the next step; its slot is freed.
      sequences.forEach((s, b) => s.state !== 'done' && isStopped(b) && s.stop());
      tokens = new Int32Array(B).fill(-1);
      eos = new Array<boolean>(B).fill(false);
      any = false;
      if (!scheduler.idle) ctx.cancel.throwIfCancelled();
    }
  } finally {
    scheduler?.dispose();
    if (vision) native.disposeHandle(vision.features);
  }
}

/**
 * @internal Runs a prepared prompt's rows in the model's engine: a place in its queue, the vision
 * stage, then one group in the shared batch. `onToken` sees each row's tokens in order, as they
 * are chosen; returning true ends that row there (its KV freed before the next step). Resolves when
 * every row has ended; a cancelled request rejects with its cancellation (its sequences freed at
 * once), E_BUSY when the queue is full, E_INPUT when the request could never fit.
 */
export async function runOnEngine(
  ctx: LoopContext,
  engine: Engine,
  p: PreparedInputs,
  o: ResolvedGenerateOptions,
  onToken: (row: number, token: number, eos: boolean) => boolean | void,
): Promise<void> {
  const S = p.seqLength;
  if (S >= ctx.contextLength) throw contextOverflow(String(S), ctx.contextLength);
  const maxTokens = Math.min(o.maxTokens, ctx.contextLength - S);
  ctx.cancel.throwIfCancelled();
  // Refused at once when it could never run, before any vision work.
  engine.checkFits(promptGroup(ctx, p, o, null, maxTokens));
  const ticket = engine.enter();
  let vision: Awaited<ReturnType<Engine['features']>> = null;
  let off = () => {};
  try {
    vision = await engine.features(p, (cb) => ctx.cancel.onCancel(cb), () => ctx.cancel.error());
    ctx.cancel.throwIfCancelled();
    const group = promptGroup(ctx, p, o, vision?.enc ?? null, maxTokens, onToken);
    if (vision) {
      const v = vision;
      const merge = ctx.spatialMergeSize ** 2;
      const itemTokens = [...p.imageGridThw, ...p.videoGridThw].map(([t, h, w]) => (t * h * w) / merge);
      group.sequences.forEach((s) => s.visualRows && (s.tags = engine.tags(s.visualRows, v.items, itemTokens)));
      group.releaseFeatures = () => v.release();
    }
    group.onAdmit = () => ticket.release();
    const seqs = engine.submit(group);
    vision = null; // the group releases it now
    off = ctx.cancel.onCancel(() => seqs.forEach((s) => s.cancel()));
    await Promise.all(seqs.map((s) => s.done));
  } finally {
    off();
    ticket.release();
    vision?.release();
  }
  ctx.cancel.throwIfCancelled();
}
