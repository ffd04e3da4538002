/**
 * Images to vision-tower input, matching transformers' Qwen2-VL image processors: decode (sharp),
 * `smart_resize`, bicubic resize, rescale + normalise, repeat to the temporal patch size and
 * flatten into patches. Every loop over pixels runs natively (libvips for decoding, the addon for
 * resampling and patch flattening).
 *
 * What "the same as the reference" means here: transformers is fed PIL images converted with
 * `convert("RGB")`. PIL ignores embedded ICC profiles and drops alpha without compositing, so
 * decoding here ignores ICC profiles and drops alpha too (`alpha: 'white'` composites onto white
 * instead, as qwen-vl-utils' `fetch_image` does, though not with PIL's exact rounding). EXIF
 * orientation is applied by default, as transformers' `load_image` does (`autoOrient: false`
 * keeps the stored orientation, as a bare `PIL.Image.open` would).
 *
 * Checked byte for byte against Pillow 9.4's decoders: baseline, progressive, 4:2:0 and 4:4:4
 * JPEG (with and without an ICC profile), RGB/RGBA/palette/grey+alpha/16-bit RGB PNG, lossy WebP
 * and opaque GIF all decode identically. Known differences: CMYK JPEGs (libvips converts with a
 * default profile, PIL with a naive formula), 16-bit greyscale PNGs (PIL clips to 255, libvips
 * keeps the high byte) and fully transparent GIF pixels (PIL shows the palette colour, libvips
 * black).
 * @module
 */
import sharp, { type Metadata, type OutputInfo, type Sharp } from 'sharp';
import { QwenVLError, inputError } from '../errors.js';
import { native } from '../native/binding.js';
import type { ImageProcessorConfig, ProcessorFlavor } from './config.js';
import { resolveMediaPolicy, type MediaPolicy, type ResolvedMediaPolicy } from './media-policy.js';
import { checkMediaBytes, resolveMediaSource } from './media-source.js';
import { smartResizeImpl } from './smart-resize.js';
import { publicCallAsync } from '../validate.js';

/** Raw interleaved 8-bit pixels; `channels` defaults to 3 (RGB). 4 is RGBA, 1 grey, 2 grey+alpha. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels?: 1 | 2 | 3 | 4;
}

/**
 * An image: a file path (or `file:` URL, or `data:image/...;base64,` URI), encoded bytes
 * (Buffer, Uint8Array, ArrayBuffer: JPEG, PNG, WebP, GIF (first frame), TIFF, AVIF, ...), a
 * sharp instance (its pipeline is applied; it is cloned, not consumed) or raw pixels.
 */
export type ImageInput = string | URL | Uint8Array | ArrayBuffer | Sharp | RawImage;

/** Decoded 8-bit RGB pixels, row-major, 3 bytes per pixel. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * PIL's decompression-bomb limit (`2 * Image.MAX_IMAGE_PIXELS`, above which PIL refuses to
 * open an image): the default for {@link DecodeOptions.maxInputPixels}.
 */
export const DEFAULT_MAX_INPUT_PIXELS = 178_956_970;

/** How to decode. */
export interface DecodeOptions {
  /**
   * Largest accepted width × height of the encoded image, checked from its header before any
   * pixel is decoded (E_INPUT above it). Default {@link DEFAULT_MAX_INPUT_PIXELS}.
   */
  maxInputPixels?: number;
  /** Apply the EXIF orientation (default true). Ignored for sharp instances and raw pixels. */
  autoOrient?: boolean;
  /** Alpha handling: `'drop'` (default, PIL's `convert("RGB")`) or `'white'` (composite on white). */
  alpha?: 'drop' | 'white';
  /**
   * Which sources may be read and how large they may be (default: the library's, local files
   * allowed); checked before anything is read or decoded.
   */
  media?: MediaPolicy | ResolvedMediaPolicy;
}

function isRawImage(v: unknown): v is RawImage {
  return typeof v === 'object' && v !== null && 'data' in v && 'width' in v && 'height' in v;
}

function isSharp(v: unknown): v is Sharp {
  if (v instanceof sharp) return true;
  const o = v as Record<string, unknown> | null;
  return (
    typeof o === 'object' && o !== null && typeof o.clone === 'function' && typeof o.metadata === 'function' &&
    typeof o.toBuffer === 'function'
  );
}

function describe(input: ImageInput): string {
  if (typeof input === 'string') return input.startsWith('data:') ? 'data URI' : `"${input}"`;
  if (input instanceof URL) return `"${input.href}"`;
  if (input instanceof Uint8Array) return `buffer of ${input.byteLength} bytes`;
  if (input instanceof ArrayBuffer) return `ArrayBuffer of ${input.byteLength} bytes`;
  if (isRawImage(input)) return `raw ${input.width}x${input.height} image`;
  return 'sharp instance';
}

function checkLimit(width: number, height: number, limit: number, what: string): void {
  if (!(width > 0 && height > 0)) throw inputError(`image ${what}: has no pixels (${width}x${height})`);
  if (width * height > limit) {
    throw inputError(
      `image ${what}: ${width}x${height} = ${width * height} pixels exceeds the limit of ${limit} ` +
        '(maxInputPixels); refused before decoding',
    );
  }
}

async function finish(pipeline: Sharp, alpha: 'drop' | 'white', what: string): Promise<RgbImage> {
  let p = pipeline.toColourspace('srgb');
  p = alpha === 'white' ? p.flatten({ background: { r: 255, g: 255, b: 255 } }) : p.removeAlpha();
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await p.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new QwenVLError('E_INPUT', `image ${what}: cannot be decoded (${(err as Error).message})`, { cause: err });
  }
  const { width, height, channels } = out.info;
  if (channels !== 3 || out.data.byteLength !== width * height * 3) {
    throw new QwenVLError('E_NATIVE', `image ${what}: decoder returned ${channels} channels, expected RGB`);
  }
  return { data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength), width, height };
}

/**
 * Decodes an image to 8-bit RGB (see the module notes for how this matches PIL). Throws E_INPUT
 * for missing, empty, undecodable or over-limit images, with the source named in the message.
 */
export function decodeImage(input: ImageInput, options: DecodeOptions = {}): Promise<RgbImage> {
  return publicCallAsync('decodeImage', arguments, () => decodeImageImpl(input, options));
}

/** {@link decodeImage} without the public guard, for internal callers: what it throws passes through unchanged. */
export async function decodeImageImpl(input: ImageInput, options: DecodeOptions = {}): Promise<RgbImage> {
  const own = options.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  if (!(own >= 1) || !Number.isFinite(own)) throw inputError(`maxInputPixels must be a positive number, got ${own}`);
  const policy = await resolveMediaPolicy(options.media);
  const limit = Math.min(own, policy.maxInputPixels);
  const alpha = options.alpha ?? 'drop';
  if (alpha !== 'drop' && alpha !== 'white') throw inputError(`alpha must be 'drop' or 'white', got ${String(alpha)}`);
  const what = describe(input);

  if (isRawImage(input)) {
    const { data, width, height } = input;
    const channels = input.channels ?? 3;
    if (!(data instanceof Uint8Array)) throw inputError(`image ${what}: data must be a Uint8Array`);
    if (![1, 2, 3, 4].includes(channels)) throw inputError(`image ${what}: channels must be 1..4, got ${channels}`);
    if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
      throw inputError(`image ${what}: width and height must be positive integers`);
    }
    checkLimit(width, height, limit, what);
    if (data.byteLength !== width * height * channels) {
      throw inputError(
        `image ${what}: data holds ${data.byteLength} bytes, ${width}x${height}x${channels} needs ${width * height * channels}`,
      );
    }
    if (channels === 3) return { data, width, height };
    return finish(sharp(data, { raw: { width, height, channels } }), alpha, what);
  }

  let pipeline: Sharp;
  if (isSharp(input)) {
    pipeline = input.clone();
  } else {
    let source: string | Buffer;
    if (typeof input === 'string' || input instanceof URL) {
      source = await resolveMediaSource(input, 'image', policy);
    } else if (input instanceof Uint8Array || input instanceof ArrayBuffer) {
      source = input instanceof ArrayBuffer ? Buffer.from(input) : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
      if (source.byteLength === 0) throw inputError('image buffer is empty');
      checkMediaBytes(source.byteLength, 'image', policy, what);
    } else {
      throw inputError(`image: unsupported input type ${Object.prototype.toString.call(input)}`);
    }
    pipeline = sharp(source, {
      // The limit is enforced below from the header, with a message of our own.
      limitInputPixels: false,
      ignoreIcc: true,
      pages: 1,
      page: 0,
      autoOrient: options.autoOrient ?? true,
    });
  }
  let meta: Metadata;
  try {
    meta = await pipeline.metadata();
  } catch (err) {
    throw new QwenVLError('E_INPUT', `image ${what}: cannot be decoded (${(err as Error).message})`, { cause: err });
  }
  checkLimit(meta.width ?? 0, meta.height ?? 0, limit, what);
  return finish(pipeline, alpha, what);
}

/** Per-image sizing options (qwen-vl-utils' names, camelCased). */
export interface ImageSizeOptions {
  /** Lower bound of the resized pixel count (default: the processor's). */
  minPixels?: number;
  /** Upper bound of the resized pixel count (default: the processor's). */
  maxPixels?: number;
  /**
   * An explicit target size; both must be given. As in qwen-vl-utils, it is still rounded to
   * multiples of patch × merge by `smart_resize` (within the pixel bounds above).
   */
  resizedWidth?: number;
  resizedHeight?: number;
}

/** An image with its own sizing options. */
export interface ImageItem extends ImageSizeOptions {
  image: ImageInput;
}

/** Options of {@link processImages}. */
export interface ProcessImagesOptions extends DecodeOptions {
  /** Override whose arithmetic to reproduce (default: `config.flavor`). */
  flavor?: ProcessorFlavor;
  /** What to call each image in error messages (default `images[i]` when there are several). */
  labels?: readonly string[];
}

/** An image's size as decoded (EXIF orientation applied) and as the processor resized it. */
export interface ImageSize {
  originalWidth: number;
  originalHeight: number;
  resizedWidth: number;
  resizedHeight: number;
}

/** Vision-tower input for a list of images. */
export interface ProcessedImages {
  /** Rows of flattened patches, all images concatenated in order: shape[0] × shape[1] floats. */
  pixelValues: Float32Array;
  /** [number of patches, 3 × temporalPatchSize × patchSize²]. */
  shape: [number, number];
  /** Per image: [t, h, w] in patches (t = 1 for an image). */
  imageGridThw: [number, number, number][];
  /** Per image: its original and resized size (what grounding maps reply coordinates with). */
  imageSizes: ImageSize[];
}

function isImageItem(v: unknown): v is ImageItem {
  return typeof v === 'object' && v !== null && 'image' in v && !isSharp(v);
}

/** The [height, width] an image of the given size is resized to under `config` and `opts`. */
export function targetSize(
  height: number,
  width: number,
  config: ImageProcessorConfig,
  opts: ImageSizeOptions = {},
): [number, number] {
  const factor = config.patchSize * config.mergeSize;
  const minPixels = opts.minPixels ?? config.minPixels;
  const maxPixels = opts.maxPixels ?? config.maxPixels;
  const hasW = opts.resizedWidth !== undefined, hasH = opts.resizedHeight !== undefined;
  if (hasW !== hasH) throw inputError('resizedWidth and resizedHeight must be given together');
  if (hasW) return smartResizeImpl(opts.resizedHeight as number, opts.resizedWidth as number, { factor, minPixels, maxPixels });
  if (!config.doResize) return [height, width];
  return smartResizeImpl(height, width, { factor, minPixels, maxPixels });
}

/** Bicubic resize of 8-bit RGB with the rounding of the given flavor (a copy-free no-op at equal size). */
export function resizeRgb(
  image: RgbImage,
  width: number,
  height: number,
  flavor: ProcessorFlavor = 'slow',
): Promise<RgbImage> {
  return publicCallAsync('resizeRgb', arguments, () => resizeRgbImpl(image, width, height, flavor));
}

/** {@link resizeRgb} without the public guard, for internal callers: what it throws passes through unchanged. */
export async function resizeRgbImpl(
  image: RgbImage,
  width: number,
  height: number,
  flavor: ProcessorFlavor = 'slow',
): Promise<RgbImage> {
  if (width === image.width && height === image.height) return image;
  const data = await native.resizeBicubic(
    image.data,
    image.width,
    image.height,
    width,
    height,
    flavor === 'fast' ? 'torch' : 'pillow',
  );
  return { data, width, height };
}

/**
 * Rescales, normalises and flattens same-size RGB frames (one image, or the frames of a video)
 * into patch rows. Frames are padded to a multiple of the temporal patch size by repeating the
 * last one. Returns the rows and the [t, h, w] grid.
 * @param flavor the resampling flavor; `config.flavor` when omitted
 */
export function patchifyFrames(
  frames: Uint8Array[],
  width: number,
  height: number,
  config: ImageProcessorConfig,
  flavor?: ProcessorFlavor, // no `= config.flavor` here: a default is evaluated before the guard runs
): Promise<{ pixelValues: Float32Array; shape: [number, number]; gridThw: [number, number, number] }> {
  return publicCallAsync('patchifyFrames', arguments, () => patchifyFramesImpl(frames, width, height, config, flavor));
}

/** {@link patchifyFrames} without the public guard, for internal callers: what it throws passes through unchanged. */
export async function patchifyFramesImpl(
  frames: Uint8Array[],
  width: number,
  height: number,
  config: ImageProcessorConfig,
  flavor: ProcessorFlavor = config.flavor,
): Promise<{ pixelValues: Float32Array; shape: [number, number]; gridThw: [number, number, number] }> {
  const P = config.patchSize, T = config.temporalPatchSize;
  const pixelValues = await native.patchify(frames, width, height, {
    patchSize: P,
    mergeSize: config.mergeSize,
    temporalPatchSize: T,
    doRescale: config.doRescale,
    rescaleFactor: config.rescaleFactor,
    doNormalize: config.doNormalize,
    mean: [...config.imageMean],
    std: [...config.imageStd],
    order: flavor,
  });
  const gridThw: [number, number, number] = [Math.ceil(frames.length / T), height / P, width / P];
  const rowLen = 3 * T * P * P;
  return { pixelValues, shape: [pixelValues.length / rowLen, rowLen], gridThw };
}

/**
 * Processes images as transformers' Qwen2-VL image processor does and concatenates their
 * patches in order. Each entry is an image or `{ image, minPixels, maxPixels, resizedWidth,
 * resizedHeight }`.
 */
export function processImages(
  images: readonly (ImageInput | ImageItem)[],
  config: ImageProcessorConfig,
  options: ProcessImagesOptions = {},
): Promise<ProcessedImages> {
  return publicCallAsync('processImages', arguments, () => processImagesImpl(images, config, options));
}

/** {@link processImages} without the public guard, for internal callers: what it throws passes through unchanged. */
export async function processImagesImpl(
  images: readonly (ImageInput | ImageItem)[],
  config: ImageProcessorConfig,
  options: ProcessImagesOptions = {},
): Promise<ProcessedImages> {
  if (!Array.isArray(images)) throw inputError('processImages: images must be an array');
  const flavor = options.flavor ?? config.flavor;
  if (flavor !== 'slow' && flavor !== 'fast') throw inputError(`processImages: unknown flavor ${String(flavor)}`);
  // Resolved once for all images, and the count checked before any of them is read.
  const media = await resolveMediaPolicy(options.media);
  if (images.length > media.maxImages) {
    throw inputError(`${images.length} images is over the media policy's maxImages of ${media.maxImages}; refused before decoding`);
  }
  const decodeOptions = { ...options, media };
  const parts = await Promise.all(
    images.map(async (entry, i) => {
      const item: ImageItem = isImageItem(entry) ? entry : { image: entry };
      let decoded: RgbImage;
      let size: [number, number];
      try {
        decoded = await decodeImageImpl(item.image, decodeOptions);
        size = targetSize(decoded.height, decoded.width, config, item);
      } catch (err) {
        const label = options.labels?.[i] ?? (images.length > 1 ? `images[${i}]` : undefined);
        if (err instanceof QwenVLError && label !== undefined) {
          throw new QwenVLError(err.code, `${label}: ${err.message}`, { cause: err });
        }
        throw err;
      }
      const [h, w] = size;
      const resized = await resizeRgbImpl(decoded, w, h, flavor);
      const sizes: ImageSize = { originalWidth: decoded.width, originalHeight: decoded.height, resizedWidth: w, resizedHeight: h };
      return { ...(await patchifyFramesImpl([resized.data], w, h, config, flavor)), sizes };
    }),
  );
  const rowLen = 3 * config.temporalPatchSize * config.patchSize * config.patchSize;
  const total = parts.reduce((n, p) => n + p.pixelValues.length, 0);
  let pixelValues: Float32Array;
  if (parts.length === 1) {
    pixelValues = parts[0].pixelValues;
  } else {
    pixelValues = new Float32Array(total);
    let offset = 0;
    for (const p of parts) {
      pixelValues.set(p.pixelValues, offset);
      offset += p.pixelValues.length;
    }
  }
  return { pixelValues, shape: [total / rowLen, rowLen], imageGridThw: parts.map((p) => p.gridThw), imageSizes: parts.map((p) => p.sizes) };
}
