/**
 * {@link parseGrounding}: the boxes and points of a reply, in pixels of the original images.
 * @module
 */
import { inputError } from '../errors.js';
import type { GroundingCoordinates } from '../families/family.js';
import { familyForModelType, getFamily, type FamilyId } from '../families/registry.js';
import { expected, publicCall, readOptions } from '../validate.js';
import { toOriginalPixels } from './coordinates.js';
import { jsonGrounding } from './json-items.js';
import { refBoxGrounding } from './ref-box.js';
import type { GroundingImage, GroundingItem, GroundingResult, GroundingVideo, RawGrounding } from './types.js';

/** Options of {@link parseGrounding}. */
export interface ParseGroundingOptions {
  /** The family that wrote the reply (`'qwen2.5-vl'`, … or its config.json model_type); it decides the coordinates. */
  family: FamilyId | string;
  /**
   * The request's images in order (their original sizes, and for Qwen2.5-VL their resized
   * sizes): `PreparedInputs.imageSizes` of the prepared request gives both.
   */
  images: readonly GroundingImage[];
  /**
   * The request's videos in order (their original frame sizes, and for Qwen2.5-VL the size the
   * processor resized the frames to): `PreparedInputs.videoSizes` gives both. Default none.
   */
  videos?: readonly GroundingVideo[];
}

/** Which image or video a raw item is on, guessing (with one warning per kind of guess) where the reply does not say. */
function placeOf(raw: RawGrounding, images: number, videos: number, said: Set<string>, warnings: string[]): { media: 'image' | 'video'; index: number } {
  if (raw.video !== undefined) return { media: 'video', index: raw.video };
  if (raw.image !== undefined) return { media: 'image', index: raw.image };
  const once = (key: string, line: string) => {
    if (!said.has(key)) warnings.push(line);
    said.add(key);
  };
  // A time or frame number says "video"; so does a request with videos only.
  if (videos > 0 && (raw.time !== undefined || raw.frame !== undefined || images === 0)) {
    if (videos > 1) once('video', `the reply does not say which of the ${videos} videos its boxes are on; video 0 assumed where it names none`);
    return { media: 'video', index: 0 };
  }
  if (images > 1) once('image', `the reply does not say which of the ${images} images its boxes are on; image 0 assumed where it names none`);
  if (videos > 0) once('mixed', 'the reply does not say whether its boxes are on an image or a video; image 0 assumed where an item names neither (nor a time)');
  return { media: 'image', index: 0 };
}

/** The boxes and points of `reply` mapped to images and videos. Never throws. @internal */
export function groundingOf(
  reply: string,
  images: readonly GroundingImage[],
  coordinates: GroundingCoordinates,
  videos: readonly GroundingVideo[] = [],
): GroundingResult {
  const warnings: string[] = [];
  const raws = [...refBoxGrounding(reply, warnings), ...jsonGrounding(reply, images.length, warnings)].sort((a, b) => a.offset - b.offset);
  const items: GroundingItem[] = [];
  if (raws.length > 0 && images.length === 0 && videos.length === 0) {
    warnings.push(`${raws.length} box(es) or point(s) but no image or video to place them on; left out`);
    return { items, warnings };
  }
  const said = new Set<string>();
  for (const raw of raws) {
    const { media, index } = placeOf(raw, images.length, videos.length, said, warnings);
    const list = media === 'image' ? images : videos;
    if (index >= list.length) {
      warnings.push(`offset ${raw.offset}: ${media} ${index} named, but the request has ${list.length} ${media}${list.length === 1 ? '' : 's'}; left out`);
      continue;
    }
    const item = toOriginalPixels(raw, index, list[index]!, coordinates, warnings, media);
    if (item) items.push(item);
  }
  return { items, warnings };
}

function positive(where: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw expected(where, 'a positive number', v);
  return v;
}

/** The images (or videos) option, checked. */
function readImages(v: unknown, needResized: boolean, key: 'images' | 'videos' = 'images'): GroundingImage[] {
  if (!Array.isArray(v)) throw expected(`parseGrounding: options.${key}`, `an array of ${key === 'images' ? 'image' : 'video frame'} sizes`, v);
  return v.map((img: unknown, i) => {
    const where = `parseGrounding: options.${key}[${i}]`;
    if (img === null || typeof img !== 'object') throw expected(where, 'an object', img);
    const o = img as Record<string, unknown>;
    const out: GroundingImage = { originalWidth: positive(`${where}.originalWidth`, o.originalWidth), originalHeight: positive(`${where}.originalHeight`, o.originalHeight) };
    if (needResized || o.resizedWidth !== undefined || o.resizedHeight !== undefined) {
      out.resizedWidth = positive(`${where}.resizedWidth`, o.resizedWidth);
      out.resizedHeight = positive(`${where}.resizedHeight`, o.resizedHeight);
    }
    return out;
  });
}

/**
 * Finds the boxes and points in a model's reply and maps them to pixels of the ORIGINAL images
 * and video frames.
 *
 * Reads both forms the Qwen models write — Qwen2-VL's special tokens
 * (`<|object_ref_start|>dog<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>`; pass a
 * reply decoded WITHOUT skipping special tokens, e.g. `tokenizer.decode(result.tokens)`) and the
 * JSON of Qwen2.5-VL and Qwen3-VL (`[{"bbox_2d": [x1, y1, x2, y2], "label": "…"}, {"point_2d":
 * [x, y]}]`) — in the family's coordinates: 0–1000 relative for Qwen2-VL and Qwen3-VL, pixels
 * of the resized image for Qwen2.5-VL (so `images` must carry the resized sizes).
 *
 * Tolerates code fences, prose around, trailing commas, a reply cut off mid-list (the complete
 * objects are kept), swapped corners and coordinates past the edge (clamped). An item names its
 * image with `"image_index"` (0-based) or `"image"` / `"picture"` (counted from 1, as the chat
 * templates' "Picture N:"); otherwise it is on image 0 (a warning says so when there are several).
 *
 * On videos (`videos`): boxes map to the original frame pixels through the frame size the
 * processor chose for that video (its own budget, not the images'), and an item keeps the time in
 * seconds (`"time": 1.0`, the Qwen3-VL video grounding cookbook's form, or `"1.0s"`, `"00:01.0"`)
 * or frame number it was given. An item is on a video when it names one (`"video_index"`, or
 * `"video"` counted from 1), when it carries a time or frame, or when the request has no images.
 * Anything it cannot read is left out with a line in `warnings`; only bad options throw (E_INPUT).
 */
export function parseGrounding(reply: string, options: ParseGroundingOptions): GroundingResult {
  return publicCall('parseGrounding', arguments, () => {
    if (typeof reply !== 'string') throw expected('parseGrounding: reply', 'a string', reply);
    if (options === undefined) throw inputError('parseGrounding: options { family, images } are required');
    const o = readOptions('parseGrounding: options', options, ['family', 'images', 'videos']);
    const family = typeof o.family === 'string' ? (getFamily(o.family) ?? familyForModelType(o.family)) : undefined;
    if (family === undefined) throw expected('parseGrounding: options.family', 'a family id or config.json model_type', o.family);
    const coordinates = family.groundingCoordinates;
    const resized = coordinates === 'resized-pixels';
    const videos = o.videos === undefined ? [] : readImages(o.videos, resized, 'videos');
    return groundingOf(reply, readImages(o.images, resized), coordinates, videos);
  });
}
