/**
 * The image processor's settings, read from a checkpoint's `preprocessor_config.json` the way
 * transformers' `Qwen2VLImageProcessor` / `Qwen2VLImageProcessorFast` read them.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QwenVLError, formatError } from '../errors.js';
import { publicCall, publicCallAsync } from '../validate.js';

/**
 * Which transformers implementation the numbers must match. They differ in the last bits:
 * - `slow` (`Qwen2VLImageProcessor`): PIL bicubic resize (22-bit fixed point), rescale in
 *   float64 then normalise in float32 (numpy).
 * - `fast` (`Qwen2VLImageProcessorFast`, what Qwen3-VL checkpoints name): torchvision/torch
 *   uint8 antialiased bicubic (int16 fixed point), rescale fused into the normalisation (torch).
 *
 * The flavor is taken from `image_processor_type` (a name ending in `Fast` means fast). Note that
 * some transformers releases' `AutoImageProcessor` (its FORCE_FAST_IMAGE_PROCESSOR list, with
 * torchvision installed and `use_fast` unset) load `Qwen2VLImageProcessor` as the fast one; pass
 * `flavor: 'fast'` to match such a setup.
 */
export type ProcessorFlavor = 'slow' | 'fast';

/** Parsed image-processor settings (transformers' names, camelCased). */
export interface ImageProcessorConfig {
  /** Side of a square vision patch in pixels (14 for Qwen2/2.5-VL, 16 for Qwen3-VL). */
  patchSize: number;
  /** Patches merged per side into one LLM token (2). */
  mergeSize: number;
  /** Frames per temporal patch (2); an image is repeated to fill it. */
  temporalPatchSize: number;
  /** Lower bound of the resized pixel count (`min_pixels` / `size.shortest_edge`). */
  minPixels: number;
  /** Upper bound of the resized pixel count (`max_pixels` / `size.longest_edge`). */
  maxPixels: number;
  /** Per-channel mean (RGB), applied after rescaling. */
  imageMean: [number, number, number];
  /** Per-channel standard deviation (RGB). */
  imageStd: [number, number, number];
  /** Factor applied to 0..255 samples (1/255). */
  rescaleFactor: number;
  doResize: boolean;
  doRescale: boolean;
  doNormalize: boolean;
  /** Whose arithmetic to reproduce; from `image_processor_type`. */
  flavor: ProcessorFlavor;
}

/** transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD, the processors' defaults. */
export const OPENAI_CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** The processor's defaults when a field is absent (Qwen2-VL values). */
export const DEFAULT_IMAGE_PROCESSOR_CONFIG: Readonly<ImageProcessorConfig> = Object.freeze({
  patchSize: 14,
  mergeSize: 2,
  temporalPatchSize: 2,
  minPixels: 56 * 56,
  maxPixels: 28 * 28 * 1280,
  imageMean: OPENAI_CLIP_MEAN,
  imageStd: OPENAI_CLIP_STD,
  rescaleFactor: 1 / 255,
  doResize: true,
  doRescale: true,
  doNormalize: true,
  flavor: 'slow',
});

const PIL_BICUBIC = 3;

/**
 * Upper bounds of the integer fields (and `size` edges): far above released processors (patch 14
 * or 16, merge 2, max_pixels 12845056; Qwen3-VL video: 25165824 over a whole clip) and far below
 * what would exhaust memory when buffers are sized by them.
 */
export const PROCESSOR_LIMITS: Readonly<Record<string, number>> = Object.freeze({
  patch_size: 1024,
  merge_size: 64,
  temporal_patch_size: 64,
  min_pixels: 2 ** 24,
  max_pixels: 2 ** 28,
  shortest_edge: 2 ** 24,
  longest_edge: 2 ** 28,
  /** RGB × temporal_patch_size × patch_size²: the values of one patch. */
  patch_values: 2 ** 20,
});

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads the image-processor settings from the parsed JSON of a `preprocessor_config.json`.
 * `size.shortest_edge` / `size.longest_edge` give the pixel bounds and `min_pixels` /
 * `max_pixels`, when present, override them (as transformers does). `file` names the source in
 * error messages. Throws E_MODEL_FORMAT for malformed fields and E_UNSUPPORTED for a resampling
 * filter other than bicubic.
 */
export function parseImageProcessorConfig(json: unknown, file = 'preprocessor_config.json'): ImageProcessorConfig {
  return publicCall('parseImageProcessorConfig', arguments, () => parseImageProcessorConfigImpl(json, file));
}

/** {@link parseImageProcessorConfig} without the public guard, for internal callers: what it throws passes through unchanged. */
export function parseImageProcessorConfigImpl(json: unknown, file = 'preprocessor_config.json'): ImageProcessorConfig {
  if (!isObject(json)) throw formatError(file, 'expected a JSON object');
  const cfg: ImageProcessorConfig = { ...DEFAULT_IMAGE_PROCESSOR_CONFIG };

  const int = (key: string, min: number): number | undefined => {
    const v = json[key];
    if (v === undefined || v === null) return undefined;
    const max = PROCESSOR_LIMITS[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      throw formatError(file, `"${key}" must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const bool = (key: string): boolean | undefined => {
    const v = json[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw formatError(file, `"${key}" must be a boolean, got ${JSON.stringify(v)}`);
    return v;
  };
  const triple = (key: string): [number, number, number] | undefined => {
    const v = json[key];
    if (v === undefined || v === null) return undefined;
    const arr = typeof v === 'number' ? [v, v, v] : v;
    if (!Array.isArray(arr) || arr.length !== 3 || !arr.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw formatError(file, `"${key}" must be a number or an array of 3 numbers, got ${JSON.stringify(v)}`);
    }
    return [arr[0], arr[1], arr[2]];
  };

  cfg.patchSize = int('patch_size', 1) ?? cfg.patchSize;
  cfg.mergeSize = int('merge_size', 1) ?? cfg.mergeSize;
  cfg.temporalPatchSize = int('temporal_patch_size', 1) ?? cfg.temporalPatchSize;
  const patchValues = 3 * cfg.temporalPatchSize * cfg.patchSize ** 2;
  if (patchValues > PROCESSOR_LIMITS.patch_values) {
    throw formatError(
      file,
      `"patch_size": one patch holds 3 × temporal_patch_size × patch_size² = ${patchValues} values, over the limit of ${PROCESSOR_LIMITS.patch_values}`,
    );
  }

  const size = json.size;
  if (size !== undefined && size !== null) {
    if (!isObject(size)) throw formatError(file, `"size" must be an object, got ${JSON.stringify(size)}`);
    const edge = (key: string): number => {
      const v = size[key];
      const max = PROCESSOR_LIMITS[key];
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max) {
        throw formatError(file, `"size.${key}" must be an integer from 1 to ${max}, got ${JSON.stringify(v)}`);
      }
      return v;
    };
    // Older configs spell the bounds inside size as min_pixels/max_pixels.
    if ('shortest_edge' in size || 'longest_edge' in size) {
      cfg.minPixels = edge('shortest_edge');
      cfg.maxPixels = edge('longest_edge');
    } else if ('min_pixels' in size || 'max_pixels' in size) {
      cfg.minPixels = edge('min_pixels');
      cfg.maxPixels = edge('max_pixels');
    }
  }
  cfg.minPixels = int('min_pixels', 0) ?? cfg.minPixels;
  cfg.maxPixels = int('max_pixels', 1) ?? cfg.maxPixels;
  if (cfg.minPixels > cfg.maxPixels) {
    throw formatError(file, `min_pixels ${cfg.minPixels} exceeds max_pixels ${cfg.maxPixels}`);
  }

  cfg.imageMean = triple('image_mean') ?? cfg.imageMean;
  cfg.imageStd = triple('image_std') ?? cfg.imageStd;
  if (cfg.imageStd.some((s) => s === 0)) throw formatError(file, '"image_std" has a zero entry');
  const rescale = json.rescale_factor;
  if (rescale !== undefined && rescale !== null) {
    if (typeof rescale !== 'number' || !Number.isFinite(rescale) || rescale === 0) {
      throw formatError(file, `"rescale_factor" must be a finite nonzero number, got ${JSON.stringify(rescale)}`);
    }
    cfg.rescaleFactor = rescale;
  }
  cfg.doResize = bool('do_resize') ?? cfg.doResize;
  cfg.doRescale = bool('do_rescale') ?? cfg.doRescale;
  cfg.doNormalize = bool('do_normalize') ?? cfg.doNormalize;

  const resample = json.resample;
  if (resample !== undefined && resample !== null && resample !== PIL_BICUBIC) {
    throw new QwenVLError(
      'E_UNSUPPORTED',
      `${file}: only bicubic resampling (resample = 3) is implemented, got ${JSON.stringify(resample)}`,
    );
  }
  const type = json.image_processor_type;
  if (type !== undefined && typeof type !== 'string') throw formatError(file, '"image_processor_type" must be a string');
  cfg.flavor = typeof type === 'string' && type.endsWith('Fast') ? 'fast' : 'slow';
  return cfg;
}

/** Reads and parses `<dir>/preprocessor_config.json`. */
export function loadImageProcessorConfig(dir: string): Promise<ImageProcessorConfig> {
  return publicCallAsync('loadImageProcessorConfig', arguments, () => loadImageProcessorConfigImpl(dir));
}

/** {@link loadImageProcessorConfig} without the public guard, for internal callers: what it throws passes through unchanged. */
export async function loadImageProcessorConfigImpl(dir: string): Promise<ImageProcessorConfig> {
  const file = join(dir, 'preprocessor_config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new QwenVLError('E_MODEL_FORMAT', `${file}: cannot be read (${(err as Error).message})`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw formatError(file, `invalid JSON (${(err as Error).message})`);
  }
  return parseImageProcessorConfigImpl(json, file);
}
