/**
 * Boxes and points written as JSON, the form Qwen2.5-VL and Qwen3-VL answer grounding prompts
 * in (their cookbooks): `[{"bbox_2d": [x1, y1, x2, y2], "label": "cat"}, {"point_2d": [x, y],
 * "label": "dog"}]`, a single such object, or such objects nested in other JSON. Text-spotting
 * replies name the text `text_content` instead of `label`.
 *
 * Which image: the models have no convention of their own, so an item names its image only when
 * the reply says so explicitly: `"image_index": i` (0-based, as in the results), or `"image"` /
 * `"image_id"` / `"picture"` with the image's number N counted from 1 (`2`, `"2"`, `"Picture 2"`,
 * the "Picture N:" numbering of the chat templates' add_vision_id), or a key naming it around the
 * items (`{"image 1": [...], "image 2": [...]}`), or a list of lists, one per image
 * (`[[...items of image 1...], [...items of image 2...]]`, when the request has that many images).
 * Otherwise the caller decides.
 * @internal
 * @module
 */
import { findJsonValues, type JsonScan } from './json-recovery.js';
import type { RawGrounding } from './types.js';

const LABEL_KEYS = ['label', 'text_content', 'text', 'name'];
const ONE_BASED_KEYS = ['image', 'image_id', 'picture', 'img'];
const IMAGE_KEY = /^\s*(?:image|picture|img|pic)[\s_#-]*(\d+)\s*$/i;
/** Deepest nesting walked (the parser already bounds it; this keeps the walk honest on its own). */
const MAX_DEPTH = 64;

function num(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v)) return Number(v);
  return undefined;
}

/** `n` numbers, also from one level of pairs (`[[x1, y1], [x2, y2]]`). */
function coords(v: unknown, n: number): number[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const flat = v.length * 2 === n && v.every((p) => Array.isArray(p) && p.length === 2) ? (v as unknown[][]).flat() : v;
  if (flat.length !== n) return undefined;
  const out = flat.map(num);
  return out.every((x) => x !== undefined) ? (out as number[]) : undefined;
}

/** The image an item names, 0-based; undefined when it names none; NaN when it names one badly. */
function namedImage(o: Record<string, unknown>): number | undefined {
  if (Object.hasOwn(o, 'image_index')) {
    const v = num(o.image_index);
    return v !== undefined && Number.isInteger(v) && v >= 0 ? v : NaN;
  }
  for (const key of ONE_BASED_KEYS) {
    if (!Object.hasOwn(o, key)) continue;
    const v = o[key];
    const n = typeof v === 'string' ? num(/(\d+)/.exec(v)?.[1]) : num(v);
    return n !== undefined && Number.isInteger(n) && n >= 1 ? n - 1 : NaN;
  }
  return undefined;
}

function labelOf(o: Record<string, unknown>): string | undefined {
  for (const key of LABEL_KEYS) {
    const v = o[key];
    if (typeof v === 'string') return v;
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  }
  return undefined;
}

function item(scan: JsonScan, o: Record<string, unknown>, image: number | undefined, warnings: string[]): RawGrounding | undefined {
  const at = scan.offsetOf(o);
  if (scan.isIncomplete(o)) {
    warnings.push(`offset ${at}: a box or point cut off before its end (truncated reply?) was left out`);
    return undefined;
  }
  const hasBox = Object.hasOwn(o, 'bbox_2d'), hasPoint = Object.hasOwn(o, 'point_2d');
  const box = hasBox ? coords(o.bbox_2d, 4) : undefined;
  const point = hasPoint ? coords(o.point_2d, 2) : undefined;
  if (hasBox && box === undefined) warnings.push(`offset ${at}: bbox_2d is not four numbers; left out`);
  if (hasPoint && point === undefined) warnings.push(`offset ${at}: point_2d is not two numbers; left out`);
  if (box === undefined && point === undefined) return undefined;
  const named = namedImage(o);
  if (Number.isNaN(named)) {
    warnings.push(`offset ${at}: the image it names is not an image number; left out`);
    return undefined;
  }
  const label = labelOf(o);
  const which = named ?? image;
  return {
    offset: at,
    ...(label !== undefined ? { label } : {}),
    ...(box ? { box } : {}),
    ...(point ? { point } : {}),
    ...(which !== undefined ? { image: which } : {}),
  };
}

interface Walk {
  scan: JsonScan;
  images: number;
  out: RawGrounding[];
  warnings: string[];
}

function walk(w: Walk, v: unknown, image: number | undefined, depth: number): void {
  if (v === null || typeof v !== 'object' || depth > MAX_DEPTH) return;
  if (Array.isArray(v)) {
    // A list of lists, one per image in image order, when the request has that many images.
    const perImage = image === undefined && v.length > 1 && v.length <= w.images &&
      v.every((e) => Array.isArray(e) && e.some((x) => x !== null && typeof x === 'object'));
    v.forEach((e, i) => walk(w, e, perImage ? i : image, depth + 1));
    return;
  }
  const o = v as Record<string, unknown>;
  if (Object.hasOwn(o, 'bbox_2d') || Object.hasOwn(o, 'point_2d')) {
    const it = item(w.scan, o, image, w.warnings);
    if (it) w.out.push(it);
    return;
  }
  for (const [key, child] of Object.entries(o)) {
    const m = IMAGE_KEY.exec(key);
    walk(w, child, m && Number(m[1]) >= 1 ? Number(m[1]) - 1 : image, depth + 1);
  }
}

/**
 * Every JSON box and point of `text`, in order, with their coordinates as written. `images`: how
 * many images the request has (a list of lists is read as one list per image only up to that).
 */
export function jsonGrounding(text: string, images: number, warnings: string[]): RawGrounding[] {
  const w: Walk = { scan: findJsonValues(text), images, out: [], warnings };
  for (const found of w.scan.found) walk(w, found.value, undefined, 0);
  return w.out;
}
