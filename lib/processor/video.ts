/**
 * Videos to vision-tower input (`pixel_values_videos`, `video_grid_thw`), plus what the prompt
 * and the rotary positions need: Qwen2.5-VL's seconds per temporal patch and Qwen3-VL's
 * per-group timestamps.
 *
 * Two inputs:
 * - a **frame list** `{ frames, fps }`: frames already sampled from a video at `fps` (paths,
 *   encoded bytes, sharp instances or raw pixels, as for images). They are not resampled.
 * - a **video file** (path or `file:` URL), decoded by a system FFmpeg (see `ffmpeg.ts`); only
 *   the sampled frames are decoded and kept, each resized as it arrives.
 *
 * Two pipelines (`pipeline` option), i.e. whose rules decide the frames and the size:
 * - `'processor'` (default for frame lists): transformers' video processor alone, as
 *   `processor(videos=...)` runs it (4.57): `Qwen2VLVideoProcessor` — every frame
 *   `smart_resize`d within the processor's min/max pixels — or `Qwen3VLVideoProcessor` — one
 *   size for the clip from `smart_resize` over frames × height × width. A frame list is taken as
 *   is (`do_sample_frames=False`, frame indices 0..n-1 at `fps`); a file is sampled with the
 *   processor's own `sample_frames` at `fps` (default 2). Reproduces the reference fixtures
 *   bit for bit.
 * - `'qwen-vl-utils'` (default for files): what the model cards do, qwen-vl-utils' `fetch_video`
 *   then the processor with `do_sample_frames=False` (and, for Qwen3-VL, `do_resize=False`, as
 *   its README passes): frames sampled by `smart_nframes` (`fps` 2, 4..768 frames, even counts,
 *   `linspace` indices, `videoStart`/`videoEnd`), each frame sized by the per-frame budget
 *   (`minPixels`, `maxPixels`, `totalPixels`, `resizedHeight`/`resizedWidth`). For a frame list
 *   each frame first gets `fetch_image`'s sizing (Pillow resize) and the list is padded to an even
 *   length, as `fetch_video` does.
 *
 * Every resize uses torch's uint8 antialiased bicubic and the fused rescale/normalise (`fast`
 * flavor) unless `flavor` says otherwise: transformers' video processors are torchvision-based for
 * every family. Decoders differ (FFmpeg's RGB conversion here; decord / torchcodec in Python), so
 * file input is exact in frame choice and sizes, not necessarily in every pixel.
 * @module
 */
import { QwenVLError, inputError } from '../errors.js';
import { qwen3VideoTimestampsImpl } from '../text/expand.js';
import { publicCallAsync } from '../validate.js';
import type { ProcessorFlavor } from './config.js';
import { countVideoFrames, decodeVideoFrames, findFfmpeg, probeVideo, type VideoProbe } from './ffmpeg.js';
import {
  decodeImageImpl,
  patchifyFramesImpl,
  resizeRgbImpl,
  DEFAULT_MAX_INPUT_PIXELS,
  type DecodeOptions,
  type ImageInput,
  type RgbImage,
} from './image.js';
import { resolveMediaPolicy, type ResolvedMediaPolicy } from './media-policy.js';
import { resolveMediaSource } from './media-source.js';
import { smartResizeImpl } from './smart-resize.js';
import { checkAborted, checkFrameCount, checkLimits, checkTokens, videoTokens } from './video-limits.js';
import type { VideoProcessorConfig } from './video-config.js';
import {
  DEFAULT_VIDEO_FPS,
  FRAME_FACTOR,
  qwen3VideoSmartResize,
  qwenVlUtilsFrameSize,
  qwenVlUtilsVideoSize,
  sampleFramesQwen2Processor,
  sampleFramesQwen3Processor,
  sampleFramesQwenVlUtils,
  type FrameCountOptions,
  type FramePixelOptions,
} from './video-sampling.js';

/** Frames already sampled from a video, with the rate they were sampled at. */
export interface VideoFrames {
  /** The frames in order; all of one size. */
  frames: readonly ImageInput[];
  /** Frames per second they represent (default 2, qwen-vl-utils' default `sample_fps`). */
  fps?: number;
}

/** A video: a file path / `file:` URL (decoded with FFmpeg) or a list of frames. */
export type VideoInput = string | URL | VideoFrames;

export { DEFAULT_MAX_VIDEO_FRAMES } from './video-limits.js';

/** Whose rules pick the frames and the size; see the module notes. */
export type VideoPipeline = 'qwen-vl-utils' | 'processor';

/**
 * Options of {@link processVideo}. The sampling options (`fps`, `nframes`, `minFrames`,
 * `maxFrames`, `videoStart`, `videoEnd`) apply to video files. The pixel options follow the
 * pipeline: with `'qwen-vl-utils'` they are qwen-vl-utils' per-frame bounds and budget; with
 * `'processor'`, `minPixels`/`maxPixels` override the processor's own bounds (per frame for
 * Qwen2/2.5-VL, frames × height × width for Qwen3-VL, as `size.shortest_edge`/`longest_edge`)
 * and `totalPixels`, `resizedHeight`, `resizedWidth` are refused.
 */
export interface ProcessVideoOptions extends FrameCountOptions, FramePixelOptions, DecodeOptions {
  /** Default: `'processor'` for frame lists, `'qwen-vl-utils'` for files. */
  pipeline?: VideoPipeline;
  /** qwen-vl-utils: start of the clip in seconds (files only). */
  videoStart?: number;
  /** qwen-vl-utils: end of the clip in seconds (files only). */
  videoEnd?: number;
  /** Override the resize/normalise arithmetic (default `config.flavor`, i.e. `fast`). */
  flavor?: ProcessorFlavor;
  /**
   * Most frames one video may give: the frames sampled from a file, or the length of a frame
   * list. A file sampled at its defaults (no `fps`, `nframes` or `maxFrames`) keeps fewer frames,
   * spread over its whole length; a pinned sampling or a frame list over the limit is refused
   * with E_INPUT before any frame is decoded. Default {@link DEFAULT_MAX_VIDEO_FRAMES}.
   */
  maxVideoFrames?: number;
  /**
   * Most vision tokens (after merging) this video may give. Checked before decoding: for a file
   * from the container's metadata (ffprobe), for a frame list once the first frame's size is
   * known. A file sampled at its defaults keeps the most frames that fit (as for
   * `maxVideoFrames`); otherwise more is E_INPUT. Default: no limit here (a model passes what its
   * `maxVisualTokens` leaves after the request's images and earlier videos).
   */
  maxVisualTokens?: number;
  /** Aborts decoding (FFmpeg is stopped) with E_ABORTED. */
  signal?: AbortSignal;
}


/** Vision-tower input for one video. */
export interface ProcessedVideo {
  /** Rows of flattened patches: shape[0] × shape[1] floats (`pixel_values_videos`). */
  pixelValues: Float32Array;
  /** [number of patches, 3 × temporalPatchSize × patchSize²]. */
  shape: [number, number];
  /** [t, h, w] in patches (`video_grid_thw` row); t = frames / temporalPatchSize, rounded up. */
  gridThw: [number, number, number];
  /** Frames per second the kept frames represent (qwen-vl-utils' `sample_fps`; a frame list's `fps`). */
  fps: number;
  /** Frame rate of the source (a frame list: its `fps`). */
  videoFps: number;
  /** For every kept frame, its index in the source (0..n-1 for a frame list). */
  frameIndices: number[];
  /** Resized frame size in pixels, [height, width]. */
  size: [number, number];
  /**
   * The source's frame size in pixels, [height, width], before any resizing: the frames as decoded
   * (a file's stored frames, rotation metadata not applied; a frame list's first frame). Grounding
   * maps boxes on the video to these pixels.
   */
  originalSize: [number, number];
  /**
   * Qwen2.5-VL's `second_per_grid_ts` entry: temporalPatchSize / fps, with the fps the processor
   * is given (qwen-vl-utils: the sample fps; processor alone: the frame list's or the requested fps).
   */
  secondPerGridT: number;
  /**
   * Qwen3-VL's time in seconds of each temporal patch group (`<t seconds>` in the prompt):
   * mean of the group's first and last frame time, frame time = source index / videoFps.
   */
  timestamps: number[];
}

/** Frames of a list decoded concurrently. */
const DECODE_AHEAD = 4;
const SAMPLING_KEYS = ['fps', 'nframes', 'minFrames', 'maxFrames', 'videoStart', 'videoEnd'] as const;
const QWEN_VL_UTILS_ONLY_KEYS = ['totalPixels', 'resizedHeight', 'resizedWidth'] as const;

function isVideoFrames(v: unknown): v is VideoFrames {
  return typeof v === 'object' && v !== null && !(v instanceof URL) && 'frames' in v;
}

function checkPipeline(p: unknown): VideoPipeline {
  if (p !== 'qwen-vl-utils' && p !== 'processor') {
    throw inputError(`video pipeline must be 'qwen-vl-utils' or 'processor', got ${String(p)}`);
  }
  return p;
}

function checkConfig(config: VideoProcessorConfig): void {
  if (typeof config !== 'object' || config === null || (config.kind !== 'qwen2' && config.kind !== 'qwen3')) {
    throw inputError("processVideo: config must be a VideoProcessorConfig (kind 'qwen2' or 'qwen3'; see loadVideoProcessorConfig)");
  }
}

/** The processor's per-call pixel bounds: the config's, overridden by minPixels/maxPixels. */
function processorBounds(config: VideoProcessorConfig, options: ProcessVideoOptions): { minPixels: number; maxPixels: number } {
  const minPixels = options.minPixels ?? config.minPixels;
  const maxPixels = options.maxPixels ?? config.maxPixels;
  for (const [name, v] of [['minPixels', minPixels], ['maxPixels', maxPixels]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw inputError(`video ${name} must be a non-negative number, got ${String(v)}`);
  }
  return { minPixels, maxPixels };
}

/** Size the processor resizes `numFrames` frames of height × width to (processor pipeline). */
function processorSize(
  numFrames: number,
  height: number,
  width: number,
  config: VideoProcessorConfig,
  options: ProcessVideoOptions,
): [number, number] {
  if (!config.doResize) return [height, width];
  const factor = config.patchSize * config.mergeSize;
  const bounds = processorBounds(config, options);
  if (config.kind === 'qwen3') {
    return qwen3VideoSmartResize(numFrames, height, width, { temporalFactor: config.temporalPatchSize, factor, ...bounds });
  }
  return smartResizeImpl(height, width, { factor, ...bounds });
}

/**
 * What the processor does after qwen-vl-utils (qwen-vl-utils pipeline): Qwen2 re-applies its
 * per-frame `smart_resize` (usually an identity); Qwen3 is called with `do_resize=False`.
 */
function afterQwenVlUtilsSize(height: number, width: number, config: VideoProcessorConfig): [number, number] {
  if (config.kind === 'qwen3' || !config.doResize) return [height, width];
  return smartResizeImpl(height, width, {
    factor: config.patchSize * config.mergeSize,
    minPixels: config.minPixels,
    maxPixels: config.maxPixels,
  });
}

/** Resizes through a chain of sizes (each step as the reference does it), skipping identities. */
async function resizeChain(image: RgbImage, steps: readonly { size: [number, number]; flavor: ProcessorFlavor }[]): Promise<RgbImage> {
  let out = image;
  for (const { size, flavor } of steps) out = await resizeRgbImpl(out, size[1], size[0], flavor);
  return out;
}

function withWhere(err: unknown, where: string): unknown {
  if (err instanceof QwenVLError) return new QwenVLError(err.code, `${where}: ${err.message}`, { cause: err });
  return err;
}

async function finish(
  frames: Uint8Array[],
  size: [number, number],
  config: VideoProcessorConfig,
  flavor: ProcessorFlavor,
  meta: { fps: number; videoFps: number; frameIndices: number[]; processorFps: number; originalSize: [number, number] },
): Promise<ProcessedVideo> {
  const [h, w] = size;
  const p = await patchifyFramesImpl(frames, w, h, config, flavor);
  return {
    pixelValues: p.pixelValues,
    shape: p.shape,
    gridThw: p.gridThw,
    fps: meta.fps,
    videoFps: meta.videoFps,
    frameIndices: meta.frameIndices,
    size,
    originalSize: meta.originalSize,
    secondPerGridT: config.temporalPatchSize / meta.processorFps,
    timestamps: qwen3VideoTimestampsImpl(meta.frameIndices, meta.videoFps, config.temporalPatchSize),
  };
}

async function processFrameList(
  input: VideoFrames,
  config: VideoProcessorConfig,
  options: ProcessVideoOptions,
  flavor: ProcessorFlavor,
): Promise<ProcessedVideo> {
  const list = input.frames;
  if (!Array.isArray(list) || list.length === 0) throw inputError('video frames: expected a non-empty array of frames');
  const limits = checkLimits(options);
  checkFrameCount(list.length, limits.maxFrames, 'video frames', 'sample fewer frames');
  const fps = input.fps ?? DEFAULT_VIDEO_FPS;
  if (typeof fps !== 'number' || !Number.isFinite(fps) || fps <= 0) throw inputError(`video frames: fps must be a positive number, got ${String(fps)}`);
  for (const key of SAMPLING_KEYS) {
    if (options[key] !== undefined) {
      throw inputError(`video frames: option ${key} applies to video files; a frame list is used as given (its rate is frames.fps)`);
    }
  }
  const pipeline = checkPipeline(options.pipeline ?? 'processor');
  if (pipeline === 'processor') {
    for (const key of QWEN_VL_UTILS_ONLY_KEYS) {
      if (options[key] !== undefined) throw inputError(`video: option ${key} needs pipeline 'qwen-vl-utils'`);
    }
  }

  // Frames are decoded a few ahead of use and only their resized copies are kept.
  const n = list.length;
  const out: Uint8Array[] = [];
  let first: { width: number; height: number } | undefined;
  let original: [number, number] = [0, 0];
  let steps: { size: [number, number]; flavor: ProcessorFlavor }[] = [];
  let size: [number, number] = [0, 0];
  const pending: Promise<RgbImage>[] = [];
  let next = 0;
  for (let i = 0; i < n; i++) {
    checkAborted(options.signal, 'video frames');
    while (pending.length < DECODE_AHEAD && next < n) {
      const k = next++;
      const p = decodeImageImpl(list[k], options).catch((err: unknown) => {
        throw withWhere(err, `video frames[${k}]`);
      });
      p.catch(() => undefined); // a later frame's failure must not go unhandled while an earlier one is awaited
      pending.push(p);
    }
    let frame = await (pending.shift() as Promise<RgbImage>);
    if (i === 0) original = [frame.height, frame.width];
    if (pipeline === 'qwen-vl-utils') {
      // fetch_image sizes every frame on its own (PIL); the stacked frames must then agree.
      const own = qwenVlUtilsFrameSize(frame.height, frame.width, config.patchSize, options);
      frame = await resizeRgbImpl(frame, own[1], own[0], 'slow');
    }
    if (!first) {
      first = { width: frame.width, height: frame.height };
      if (pipeline === 'processor') {
        size = processorSize(n, frame.height, frame.width, config, options);
        steps = [{ size, flavor }];
      } else {
        const padded = Math.ceil(n / FRAME_FACTOR) * FRAME_FACTOR;
        const utils = qwenVlUtilsVideoSize(frame.height, frame.width, padded, config.patchSize, options);
        size = afterQwenVlUtilsSize(utils[0], utils[1], config);
        steps = [{ size: utils, flavor }, { size, flavor }];
      }
      // The first frame fixes the size of all: the budget is known before the others are decoded.
      checkTokens(pipeline === 'qwen-vl-utils' ? Math.ceil(n / FRAME_FACTOR) * FRAME_FACTOR : n, size, config, limits.maxTokens, 'video frames');
    } else if (frame.width !== first.width || frame.height !== first.height) {
      throw inputError(
        `video frames[${i}] is ${frame.width}x${frame.height} but frames[0] is ${first.width}x${first.height}` +
          (pipeline === 'qwen-vl-utils' ? ' after resizing' : '') + '; all frames of a video must have one size',
      );
    }
    out.push((await resizeChain(frame, steps)).data);
  }

  let frameIndices = out.map((_, i) => i);
  if (pipeline === 'qwen-vl-utils') {
    // fetch_video pads the list to an even length and numbers the copies as new frames.
    while (out.length % FRAME_FACTOR !== 0) out.push(out[out.length - 1]);
    frameIndices = out.map((_, i) => i);
  }
  return finish(out, size, config, flavor, { fps, videoFps: fps, frameIndices, processorFps: fps, originalSize: original });
}

/** A video file's path, admitted by the media policy (the shared rules of media-source.ts). */
async function resolveVideoPath(input: string | URL, media: ResolvedMediaPolicy): Promise<string> {
  return (await resolveMediaSource(input, 'video', media)) as string;
}

/** Which frames of a file to decode and how to size them, decided from its metadata alone. */
interface FilePlan {
  indices: number[];
  sampleFps: number;
  processorFps: number;
  size: [number, number];
  steps: { size: [number, number]; flavor: ProcessorFlavor }[];
}

function planFile(
  probe: VideoProbe,
  totalFrames: number,
  config: VideoProcessorConfig,
  options: ProcessVideoOptions,
  flavor: ProcessorFlavor,
  pipeline: VideoPipeline,
): FilePlan {
  if (pipeline === 'qwen-vl-utils') {
    const s = sampleFramesQwenVlUtils(totalFrames, probe.fps, options);
    const utils = qwenVlUtilsVideoSize(probe.height, probe.width, s.indices.length, config.patchSize, options);
    const size = afterQwenVlUtilsSize(utils[0], utils[1], config);
    return { indices: s.indices, sampleFps: s.sampleFps, processorFps: s.sampleFps, size, steps: [{ size: utils, flavor }, { size, flavor }] };
  }
  const sampling = {
    ...(options.nframes !== undefined ? { nframes: options.nframes } : { fps: options.fps ?? config.fps ?? DEFAULT_VIDEO_FPS }),
    minFrames: options.minFrames ?? config.minFrames,
    maxFrames: options.maxFrames ?? config.maxFrames,
    temporalPatchSize: config.temporalPatchSize,
  };
  const indices =
    config.kind === 'qwen3'
      ? sampleFramesQwen3Processor(totalFrames, probe.fps, sampling)
      : sampleFramesQwen2Processor(totalFrames, probe.fps, sampling);
  const size = processorSize(indices.length, probe.height, probe.width, config, options);
  return {
    indices,
    sampleFps: (indices.length / totalFrames) * probe.fps,
    processorFps: options.fps ?? config.fps ?? DEFAULT_VIDEO_FPS,
    size,
    steps: [{ size, flavor }],
  };
}

/**
 * The plan of `make()` brought within the frame and token limits. When the request left the
 * sampling to its defaults (no `fps`, `nframes` or `maxFrames`), a video too long for the limits
 * keeps the most frames that fit, still spread over its whole length by the same sampling rule,
 * rather than being refused: an hour-long video then costs what the budget allows. A request that
 * pinned its sampling gets exactly that or E_INPUT. Frame counts are searched by bisection; the
 * tokens of a plan grow with its frames (the per-frame size shrinks at most in proportion).
 */
function fitPlan(
  make: (maxFrames?: number) => FilePlan,
  pinned: boolean,
  limits: { maxFrames: number; maxTokens: number },
  config: VideoProcessorConfig,
): FilePlan {
  const fits = (p: FilePlan) =>
    p.indices.length <= limits.maxFrames && videoTokens(p.indices.length, p.size, config) <= limits.maxTokens;
  const plan = make();
  if (pinned || fits(plan)) return plan;
  let lo = FRAME_FACTOR;
  let best = make(lo);
  if (!fits(best)) return plan; // not even the fewest frames fit: run() refuses it with the numbers
  let hi = plan.indices.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    const p = make(mid);
    if (fits(p)) {
      lo = mid;
      best = p;
    } else {
      hi = mid;
    }
  }
  return best;
}

async function processVideoFile(
  input: string | URL,
  config: VideoProcessorConfig,
  options: ProcessVideoOptions,
  flavor: ProcessorFlavor,
): Promise<ProcessedVideo> {
  const pipeline = checkPipeline(options.pipeline ?? 'qwen-vl-utils');
  const media = await resolveMediaPolicy(options.media);
  const path = await resolveVideoPath(input, media);
  if (pipeline === 'processor') {
    for (const key of [...QWEN_VL_UTILS_ONLY_KEYS, 'videoStart', 'videoEnd'] as const) {
      if (options[key] !== undefined) throw inputError(`video: option ${key} needs pipeline 'qwen-vl-utils'`);
    }
  }
  const limits = checkLimits(options);
  const tools = await findFfmpeg();
  checkAborted(options.signal, `video "${path}"`);
  const probe = await probeVideo(path, tools, options.signal ? { signal: options.signal } : {});
  const limit = Math.min(options.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS, media.maxInputPixels);
  if (probe.width * probe.height > limit) {
    throw inputError(
      `video "${path}": frames of ${probe.width}x${probe.height} exceed the limit of ${limit} pixels (maxInputPixels); refused before decoding`,
    );
  }
  const where = `video "${path}"`;
  const decodeOptions = options.signal ? { signal: options.signal } : {};

  /** Decodes a plan's frames (each distinct one once, resized on arrival); `complete` is false when the stream ended early. */
  const run = async (plan: FilePlan): Promise<{ kept: Map<number, Uint8Array>; wanted: number[]; delivered: number }> => {
    // Everything the budgets need is known from the container's metadata: refuse before decoding.
    checkFrameCount(plan.indices.length, limits.maxFrames, where, 'lower fps, nframes or maxFrames');
    checkTokens(plan.indices.length, plan.size, config, limits.maxTokens, where);
    const wanted = [...new Set(plan.indices)].sort((a, b) => a - b);
    const kept = new Map<number, Uint8Array>();
    const delivered = await decodeVideoFrames(path, tools, probe, wanted, async (rgb, k) => {
      const resized = await resizeChain({ data: rgb, width: probe.width, height: probe.height }, plan.steps);
      kept.set(wanted[k], resized.data);
    }, decodeOptions);
    return { kept, wanted, delivered };
  };

  const pinned = options.fps !== undefined || options.nframes !== undefined || options.maxFrames !== undefined;
  const planFor = (totalFrames: number) =>
    fitPlan(
      (maxFrames) => planFile(probe, totalFrames, config, maxFrames === undefined ? options : { ...options, maxFrames }, flavor, pipeline),
      pinned,
      limits,
      config,
    );
  let plan = planFor(probe.totalFrames);
  let got = await run(plan);
  if (got.delivered < got.wanted.length) {
    // The file holds fewer frames than its metadata says (truncated, or a wrong header): count
    // them by decoding, as readers that decode the whole video do, and sample again from the real
    // count rather than fill the missing part with copies of the last frame.
    got.kept.clear();
    const counted = await countVideoFrames(path, tools, decodeOptions);
    if (counted < FRAME_FACTOR) throw inputError(`${where}: only ${counted} frame(s) could be decoded`);
    plan = planFor(counted);
    got = await run(plan);
  }
  const { kept, wanted, delivered } = got;
  if (delivered === 0) throw inputError(`${where}: no frame could be decoded`);
  // Decoding can still fall short of a count it made itself (a decoder that is not
  // deterministic on a damaged file): the missing tail repeats the last frame.
  const lastIndex = wanted[delivered - 1];
  const frameIndices = plan.indices.map((i) => (kept.has(i) ? i : lastIndex));
  const frames = frameIndices.map((i) => kept.get(i) as Uint8Array);
  return finish(frames, plan.size, config, flavor, {
    fps: plan.sampleFps,
    videoFps: probe.fps,
    frameIndices,
    processorFps: plan.processorFps,
    originalSize: [probe.height, probe.width],
  });
}

/**
 * Processes one video into vision-tower input: picks the frames, resizes them, pads them to a
 * multiple of the temporal patch size by repeating the last, and flattens them into patches (see
 * the module notes for the two inputs and pipelines). `config` comes from
 * {@link loadVideoProcessorConfig}. Throws E_INPUT for unreadable or undecodable input and bad
 * options (naming what and where), E_UNSUPPORTED for a video file when FFmpeg is not installed.
 */
export function processVideo(
  input: VideoInput,
  config: VideoProcessorConfig,
  options: ProcessVideoOptions = {},
): Promise<ProcessedVideo> {
  return publicCallAsync('processVideo', arguments, () => processVideoImpl(input, config, options));
}

/** {@link processVideo} without the public guard, for internal callers: what it throws passes through unchanged. */
export async function processVideoImpl(
  input: VideoInput,
  config: VideoProcessorConfig,
  options: ProcessVideoOptions = {},
): Promise<ProcessedVideo> {
  checkConfig(config);
  const flavor = options.flavor ?? config.flavor;
  if (flavor !== 'slow' && flavor !== 'fast') throw inputError(`processVideo: unknown flavor ${String(flavor)}`);
  if (isVideoFrames(input)) return processFrameList(input, config, options, flavor);
  if (typeof input === 'string' || input instanceof URL) return processVideoFile(input, config, options, flavor);
  throw inputError(
    `video: unsupported input ${Object.prototype.toString.call(input)}; expected a file path, a file: URL or { frames, fps }`,
  );
}
