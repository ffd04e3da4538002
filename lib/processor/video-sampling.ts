/**
 * Frame sampling and per-frame sizing rules for videos, reproduced operation for operation from
 * the two references (both read, not copied):
 *
 * - **qwen-vl-utils** (`qwen_vl_utils/vision_process.py`, the helper the Qwen model cards use:
 *   `smart_nframes`, `calculate_video_frame_range`, `fetch_video`): how many frames to sample
 *   from a video file, which ones (`torch.linspace(...).round()`, float32), and the per-frame
 *   pixel budget (VIDEO_MIN/MAX token counts, the total budget shared by the frames) that
 *   decides the resized size.
 * - **transformers 4.57** video processors (`Qwen2VLVideoProcessor` for Qwen2-VL / Qwen2.5-VL,
 *   `Qwen3VLVideoProcessor` for Qwen3-VL): their own `sample_frames` (used when the processor
 *   samples a video itself) and `smart_resize` (Qwen2: per frame, within the processor's
 *   min/max pixels; Qwen3: over frames × height × width, within `size.shortest_edge` /
 *   `size.longest_edge`).
 *
 * Where the references compute in float32 (torch tensors) the arithmetic is emulated with
 * `Math.fround` (and, for `torch.arange`, the lane layout of its vectorised CPU kernel), because
 * a frame index is a rounded float and one ulp can move it. The numpy path (Qwen3-VL's
 * processor) was checked against numpy 2.4 on 3000 random cases; the torch paths follow the
 * kernels' source (torch 2.x) and could not be run against torch here.
 * @module
 */
import { inputError } from '../errors.js';
import { pyRound } from './smart-resize.js';
import { publicCall } from '../validate.js';

/** qwen-vl-utils `FRAME_FACTOR`: sampled frame counts are multiples of this (the temporal patch size). */
export const FRAME_FACTOR = 2;
/** qwen-vl-utils `FPS`: default sampling rate in frames per second. */
export const DEFAULT_VIDEO_FPS = 2;
/** qwen-vl-utils `FPS_MIN_FRAMES`. */
export const FPS_MIN_FRAMES = 4;
/** qwen-vl-utils `FPS_MAX_FRAMES`. */
export const FPS_MAX_FRAMES = 768;
/** qwen-vl-utils `VIDEO_MIN_TOKEN_NUM`: a frame's lower bound is this many merged tokens (×factor² pixels). */
export const VIDEO_MIN_TOKEN_NUM = 128;
/** qwen-vl-utils `VIDEO_MAX_TOKEN_NUM`: a frame's upper bound in merged tokens. */
export const VIDEO_MAX_TOKEN_NUM = 768;
/** qwen-vl-utils `IMAGE_MIN_TOKEN_NUM` (bounds of `resized_height`/`resized_width` and of frame-list frames). */
export const IMAGE_MIN_TOKEN_NUM = 4;
/** qwen-vl-utils `IMAGE_MAX_TOKEN_NUM`. */
export const IMAGE_MAX_TOKEN_NUM = 16384;
/** qwen-vl-utils `MODEL_SEQ_LEN` default: the total video budget is 0.9 × this many tokens. */
export const MODEL_SEQ_LEN = 128000;
/** qwen-vl-utils `SPATIAL_MERGE_SIZE`: the helper's factor is always patch size × 2. */
const SPATIAL_MERGE_SIZE = 2;
/** transformers' Qwen3-VL `sample_frames` falls back to this source fps when none is known. */
export const QWEN3_FALLBACK_FPS = 24;
/**
 * `Vectorized<float>::size()` of the torch build being matched: 8 for the DEFAULT and AVX2 CPU
 * kernels (16 under AVX512). torch's arange computes each vector as `base + j·step`, so this
 * decides which values are rounded from a vector base (see {@link torchArangeF32Int}); it can
 * move a truncated index only when a value lies within a float32 ulp of an integer.
 */
export const TORCH_FLOAT_LANES = 8;

/** How many frames to sample (qwen-vl-utils' element keys, camelCased). */
export interface FrameCountOptions {
  /** Target sampling rate in frames per second (default 2). Exclusive with `nframes`. */
  fps?: number;
  /** An exact frame count (rounded to a multiple of 2). Exclusive with `fps`. */
  nframes?: number;
  /** Lower bound when sampling by fps (default 4; rounded up to a multiple of 2). */
  minFrames?: number;
  /** Upper bound when sampling by fps (default min(768, frames in the video); rounded down to a multiple of 2). */
  maxFrames?: number;
}

function checkPositive(name: string, v: number | undefined, integer = false): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw inputError(`video ${name} must be a positive ${integer ? 'integer' : 'number'}, got ${String(v)}`);
  }
}

/** What every frame sampler checks first: `fps` or `nframes` (not both), each positive. */
function checkFpsOrNframes(options: { fps?: number; nframes?: number }): void {
  if (options.fps !== undefined && options.nframes !== undefined) {
    throw inputError('video: give either fps or nframes, not both');
  }
  checkPositive('fps', options.fps);
  checkPositive('nframes', options.nframes, true);
}

/** Python's `math.floor(x / f) * f` etc. on the float values qwen-vl-utils passes. */
const roundByFactor = (x: number, f: number): number => pyRound(x / f) * f;
const ceilByFactor = (x: number, f: number): number => Math.ceil(x / f) * f;
const floorByFactor = (x: number, f: number): number => Math.floor(x / f) * f;

/**
 * qwen-vl-utils `smart_nframes`: the number of frames sampled from a video of `totalFrames`
 * frames at `videoFps`. With `nframes` it is that count rounded to a multiple of 2; otherwise
 * `totalFrames / videoFps × fps` clamped to [minFrames, maxFrames] and to the video, floored to a
 * multiple of 2. Throws E_INPUT when `fps` and `nframes` are both given or when the result is
 * outside [2, totalFrames] (a video too short to sample, or `nframes` too large).
 */
export function smartNframes(options: FrameCountOptions, totalFrames: number, videoFps: number): number {
  return publicCall('smartNframes', arguments, () => smartNframesImpl(options, totalFrames, videoFps));
}

/** {@link smartNframes} without the public guard, for internal callers: what it throws passes through unchanged. */
function smartNframesImpl(options: FrameCountOptions, totalFrames: number, videoFps: number): number {
  checkFpsOrNframes(options);
  checkPositive('minFrames', options.minFrames, true);
  checkPositive('maxFrames', options.maxFrames, true);
  if (!Number.isSafeInteger(totalFrames) || totalFrames < 0) throw inputError(`video: invalid frame count ${totalFrames}`);
  if (!(videoFps > 0) || !Number.isFinite(videoFps)) throw inputError(`video: invalid frame rate ${videoFps}`);
  let n: number;
  if (options.nframes !== undefined) {
    n = roundByFactor(options.nframes, FRAME_FACTOR);
  } else {
    const fps = options.fps ?? DEFAULT_VIDEO_FPS;
    const minFrames = ceilByFactor(options.minFrames ?? FPS_MIN_FRAMES, FRAME_FACTOR);
    const maxFrames = floorByFactor(options.maxFrames ?? Math.min(FPS_MAX_FRAMES, totalFrames), FRAME_FACTOR);
    n = (totalFrames / videoFps) * fps;
    n = Math.min(Math.min(Math.max(n, minFrames), maxFrames), totalFrames);
    n = floorByFactor(n, FRAME_FACTOR);
  }
  if (!(FRAME_FACTOR <= n && n <= totalFrames)) {
    throw inputError(
      `video: the number of sampled frames must be in [${FRAME_FACTOR}, ${totalFrames}] (the video has ` +
        `${totalFrames} frames), got ${n}` +
        (options.nframes !== undefined ? ` from nframes = ${options.nframes}` : ''),
    );
  }
  return n;
}

/** Frame range of a clip (qwen-vl-utils `calculate_video_frame_range`): inclusive indices and count. */
export interface FrameRange {
  start: number;
  end: number;
  count: number;
}

/**
 * qwen-vl-utils `calculate_video_frame_range`: the frames between `videoStart` and `videoEnd`
 * seconds (both optional; clamped to the video). Throws E_INPUT for an empty range.
 */
export function videoFrameRange(
  totalFrames: number,
  videoFps: number,
  videoStart?: number,
  videoEnd?: number,
): FrameRange {
  if (!(videoFps > 0)) throw inputError('video: the frame rate must be positive');
  if (!(totalFrames > 0)) throw inputError('video: has no frames');
  for (const [name, v] of [['videoStart', videoStart], ['videoEnd', videoEnd]] as const) {
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) {
      throw inputError(`video ${name} must be a number of seconds, got ${String(v)}`);
    }
  }
  if (videoStart === undefined && videoEnd === undefined) return { start: 0, end: totalFrames - 1, count: totalFrames };
  const maxDuration = totalFrames / videoFps;
  const start = videoStart === undefined ? 0 : Math.ceil(Math.max(0, Math.min(videoStart, maxDuration)) * videoFps);
  const end =
    videoEnd === undefined
      ? totalFrames - 1
      : Math.min(Math.floor(Math.max(0, Math.min(videoEnd, maxDuration)) * videoFps), totalFrames - 1);
  if (start >= end) {
    throw inputError(
      `video: invalid time range: start frame ${start} is not before end frame ${end} ` +
        `(${totalFrames} frames at ${videoFps} fps)`,
    );
  }
  return { start, end, count: end - start + 1 };
}

/** `torch.round`: nearest, ties to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * `torch.linspace(start, end, steps)` in float32 on the CPU (torch 2.x), value for value: the
 * step is a float32 quotient, the first half counts up from `start` and the second half down
 * from `end` (torch's linspace kernel is scalar; only arange is vectorised).
 */
export function torchLinspaceF32(start: number, end: number, steps: number): number[] {
  const f = Math.fround;
  if (steps <= 0) return [];
  const s = f(start), e = f(end);
  if (steps === 1) return [s];
  const step = f(f(e - s) / f(steps - 1));
  const half = Math.floor(steps / 2);
  const out = new Array<number>(steps);
  for (let i = 0; i < steps; i++) out[i] = i < half ? f(s + f(step * i)) : f(e - f(step * (steps - i - 1)));
  return out;
}

/**
 * `torch.arange(0, end, step)` (float32 result, double accumulation) then `.int()`: the count is
 * `ceil(end / step)`, each value `float(step·i)` (vector lanes `float(float(step·i0) + j·step)`),
 * truncated toward zero.
 */
export function torchArangeF32Int(end: number, step: number, lanes = TORCH_FLOAT_LANES): number[] {
  const f = Math.fround;
  const n = Math.ceil(end / step);
  const out = new Array<number>(Math.max(0, n));
  const vectorised = Math.floor(n / (2 * lanes)) * 2 * lanes;
  for (let i = 0; i < vectorised; i += lanes) {
    const base = f(step * i);
    for (let j = 0; j < lanes; j++) out[i + j] = Math.trunc(f(base + j * step));
  }
  for (let i = vectorised; i < n; i++) out[i] = Math.trunc(f(step * i));
  return out;
}

/** `numpy.linspace(start, stop, num)` in float64 (`arange(num) * step + start`, last = stop). */
export function numpyLinspace(start: number, stop: number, num: number): number[] {
  if (num <= 0) return [];
  if (num === 1) return [start];
  const div = num - 1;
  const delta = stop - start;
  const step = delta / div;
  const out = new Array<number>(num);
  for (let i = 0; i < num; i++) out[i] = step === 0 ? ((i / div) * delta) + start : i * step + start;
  out[num - 1] = stop;
  return out;
}

/** The frames qwen-vl-utils samples from a video file, and the rate they represent. */
export interface FrameSample {
  /** Indices of the sampled frames in the source video, ascending. */
  indices: number[];
  /** qwen-vl-utils' `sample_fps`: sampled frames per second of video. */
  sampleFps: number;
}

/**
 * qwen-vl-utils' frame selection for a video file (the decord / torchcodec readers):
 * `smart_nframes` over the clip's frames, then `torch.linspace(start, end, n).round()`.
 */
export function sampleFramesQwenVlUtils(
  totalFrames: number,
  videoFps: number,
  options: FrameCountOptions & { videoStart?: number; videoEnd?: number } = {},
): FrameSample {
  const range = videoFrameRange(totalFrames, videoFps, options.videoStart, options.videoEnd);
  const n = smartNframesImpl(options, range.count, videoFps);
  const indices = torchLinspaceF32(range.start, range.end, n).map(roundHalfEven);
  return { indices, sampleFps: (n / Math.max(range.count, 1e-6)) * videoFps };
}

/** Sampling settings of a transformers video processor call. */
export interface ProcessorSamplingOptions {
  /** Target frames per second (default: the processor's `fps`, else 2). Exclusive with `nframes`. */
  fps?: number;
  /** Exact number of frames (`num_frames`). */
  nframes?: number;
  /** The processor's `min_frames` (default 4). */
  minFrames?: number;
  /** The processor's `max_frames` (default 768). */
  maxFrames?: number;
  /** The processor's `temporal_patch_size` (Qwen2 rounds counts to it; default 2). */
  temporalPatchSize?: number;
}

/**
 * transformers' `Qwen3VLVideoProcessor.sample_frames` (4.57): `int(total / videoFps × fps)`
 * clamped to [minFrames, maxFrames] and the video (not rounded to 2: an odd count is padded later
 * by repeating the last frame), or `nframes` as given; indices `np.linspace(0, total-1, n).round()`.
 */
export function sampleFramesQwen3Processor(
  totalFrames: number,
  videoFps: number | undefined,
  options: ProcessorSamplingOptions = {},
): number[] {
  checkFpsOrNframes(options);
  if (!(totalFrames > 0)) throw inputError('video: has no frames');
  const minFrames = options.minFrames ?? FPS_MIN_FRAMES;
  const maxFrames = options.maxFrames ?? FPS_MAX_FRAMES;
  let n = options.nframes;
  if (n === undefined) {
    const fps = options.fps ?? DEFAULT_VIDEO_FPS;
    n = Math.trunc((totalFrames / (videoFps ?? QWEN3_FALLBACK_FPS)) * fps);
    n = Math.min(Math.max(n, minFrames), maxFrames, totalFrames);
  }
  return numpyLinspace(0, totalFrames - 1, n).map(roundHalfEven);
}

/**
 * transformers' `Qwen2VLVideoProcessor.sample_frames` (4.57), used by Qwen2-VL and Qwen2.5-VL
 * when the processor samples: `nframes` rounded to the temporal patch size, or
 * `total / videoFps × fps` clamped to [minFrames, maxFrames] and the video and floored to it;
 * indices `torch.arange(0, total, total / n).int()`. Throws E_INPUT where the processor raises.
 */
export function sampleFramesQwen2Processor(
  totalFrames: number,
  videoFps: number,
  options: ProcessorSamplingOptions = {},
): number[] {
  checkFpsOrNframes(options);
  if (!(totalFrames > 0)) throw inputError('video: has no frames');
  const T = options.temporalPatchSize ?? FRAME_FACTOR;
  let n: number;
  if (options.nframes !== undefined) {
    n = pyRound(options.nframes / T) * T;
  } else {
    const fps = options.fps ?? DEFAULT_VIDEO_FPS;
    const maxFrames = Math.floor(Math.min(options.maxFrames ?? FPS_MAX_FRAMES, totalFrames) / T) * T;
    n = (totalFrames / videoFps) * fps;
    n = Math.min(Math.max(n, options.minFrames ?? FPS_MIN_FRAMES), maxFrames, totalFrames);
    n = Math.floor(n / T) * T;
  }
  if (n > totalFrames) {
    throw inputError(`video: cannot sample ${n} frames from a video of ${totalFrames} frames; lower nframes or fps`);
  }
  if (n <= 0) throw inputError(`video: the sampled frame count rounds to ${n} (a video of ${totalFrames} frames)`);
  return torchArangeF32Int(totalFrames, totalFrames / n);
}

/** Pixel bounds of one frame (qwen-vl-utils' element keys, camelCased). */
export interface FramePixelOptions {
  /** Lower bound of a frame's resized pixel count (default 128 merged tokens: 128 × factor²). */
  minPixels?: number;
  /** Upper bound of a frame's pixel count; it can only lower the budget-derived bound. */
  maxPixels?: number;
  /** Budget of all frames together (default 0.9 × 128000 tokens × factor²); each frame gets total / n × 2. */
  totalPixels?: number;
  /** Explicit size; both together; still rounded to multiples of the factor. */
  resizedHeight?: number;
  resizedWidth?: number;
}

/**
 * qwen-vl-utils' `smart_resize` (it differs from transformers' in where it clamps to one
 * factor: before the bounds are applied, not after). Throws E_INPUT for an aspect ratio over 200,
 * min > max, or bounds that leave a side of 0.
 */
export function qwenVlUtilsSmartResize(
  height: number,
  width: number,
  factor: number,
  minPixels = IMAGE_MIN_TOKEN_NUM * factor * factor,
  maxPixels = IMAGE_MAX_TOKEN_NUM * factor * factor,
): [number, number] {
  for (const [name, v] of [['height', height], ['width', width]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw inputError(`video frame ${name} must be a positive integer, got ${v}`);
  }
  if (!(maxPixels >= minPixels)) {
    throw inputError(`video: maxPixels (${maxPixels}) must be at least minPixels (${minPixels})`);
  }
  const ratio = Math.max(height, width) / Math.min(height, width);
  if (ratio > 200) throw inputError(`video frame ${width}x${height}: absolute aspect ratio must be smaller than 200, got ${ratio}`);
  let h = Math.max(factor, roundByFactor(height, factor));
  let w = Math.max(factor, roundByFactor(width, factor));
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = floorByFactor(height / beta, factor);
    w = floorByFactor(width / beta, factor);
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = ceilByFactor(height * beta, factor);
    w = ceilByFactor(width * beta, factor);
  }
  if (h < factor || w < factor) {
    throw inputError(`video frame ${width}x${height}: the pixel bounds [${minPixels}, ${maxPixels}] leave no size`);
  }
  return [h, w];
}

/**
 * The size qwen-vl-utils' `fetch_video` resizes every frame of a video of `nframes` frames to:
 * the per-frame bound is `max(min(768·f², totalPixels / nframes × 2), int(1.05 × minPixels))`,
 * lowered further by `maxPixels`; `f` = patchSize × 2. Returns [height, width].
 */
export function qwenVlUtilsVideoSize(
  height: number,
  width: number,
  nframes: number,
  patchSize: number,
  options: FramePixelOptions = {},
): [number, number] {
  const f = patchSize * SPATIAL_MERGE_SIZE;
  checkPositive('minPixels', options.minPixels);
  checkPositive('maxPixels', options.maxPixels);
  checkPositive('totalPixels', options.totalPixels);
  const hasH = options.resizedHeight !== undefined, hasW = options.resizedWidth !== undefined;
  if (hasH !== hasW) throw inputError('video: resizedHeight and resizedWidth must be given together');
  if (hasH) {
    checkPositive('resizedHeight', options.resizedHeight, true);
    checkPositive('resizedWidth', options.resizedWidth, true);
    return qwenVlUtilsSmartResize(options.resizedHeight as number, options.resizedWidth as number, f);
  }
  const minPixels = options.minPixels ?? VIDEO_MIN_TOKEN_NUM * f * f;
  const totalPixels = options.totalPixels ?? MODEL_SEQ_LEN * f * f * 0.9;
  let maxPixels = Math.max(Math.min(VIDEO_MAX_TOKEN_NUM * f * f, (totalPixels / nframes) * FRAME_FACTOR), Math.trunc(minPixels * 1.05));
  maxPixels = Math.min(options.maxPixels ?? maxPixels, maxPixels);
  return qwenVlUtilsSmartResize(height, width, f, minPixels, maxPixels);
}

/**
 * The size qwen-vl-utils' `fetch_image` gives one frame of a frame list (image bounds:
 * 4..16384 merged tokens unless `minPixels`/`maxPixels` say otherwise). Returns [height, width].
 */
export function qwenVlUtilsFrameSize(
  height: number,
  width: number,
  patchSize: number,
  options: FramePixelOptions = {},
): [number, number] {
  const f = patchSize * SPATIAL_MERGE_SIZE;
  if (options.resizedHeight !== undefined && options.resizedWidth !== undefined) {
    return qwenVlUtilsSmartResize(options.resizedHeight, options.resizedWidth, f);
  }
  return qwenVlUtilsSmartResize(
    height,
    width,
    f,
    options.minPixels ?? IMAGE_MIN_TOKEN_NUM * f * f,
    options.maxPixels ?? IMAGE_MAX_TOKEN_NUM * f * f,
  );
}

/**
 * transformers' Qwen3-VL video `smart_resize` (4.57): the bounds apply to frames × height ×
 * width (`t_bar` = frames rounded to the temporal factor), sides multiples of `factor`. Throws
 * E_INPUT where transformers raises (fewer frames than the temporal factor, a side under one
 * factor, an aspect ratio over 200). Returns [height, width].
 */
export function qwen3VideoSmartResize(
  numFrames: number,
  height: number,
  width: number,
  opts: { temporalFactor: number; factor: number; minPixels: number; maxPixels: number },
): [number, number] {
  const { temporalFactor, factor, minPixels, maxPixels } = opts;
  if (numFrames < temporalFactor) {
    throw inputError(`video: ${numFrames} frame(s) is fewer than the temporal patch size ${temporalFactor} (Qwen3-VL needs at least ${temporalFactor})`);
  }
  if (height < factor || width < factor) {
    throw inputError(`video frame ${width}x${height}: height and width must be at least ${factor}`);
  }
  const ratio = Math.max(height, width) / Math.min(height, width);
  if (ratio > 200) throw inputError(`video frame ${width}x${height}: absolute aspect ratio must be smaller than 200, got ${ratio}`);
  let h = pyRound(height / factor) * factor;
  let w = pyRound(width / factor) * factor;
  const t = pyRound(numFrames / temporalFactor) * temporalFactor;
  if (t * h * w > maxPixels) {
    const beta = Math.sqrt((numFrames * height * width) / maxPixels);
    h = Math.max(factor, Math.floor(height / beta / factor) * factor);
    w = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (t * h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (numFrames * height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  return [h, w];
}
