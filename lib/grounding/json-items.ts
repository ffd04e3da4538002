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
 * Otherwise the caller decides. Likewise for videos: `"video_index": i`, `"video"` / `"video_id"`
 * counted from 1, or a key `"video N"` around the items. An item on a video may carry its time
 * (`"time": 1.0`, as Qwen3-VL's video grounding cookbook asks) or a frame number, on itself or on
 * an object around it (`{"time": 2, "objects": [...]}`).
 * @internal
 * @module
 */
import { findJsonValues, type JsonScan } from './json-recovery.js';
import type { RawGrounding } from './types.js';
import { FRAME_KEYS, TIME_KEYS, firstKey, frameOf, secondsOf } from './video-time.js';

const LABEL_KEYS = ['label', 'text_content', 'text', 'name'];
const ONE_BASED_KEYS = ['image', 'image_id', 'picture', 'img'];
const IMAGE_KEY = /^\s*(?:image|picture|img|pic)[\s_#-]*(\d+)\s*$/i;
const VIDEO_ONE_BASED_KEYS = ['video', 'video_id', 'clip'];
const VIDEO_KEY = /^\s*(?:video|clip)[\s_#-]*(\d+)\s*$/i;
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

/** The image (or video) an item names, 0-based; undefined when it names none; NaN when it names one badly. */
function namedMedia(o: Record<string, unknown>, indexKey: string, oneBasedKeys: readonly string[]): number | undefined {
  if (Object.hasOwn(o, indexKey)) {
    const v = num(o[indexKey]);
    return v !== undefined && Number.isInteger(v) && v >= 0 ? v : NaN;
  }
  for (const key of oneBasedKeys) {
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

/** What an item inherits from the objects and keys around it. */
interface Context {
  image?: number;
  video?: number;
  time?: number;
  frame?: number;
}

/**
 * `ctx` with the time and frame `o` gives; a bad one is not taken (with a warning when `o` is an
 * item: an object around items may use "time" for something else).
 */
function timed(scan: JsonScan, o: Record<string, unknown>, ctx: Context, warnings: string[] | undefined): Context {
  const out = { ...ctx };
  const tk = firstKey(o, TIME_KEYS);
  if (tk !== undefined) {
    const t = secondsOf(o[tk]);
    if (t === undefined) warnings?.push(`offset ${scan.offsetOf(o)}: "${tk}" ${JSON.stringify(o[tk])} is not a time in seconds; not taken`);
    else out.time = t;
  }
  const fk = firstKey(o, FRAME_KEYS);
  if (fk !== undefined) {
    const f = frameOf(o[fk]);
    if (f === undefined) warnings?.push(`offset ${scan.offsetOf(o)}: "${fk}" ${JSON.stringify(o[fk])} is not a frame number; not taken`);
    else out.frame = f;
  }
  return out;
}

function item(scan: JsonScan, o: Record<string, unknown>, ctx: Context, warnings: string[]): RawGrounding | undefined {
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
  const named = namedMedia(o, 'image_index', ONE_BASED_KEYS);
  const namedVideo = namedMedia(o, 'video_index', VIDEO_ONE_BASED_KEYS);
  if (Number.isNaN(named) || Number.isNaN(namedVideo)) {
    const kind = Number.isNaN(named) ? 'an image' : 'a video';
    warnings.push(`offset ${at}: the ${kind.slice(kind.indexOf(' ') + 1)} it names is not ${kind} number; left out`);
    return undefined;
  }
  if (named !== undefined && namedVideo !== undefined) {
    warnings.push(`offset ${at}: it names both an image and a video; left out`);
    return undefined;
  }
  const label = labelOf(o);
  const own = timed(scan, o, ctx, warnings);
  // What the item names wins over what surrounds it.
  const video = namedVideo ?? (named === undefined ? ctx.video : undefined);
  const image = named ?? (namedVideo === undefined && video === undefined ? ctx.image : undefined);
  return {
    offset: at,
    ...(label !== undefined ? { label } : {}),
    ...(box ? { box } : {}),
    ...(point ? { point } : {}),
    ...(image !== undefined ? { image } : {}),
    ...(video !== undefined ? { video } : {}),
    ...(own.time !== undefined ? { time: own.time } : {}),
    ...(own.frame !== undefined ? { frame: own.frame } : {}),
  };
}

interface Walk {
  scan: JsonScan;
  images: number;
  out: RawGrounding[];
  warnings: string[];
}

function walk(w: Walk, v: unknown, ctx: Context, depth: number): void {
  if (v === null || typeof v !== 'object' || depth > MAX_DEPTH) return;
  if (Array.isArray(v)) {
    // A list of lists, one per image in image order, when the request has that many images.
    const perImage = ctx.image === undefined && ctx.video === undefined && v.length > 1 && v.length <= w.images &&
      v.every((e) => Array.isArray(e) && e.some((x) => x !== null && typeof x === 'object'));
    v.forEach((e, i) => walk(w, e, perImage ? { ...ctx, image: i } : ctx, depth + 1));
    return;
  }
  const o = v as Record<string, unknown>;
  if (Object.hasOwn(o, 'bbox_2d') || Object.hasOwn(o, 'point_2d')) {
    const it = item(w.scan, o, ctx, w.warnings);
    if (it) w.out.push(it);
    return;
  }
  // An object around items may give their time or frame (`{"time": 2, "objects": [...]}`).
  const inner = timed(w.scan, o, ctx, undefined);
  for (const [key, child] of Object.entries(o)) {
    const m = IMAGE_KEY.exec(key);
    const mv = VIDEO_KEY.exec(key);
    const next = m && Number(m[1]) >= 1 ? { ...inner, image: Number(m[1]) - 1, video: undefined }
      : mv && Number(mv[1]) >= 1 ? { ...inner, video: Number(mv[1]) - 1, image: undefined }
      : inner;
    walk(w, child, next, depth + 1);
  }
}

/**
 * Every JSON box and point of `text`, in order, with their coordinates as written. `images`: how
 * many images the request has (a list of lists is read as one list per image only up to that).
 */
export function jsonGrounding(text: string, images: number, warnings: string[]): RawGrounding[] {
  const w: Walk = { scan: findJsonValues(text), images, out: [], warnings };
  for (const found of w.scan.found) walk(w, found.value, {}, 0);
  return w.out;
}
