/**
 * The typed contract of the native addon and its loader. Nothing else in lib/ calls
 * node-gyp-build; everything reaches native code through `native`.
 * @internal
 * @module
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { PeakKind } from '../bench/floors.js';
import { QwenVLError } from '../errors.js';
import type { NativeModelSpec, WeightNames } from '../model/native-spec.js';
import type { PlacementProbe, WeightPlacement } from '../model/placement.js';

/** @internal */
export interface NativeOpInfo {
  chosen: string;
  variants: { name: string; isa: string; device: string; available: boolean; formats?: string[] }[];
  /** Ops that read weights: the variant run for each weight format. */
  chosenByFormat?: Record<string, string>;
}

/** One row of native/core/dtype.h's table. @internal */
export interface NativeDtypeRow {
  name: string;
  code: number;
  bytes: number;
}

/** One row of the weight-format traits table (native/core/weight_format.cpp). @internal */
export interface NativeWeightFormatRow {
  name: string;
  code: number;
  block: number;
  blockBytes: number;
  storage: string;
  activation: string;
}

/** @internal */
export interface NativeInfo {
  cpu: { brand: string; physicalCores: number; features: string[] };
  threads: number;
  ops: Record<string, NativeOpInfo>;
  /** What precision 'fast' runs: the bf16 kernel per weight format and for attention; null where it runs the exact kernel. */
  fast: { matmulByFormat: Record<string, string | null>; attention: string | null; attentionDecode: string | null };
  cuda: {
    compiled: boolean;
    available: boolean;
    device?: string;
    memoryBytes?: number;
    deviceCount?: number;
    reason?: string;
    runtimeVersion?: number;
    driverVersion?: number;
  };
  externalBuffers: boolean;
}

/** @internal */
export interface NativeParityResult {
  op: string;
  variant: string;
  shape: string;
  device: string;
  /** The weight format of the case (matmul, moe). */
  format?: string;
  maxAbsErr: number;
  maxRelErr: number;
  tolerance: number;
  guardsOk: boolean;
  passed: boolean;
  note: string;
}

/** One matmul timing: y[M,N] = x[M,K]·wᵀ with weights of `wDtype`. @internal */
export interface NativeBenchMatmul {
  M: number;
  K: number;
  N: number;
  /** A weight format name (q8 and q4 in the groups the loader gives K inputs). */
  wDtype: 'f32' | 'bf16' | 'f16' | 'fp8' | 'q8' | 'q4';
  variant: string;
  iters: number;
  /** Bytes of weight copies to rotate through (default 256 MiB); more than the last-level cache for DRAM timings. */
  spillBytes?: number;
  /** 'matmul' (default, exact) or 'matmul_bf16' (precision 'fast'). */
  family?: 'matmul' | 'matmul_bf16';
  /** q8/q4 on an int8-dot variant: time its row tiles even where it would run its int8 GEMM (the GEMM's baseline). */
  rowTiles?: boolean;
}

/** One attention timing over a `seq`-token prompt. @internal */
export interface NativeBenchAttention {
  seq: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  causal: boolean;
  variant: string;
  iters: number;
  /** 'attention' (default, exact) or 'attention_bf16' (precision 'fast', non-causal). */
  family?: 'attention' | 'attention_bf16';
}

/** One decode step's attention timing: every layer, one query row per sequence against its own cache. @internal */
export interface NativeBenchAttentionDecode {
  context: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  layers: number;
  sequences: number;
  variant: string;
  iters: number;
  /** The cache's storage (default f32). */
  kvDtype?: 'f32' | 'bf16';
  /** 'attention' (default, exact) or 'attention_bf16_decode' (precision 'fast'). */
  family?: 'attention' | 'attention_bf16_decode';
}

/** @internal */
export interface NativeBenchSampling {
  vocab: number;
  /** 'flat': no dominant tokens; 'peaked': a dozen far above the rest (native/tests/bench_sampling.cpp). */
  row: 'flat' | 'peaked';
  params: NativeSamplingParams;
  variant: string;
  iters: number;
}

/** @internal */
export interface NativePatchifyOptions {
  patchSize: number;
  mergeSize: number;
  temporalPatchSize: number;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: number[];
  std: number[];
  order: 'slow' | 'fast';
}

/** @internal An opaque native object (model or session). */
export type NativeHandle = { readonly __nativeHandle: unique symbol };

/**
 * @internal A prompt's vision features held natively (native/models/vision_features.h): what the
 * prefill reads its visual rows from. Free it with `disposeHandle` once the prefill is done (JS's
 * collector frees a forgotten one); a disposed one is E_DISPOSED, one of another model E_INPUT.
 */
export type NativeVisionFeatures = { readonly __nativeVisionFeatures: unique symbol };

/** @internal What `modelEncodeFeatures` resolves to: the handle and its row counts. */
export interface NativeEncodedFeatures {
  features: NativeVisionFeatures;
  /** Rows of the images (the first rows); the videos' follow. */
  imageTokens: number;
  /** All rows: image tokens + video tokens. */
  tokens: number;
  /** DeepStack levels (Qwen3-VL), else 0. */
  levels: number;
  hidden: number;
}

/** @internal One run of the vision tower: flattened patches and their (t, h, w) grids. */
export interface NativeVisionRun {
  pixels: Float32Array;
  patchDim: number;
  grids: Int32Array;
}

/**
 * @internal A request's native cancel flag (native/core/cancel.h). Native calls given one poll it
 * between layers and vision blocks and reject with E_ABORTED or E_DISPOSED once it is set.
 */
export type NativeCancelToken = { readonly __nativeCancelToken: unique symbol };

/** @internal */
export interface NativeWeightFile {
  path: string;
  tensors: { name: string; dtype: number; shape: number[]; byteOffset: number; byteLength: number }[];
}

/** @internal */
export interface NativeForwardArgs {
  ids: Int32Array;
  /** Tokens of every row; or give `counts`. */
  steps?: number;
  /** Tokens of each row (rows may differ: a decode token beside a prefill chunk); rows' tokens are consecutive in `ids`. */
  counts?: Int32Array;
  /** With logits 'flagged': 1 for each token whose logits are wanted. */
  needsLogits?: Uint8Array;
  pad?: Int32Array;
  positions: Int32Array;
  /** The prompt's vision features (the generation path); or give `visionEmbeds` (and `deepstack`). */
  features?: NativeVisionFeatures;
  /** Vision embeddings copied from JS (the low-level path: `trace()`). */
  visionEmbeds?: Float32Array;
  /** Row of the vision features each token takes (-1: a text token); with `features` or `visionEmbeds`. */
  visualRows?: Int32Array;
  deepstack?: Float32Array[];
  /** Cache rows this forward runs, in token order (default every row); the others are untouched. */
  rows?: Int32Array;
  /** 'sample': no logits; `tokens` holds each row's next token, chosen by its native sampler. */
  logits?: 'none' | 'last' | 'all' | 'flagged' | 'sample';
  /** With logits 'sample': 0 for each row that does not sample (a prefill chunk short of its prompt's end; its token is -1). */
  sample?: Uint8Array;
  trace?: boolean;
  /** Time the pass: the result gains `profile` (wall time of the step and of each op family's entry points). */
  profile?: boolean;
  cancel?: NativeCancelToken;
}

/**
 * A profiled forward pass: `stepNs` is the pass's wall time, `ops` each op family's summed wall time
 * inside its entry points and call count (ops a kernel calls internally, such as MoE's expert
 * matmuls, count in the outer op only). `stepNs` minus the ops' sum is the time outside kernels.
 * @internal
 */
export interface NativeStepProfile {
  stepNs: number;
  ops: Record<string, { ns: number; calls: number }>;
}

/**
 * A session's scratch arena (native/core/arena.h), read between passes: the step's peak scratch
 * bytes, the bytes in use (0: every pass resets it), the bytes it holds, its chunks, and how many
 * chunks it ever took from the heap (unchanged from pass to pass once warm).
 * @internal
 */
export interface NativeScratchStats {
  peakBytes: number;
  inUseBytes: number;
  capacityBytes: number;
  chunks: number;
  heapAllocations: number;
}

/** @internal */
/** Structured output for one sequence of sessionSampling. */
export interface NativeTokenConstraint {
  /** A grammarMasks handle. */
  masks: NativeHandle;
  /** Tokens that end the output: allowed exactly when the text is complete. */
  endIds: Int32Array;
  /** Unconstrained until this token is drawn (a thinking model's `</think>`). */
  startAfter?: number;
}

export interface NativeSamplingParams {
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
}

/** @internal */
export interface NativeBinding {
  setErrorClass(ctor: new (code: string, message: string) => Error): void;
  /** Builds a model from its spec and weight files (native/napi/model.cpp). */
  loadModel(
    spec: NativeModelSpec,
    names: WeightNames,
    files: NativeWeightFile[],
    options?: {
      checkFinite?: boolean;
      /** 'exact' (default) or 'fast' (large matmuls in bf16). */
      precision?: 'exact' | 'fast';
      /** The language model's linear weights: kept as stored, or quantized at load. */
      weights?: 'stored' | 'q8' | 'q4';
      visionWeights?: 'stored' | 'q8' | 'q4';
      /** Called (on the JS thread, asynchronously) with the stored bytes converted so far. */
      onConverted?: (bytes: number) => void;
      /** The converted-weights cache file and its key (lib/model/weight-cache.ts). */
      cache?: { path: string; key: string };
      /** Where the language model's linear weights live (lib/model/placement.ts). */
      placement?: 'auto' | 'mmap' | 'owned' | 'huge';
    },
  ): Promise<NativeHandle>;
  /**
   * The weight format of a model's language-model linear layers ('bf16', 'q8', ...), what the
   * weight cache did, where those weights are and the process's placement probe.
   */
  modelWeightFormat(model: NativeHandle): {
    format: string;
    cache: 'none' | 'hit' | 'written' | 'unwritten';
    placement: WeightPlacement | 'other';
    probe: PlacementProbe;
  };
  modelEncodeVision(
    model: NativeHandle,
    pixels: Float32Array,
    patchDim: number,
    grids: Int32Array,
    trace: boolean,
    cancel?: NativeCancelToken,
    /** Time the encode: the result gains `profile`, as a profiled forward pass's. */
    profile?: boolean,
  ): Promise<{ embeds: NativeTensorData; deepstack: NativeTensorData[]; trace: [string, NativeTensorData][]; profile?: NativeStepProfile }>;
  /** Runs the vision tower over a prompt's images and videos and keeps the joined features natively (images' rows first). */
  modelEncodeFeatures(model: NativeHandle, runs: { images?: NativeVisionRun; videos?: NativeVisionRun }, cancel?: NativeCancelToken): Promise<NativeEncodedFeatures>;
  /** A session of `batch` sequences of `capacity` tokens (0: an empty pool sequences are added to); `kvDtype` is the KV pool's storage (default f32). */
  modelNewSession(model: NativeHandle, batch: number, capacity: number, options?: { kvDtype?: 'f32' | 'bf16' }): NativeHandle;
  sessionForward(
    session: NativeHandle,
    args: NativeForwardArgs,
  ): Promise<{
    logits?: NativeTensorData;
    tokens?: Int32Array;
    trace: [string, NativeTensorData][];
    profile?: NativeStepProfile;
  }>;
  /**
   * Sets samplers and repetition histories (`history`: the same number of ids per row). Without
   * `rows`, one per session row, replacing all; with `rows`, those sequence ids beside the others.
   * The rows one call sets share one RNG seeded `seed`, drawn in row order.
   */
  sessionSampling(
    session: NativeHandle,
    args: {
      params: NativeSamplingParams[];
      seed: number;
      history?: Int32Array;
      rows?: Int32Array;
      /** Per row: structured output's grammar (a grammarMasks handle), end ids, and the token after which it starts. */
      constraints?: (NativeTokenConstraint | undefined)[];
    },
  ): void;
  /** Checks and compiles a flattened GrammarIR (lib/structured/flatten-grammar.ts). */
  grammarCompile(flat: Int32Array): NativeHandle;
  /** The vocabulary's text bytes (token t: bytes[offsets[t] .. offsets[t + 1]), empty: not text), once per model. */
  grammarVocabulary(bytes: Uint8Array, offsets: Int32Array): NativeHandle;
  /** grammarVocabulary on a worker thread (the arrays must stay unchanged until it settles). */
  grammarVocabularyAsync(bytes: Uint8Array, offsets: Int32Array): Promise<NativeHandle>;
  /** One grammar over one vocabulary with the mask caches every sequence using it shares. */
  grammarMasks(grammar: NativeHandle, vocabulary: NativeHandle): NativeHandle;
  grammarMasksStats(masks: NativeHandle): { stateHits: number; stateMisses: number; positionHits: number; positionMisses: number; bytes: number };
  /** A matcher at the start of the text. */
  grammarMatcher(masks: NativeHandle): NativeHandle;
  /** Advances over token's bytes; false (state kept) when the grammar refuses them. */
  matcherAdvance(matcher: NativeHandle, token: number): boolean;
  matcherAdvanceBytes(matcher: NativeHandle, bytes: Uint8Array): boolean;
  matcherStatus(matcher: NativeHandle): { accepts: boolean; canContinue: boolean };
  /** The text tokens allowed next, one bit per id; `variant` picks a token_mask kernel, `cache` (default true) uses the grammar's caches. */
  matcherMask(matcher: NativeHandle, variant?: string, cache?: boolean): Uint32Array;
  /** Forward calls run and rows computed by them (finished rows are not computed). */
  sessionStats(session: NativeHandle): { forwards: number; rowsComputed: number };
  /** The session's scratch arena (between passes; E_INPUT while one runs). */
  sessionScratch(session: NativeHandle): NativeScratchStats;
  /** Tokens each sequence of the session's KV pool holds, by id (null: freed). */
  sessionLengths(session: NativeHandle): (number | null)[];
  /** Adds an empty sequence slot to the session's KV pool; returns its id. */
  sessionAddSequence(session: NativeHandle, capacity: number): number;
  /** Raises a sequence's capacity, keeping its keys and values. */
  sessionGrowSequence(session: NativeHandle, id: number, capacity: number): void;
  /** Copies the first `count` KV entries of sequence `src` into the empty sequence `dst` (a cached prompt prefix). */
  sessionCopyPrefix(session: NativeHandle, src: number, dst: number, count: number): void;
  /** Frees a sequence's slot; its id is refused afterwards. */
  sessionFreeSequence(session: NativeHandle, id: number): void;
  /** A fresh, unset cancel token. */
  newCancelToken(): NativeCancelToken;
  /** Sets a token from the JS thread: calls using it stop within one layer. The first reason sticks. */
  cancelToken(token: NativeCancelToken, reason: 'abort' | 'dispose'): void;
  /** Drops a model, session or vision-features handle (idempotent); later use gives E_DISPOSED. */
  disposeHandle(handle: NativeHandle | NativeVisionFeatures): void;
  /** Chooses the next token of one logits row; advances `rngState` (BigUint64Array(4)) in place. */
  sampleToken(logits: Float32Array, params: NativeSamplingParams, seen: Int32Array | null, rngState: BigUint64Array): number;
  samplingRng(seed: number): BigUint64Array;
  info(): NativeInfo;
  /** native/core/dtype.h's dtype table, for the consistency test against lib/tensor.ts. */
  dtypeTable(): NativeDtypeRow[];
  /** The weight-format traits table. */
  weightFormats(): NativeWeightFormatRow[];
  setThreads(n: number): void;
  parity(filter?: string, seed?: number): Promise<NativeParityResult[]>;
  parityOps(): string[];
  /** Seconds per call of one matmul variant, best of `iters` after a warm-up (native/napi/bench.cpp). */
  benchMatmul(c: NativeBenchMatmul): Promise<number>;
  /** Seconds per call of one attention variant, best of `iters` after a warm-up; rejects when not built. */
  benchAttention(c: NativeBenchAttention): Promise<number>;
  /** Seconds per decode step's attention (every layer and sequence), best of `iters` after a warm-up. */
  benchAttentionDecode(c: NativeBenchAttentionDecode): Promise<number>;
  /** Seconds per token choice of one sampling variant, best of `iters` after a warm-up. */
  benchSampling(c: NativeBenchSampling): Promise<number>;
  /** Seconds to quantize `rows` rows of n values with one quantize_row variant on one thread, best of `iters`. */
  benchQuantizeRow(c: { format: 'q8' | 'q4'; rows: number; n: number; group: number; variant: string; iters: number }): Promise<number>;
  /** GFLOP/s of a compute-peak probe on every pool thread (native/tests/bench_peak.cpp). */
  benchPeak(c: { kind: PeakKind; rounds: number }): Promise<number>;
  /** Seconds to read `bytes` of owned memory once on every compute thread, best of `iters` (the bandwidth floor). */
  benchRead(c: { bytes: number; iters: number }): Promise<number>;
  /** Bytes an [N, K] weight takes in a weight format, scales and zero points included. */
  weightBytes(format: string, N: number, K: number): number;
  /** One non-blocking flock(LOCK_EX) of `path` (created if absent): a descriptor, or null when another holds it. */
  fileLockTry(path: string): number | null;
  /** Releases (unlocks and closes) a descriptor fileLockTry returned. */
  fileLockRelease(fd: number): void;
  /** Maps a whole file copy-on-write (native/napi/safetensors.cpp). */
  mapFile(path: string): { handle: NativeMappedFile; size: number };
  /** Drops the handle's reference; views already made stay valid. Idempotent. */
  closeMappedFile(handle: NativeMappedFile): void;
  /** A view of bytes [byteOffset, byteOffset + byteLength) of a mapped file; re-checked natively. */
  viewTensor(handle: NativeMappedFile, dtype: number, shape: number[], byteOffset: number, byteLength: number): NativeTensorData;
  /** Element type conversion on a worker thread; `data` is borrowed until it settles. */
  castTensor(data: ArrayBufferView, dtype: number, shape: number[], toDtype: number): Promise<NativeTensorData>;
  /** Bicubic resize of interleaved 8-bit pixels (native/napi/image.cpp); `pixels` is borrowed until it settles. */
  resizeBicubic(
    pixels: Uint8Array,
    width: number,
    height: number,
    outWidth: number,
    outHeight: number,
    rounding?: 'pillow' | 'torch',
    channels?: number,
  ): Promise<Uint8Array>;
  /** Rescale, normalise and flatten RGB frames into vision patches (native/napi/image.cpp). */
  patchify(frames: Uint8Array[], width: number, height: number, options: NativePatchifyOptions): Promise<Float32Array>;
}

/** Opaque handle of a native file mapping. @internal */
export type NativeMappedFile = { readonly __brand: 'NativeMappedFile' };

/** A tensor as native code returns it: dtype code (native/core/dtype.h), shape, bytes. @internal */
export interface NativeTensorData {
  dtype: number;
  shape: number[];
  data: ArrayBuffer;
  /** True when `data` is an external buffer over native memory, false when it is a copy. */
  external: boolean;
}

function load(): NativeBinding {
  const require = createRequire(import.meta.url);
  // lib/native/ under vitest and dist/native/ after tsc: the package root is two levels up.
  const root = fileURLToPath(new URL('../..', import.meta.url));
  // QWENVL_ADDON_PATH points at a specific .node file (a custom or debug build).
  const explicit = process.env.QWENVL_ADDON_PATH;
  let binding: NativeBinding;
  try {
    binding = (explicit ? require(explicit) : require('node-gyp-build')(root)) as NativeBinding;
  } catch (err) {
    throw new QwenVLError(
      'E_NATIVE',
      `qwenvl: no native addon for ${process.platform}-${process.arch} (node ${process.version}) could be loaded. ` +
        'Install a matching prebuild, or build from source with a C++17 compiler and cmake (npm run build:native). ' +
        `Cause: ${(err as Error).message}`,
      { cause: err },
    );
  }
  binding.setErrorClass(QwenVLError as unknown as new (code: string, message: string) => Error);
  return binding;
}

/** @internal */
export const native: NativeBinding = load();
