/**
 * From the coordinates a reply writes to pixels of the original image (or of a video's original
 * frames: the same mapping with the frame sizes, the processor having resized every frame alike).
 *
 * - `'relative-1000'` (Qwen2-VL, Qwen3-VL): a 0–1000 grid over the whole image, whatever size the
 *   processor gave it: x · width / 1000. 1000, not 999: Qwen3-VL's 2d_grounding cookbook divides by
 *   1000 ("relative coordinates ranging from 0 to 1000"), as does the Qwen2-VL report's [0, 1000).
 * - `'resized-pixels'` (Qwen2.5-VL): pixels of the image the processor resized (smart_resize under
 *   the request's min/max pixels, so the same object gets other numbers under another budget):
 *   x · originalWidth / resizedWidth, per axis and per image, as the Qwen2.5-VL cookbook does with
 *   the image's grid.
 *
 * Results are clamped to the image ([0, width] × [0, height]); corners are put in order; a box
 * left with no area is dropped.
 * @internal
 * @module
 */
import type { GroundingCoordinates } from '../families/family.js';
import type { GroundingImage, GroundingItem, GroundingVideo, RawGrounding } from './types.js';

/** Past the image by more than this many (original) pixels is worth a warning when clamped. */
const SLACK = 0.5;

/** The width and height the reply's coordinates span. */
function span(coordinates: GroundingCoordinates, img: GroundingImage | GroundingVideo): [number, number] {
  return coordinates === 'relative-1000' ? [1000, 1000] : [img.resizedWidth!, img.resizedHeight!];
}

/**
 * One raw box/point on image (or video) `index` in original pixels, or undefined (with a warning)
 * when nothing of it is left on the image.
 */
export function toOriginalPixels(
  raw: RawGrounding,
  index: number,
  img: GroundingImage | GroundingVideo,
  coordinates: GroundingCoordinates,
  warnings: string[],
  media: 'image' | 'video' = 'image',
): GroundingItem | undefined {
  const [dx, dy] = span(coordinates, img);
  const W = img.originalWidth, H = img.originalHeight;
  // Multiplied first: 100 on the grid of a 37-pixel side is 3.7, not 3.6999….
  const sx = (v: number) => (v * W) / dx, sy = (v: number) => (v * H) / dy;
  let clamped = false;
  const clamp = (v: number, max: number): number => {
    const c = Math.min(max, Math.max(0, v));
    if (Math.abs(c - v) > SLACK) clamped = true;
    return c;
  };
  let box: [number, number, number, number] | undefined;
  if (raw.box) {
    const [a, b, c, d] = raw.box;
    const x1 = clamp(sx(Math.min(a, c)), W), x2 = clamp(sx(Math.max(a, c)), W);
    const y1 = clamp(sy(Math.min(b, d)), H), y2 = clamp(sy(Math.max(b, d)), H);
    if (x2 > x1 && y2 > y1) box = [x1, y1, x2, y2];
    else warnings.push(`offset ${raw.offset}: box [${raw.box.join(', ')}] has no area on ${media} ${index}; left out`);
  }
  const point: [number, number] | undefined = raw.point ? [clamp(sx(raw.point[0]), W), clamp(sy(raw.point[1]), H)] : undefined;
  if (clamped) warnings.push(`offset ${raw.offset}: coordinates past the edge of ${media} ${index} were clamped to it`);
  if (!box && !point) return undefined;
  return {
    ...(raw.label !== undefined ? { label: raw.label } : {}),
    ...(box ? { box } : {}),
    ...(point ? { point } : {}),
    ...(media === 'image' ? { image: index } : { video: index }),
    ...(raw.time !== undefined ? { time: raw.time } : {}),
    ...(raw.frame !== undefined ? { frame: raw.frame } : {}),
  };
}
