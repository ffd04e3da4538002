/**
 * The video processor's settings, read the way transformers 4.57 builds `Qwen2VLVideoProcessor`
 * (Qwen2-VL, Qwen2.5-VL) and `Qwen3VLVideoProcessor` (Qwen3-VL, Qwen3-VL-MoE): from
 * `video_preprocessor_config.json`, or `preprocessor_config.json` when a checkpoint has none,
 * over the class defaults.
 * @module
 */
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QwenVLError, formatError, inputError } from '../errors.js';
import { publicCall, publicCallAsync } from '../validate.js';
import { OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, parseImageProcessorConfigImpl, type ImageProcessorConfig } from './config.js';

/**
 * Which transformers video processor to reproduce: `qwen2` = `Qwen2VLVideoProcessor` (per-frame
 * pixel bounds, patch 14), `qwen3` = `Qwen3VLVideoProcessor` (bounds over frames × height ×
 * width, patch 16, timestamps).
 */
export type VideoProcessorKind = 'qwen2' | 'qwen3';

/**
 * Parsed video-processor settings. The pixel bounds mean per frame for `qwen2` and for the whole
 * clip (frames × height × width) for `qwen3`. `flavor` is always `fast`: transformers' video
 * processors are torchvision-based (uint8 antialiased bicubic, fused rescale + normalise) for every
 * family, whatever the image processor is.
 */
export interface VideoProcessorConfig extends ImageProcessorConfig {
  kind: VideoProcessorKind;
  /** The processor's own sampling rate when it samples (`fps`; Qwen3-VL: 2). */
  fps?: number;
  /** `min_frames` (4). */
  minFrames: number;
  /** `max_frames` (768). */
  maxFrames: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Upper bounds of the sampling fields (released processors: fps 2, max_frames 768). */
export const VIDEO_LIMITS: Readonly<Record<string, number>> = Object.freeze({
  fps: 1000,
  min_frames: 65536,
  max_frames: 65536,
});

/** The class defaults of the two processors, as JSON fields. */
const CLASS_DEFAULTS: Record<VideoProcessorKind, Record<string, unknown>> = {
  qwen2: {
    patch_size: 14,
    temporal_patch_size: 2,
    merge_size: 2,
    size: { shortest_edge: 128 * 28 * 28, longest_edge: 28 * 28 * 768 },
    image_mean: OPENAI_CLIP_MEAN,
    image_std: OPENAI_CLIP_STD,
  },
  qwen3: {
    patch_size: 16,
    temporal_patch_size: 2,
    merge_size: 2,
    size: { shortest_edge: 128 * 32 * 32, longest_edge: 32 * 32 * 768 },
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.5, 0.5, 0.5],
  },
};

/** Guesses the processor from the file: `video_processor_type`, else `processor_class`, else Qwen2. */
function inferKind(json: Record<string, unknown>): VideoProcessorKind {
  for (const key of ['video_processor_type', 'processor_class']) {
    const v = json[key];
    if (typeof v === 'string') {
      if (/^Qwen3/i.test(v)) return 'qwen3';
      if (/^Qwen2/i.test(v)) return 'qwen2';
    }
  }
  return 'qwen2';
}

/**
 * Reads video-processor settings from the parsed JSON of `video_preprocessor_config.json` (or
 * `preprocessor_config.json`). `kind` forces the processor (for instance from the model's family);
 * by default it is taken from `video_processor_type` / `processor_class`. Throws E_MODEL_FORMAT
 * for malformed fields.
 */
export function parseVideoProcessorConfig(
  json: unknown,
  file = 'video_preprocessor_config.json',
  kind?: VideoProcessorKind,
): VideoProcessorConfig {
  return publicCall('parseVideoProcessorConfig', arguments, () => parseVideoProcessorConfigImpl(json, file, kind));
}

/** {@link parseVideoProcessorConfig} without the public guard, for internal callers: what it throws passes through unchanged. */
function parseVideoProcessorConfigImpl(
  json: unknown,
  file = 'video_preprocessor_config.json',
  kind?: VideoProcessorKind,
): VideoProcessorConfig {
  if (!isObject(json)) throw formatError(file, 'expected a JSON object');
  if (kind !== undefined && kind !== 'qwen2' && kind !== 'qwen3') {
    throw inputError(`video processor kind must be 'qwen2' or 'qwen3', got ${String(kind)}`);
  }
  const k = kind ?? inferKind(json);
  const merged: Record<string, unknown> = { ...CLASS_DEFAULTS[k], ...json };
  if (k === 'qwen3') {
    // Qwen3VLVideoProcessor reads only `size`; stray min/max_pixels do not override it.
    delete merged.min_pixels;
    delete merged.max_pixels;
  }
  // The image parser's flavor comes from image_processor_type; video processors are all torch-based.
  delete merged.image_processor_type;
  const base = parseImageProcessorConfigImpl(merged, file);

  const count = (key: string, dflt: number | undefined): number | undefined => {
    const v = json[key];
    if (v === undefined || v === null) return dflt;
    const max = VIDEO_LIMITS[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) {
      throw formatError(file, `"${key}" must be a positive number up to ${max}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const fps = count('fps', k === 'qwen3' ? 2 : undefined);
  const minFrames = count('min_frames', 4) as number;
  const maxFrames = count('max_frames', 768) as number;
  if (!Number.isInteger(minFrames) || !Number.isInteger(maxFrames) || minFrames > maxFrames) {
    throw formatError(file, `min_frames / max_frames must be integers with min <= max, got ${minFrames} / ${maxFrames}`);
  }
  return { ...base, flavor: 'fast', kind: k, ...(fps !== undefined ? { fps } : {}), minFrames, maxFrames };
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new QwenVLError('E_MODEL_FORMAT', `${file}: cannot be read (${(err as Error).message})`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw formatError(file, `invalid JSON (${(err as Error).message})`);
  }
}

/**
 * Reads `<dir>/video_preprocessor_config.json`, or `<dir>/preprocessor_config.json` when the
 * checkpoint has no video config (Qwen2-VL / Qwen2.5-VL), as transformers does.
 */
export function loadVideoProcessorConfig(dir: string, kind?: VideoProcessorKind): Promise<VideoProcessorConfig> {
  return publicCallAsync('loadVideoProcessorConfig', arguments, () => loadVideoProcessorConfigImpl(dir, kind));
}

/** {@link loadVideoProcessorConfig} without the public guard, for internal callers: what it throws passes through unchanged. */
export async function loadVideoProcessorConfigImpl(dir: string, kind?: VideoProcessorKind): Promise<VideoProcessorConfig> {
  const video = join(dir, 'video_preprocessor_config.json');
  let file = video;
  try {
    await access(video);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new QwenVLError('E_MODEL_FORMAT', `${video}: cannot be read (${(err as Error).message})`, { cause: err });
    }
    file = join(dir, 'preprocessor_config.json');
  }
  return parseVideoProcessorConfigImpl(await readJson(file), file, kind);
}
