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
import type { GroundingImage, GroundingItem, GroundingResult } from './types.js';

/** Options of {@link parseGrounding}. */
export interface ParseGroundingOptions {
  /** The family that wrote the reply (`'qwen2.5-vl'`, … or its config.json model_type); it decides the coordinates. */
  family: FamilyId | string;
  /**
   * The request's images in order (their original sizes, and for Qwen2.5-VL their resized
   * sizes): `PreparedInputs.imageSizes` of the prepared request gives both.
   */
  images: readonly GroundingImage[];
}

/** The boxes and points of `reply` mapped to images. Never throws. @internal */
export function groundingOf(reply: string, images: readonly GroundingImage[], coordinates: GroundingCoordinates): GroundingResult {
  const warnings: string[] = [];
  const raws = [...refBoxGrounding(reply, warnings), ...jsonGrounding(reply, images.length, warnings)].sort((a, b) => a.offset - b.offset);
  const items: GroundingItem[] = [];
  if (raws.length > 0 && images.length === 0) {
    warnings.push(`${raws.length} box(es) or point(s) but no image to place them on; left out`);
    return { items, warnings };
  }
  let guessed = false;
  for (const raw of raws) {
    let index = raw.image;
    if (index === undefined) {
      // The only image, or with several the first, said once (the reply did not say which).
      index = 0;
      if (images.length > 1 && !guessed) {
        guessed = true;
        warnings.push(`the reply does not say which of the ${images.length} images its boxes are on; image 0 assumed where it names none`);
      }
    }
    if (index >= images.length) {
      warnings.push(`offset ${raw.offset}: image ${index} named, but the request has ${images.length}; left out`);
      continue;
    }
    const item = toOriginalPixels(raw, index, images[index], coordinates, warnings);
    if (item) items.push(item);
  }
  return { items, warnings };
}

function positive(where: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw expected(where, 'a positive number', v);
  return v;
}

/** The images option, checked. */
function readImages(v: unknown, needResized: boolean): GroundingImage[] {
  if (!Array.isArray(v)) throw expected('parseGrounding: options.images', 'an array of image sizes', v);
  return v.map((img: unknown, i) => {
    const where = `parseGrounding: options.images[${i}]`;
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
 * Finds the boxes and points in a model's reply and maps them to pixels of the ORIGINAL images.
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
 * Anything it cannot read is left out with a line in `warnings`; only bad options throw (E_INPUT).
 */
export function parseGrounding(reply: string, options: ParseGroundingOptions): GroundingResult {
  return publicCall('parseGrounding', arguments, () => {
    if (typeof reply !== 'string') throw expected('parseGrounding: reply', 'a string', reply);
    if (options === undefined) throw inputError('parseGrounding: options { family, images } are required');
    const o = readOptions('parseGrounding: options', options, ['family', 'images']);
    const family = typeof o.family === 'string' ? (getFamily(o.family) ?? familyForModelType(o.family)) : undefined;
    if (family === undefined) throw expected('parseGrounding: options.family', 'a family id or config.json model_type', o.family);
    const coordinates = family.groundingCoordinates;
    return groundingOf(reply, readImages(o.images, coordinates === 'resized-pixels'), coordinates);
  });
}
