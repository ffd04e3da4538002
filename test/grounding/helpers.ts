// Shared pieces of the grounding tests: awkward image sizes, the processor's resize under a
// pixel budget, and what a perfect model would write for a box of the original image.
import { smartResize } from '../../lib/processor/smart-resize.js';
import type { GroundingImage } from '../../lib/grounding/types.js';

/** Qwen2-VL / Qwen2.5-VL factor (patch 14 × merge 2) and the fixture processors' pixel bounds. */
export const FACTOR = 28;
export const MIN_PIXELS = 3136;
export const MAX_PIXELS = 12845056;

/** Awkward originals: odd sizes, a 27:1 strip, and one far above a small max_pixels. */
export const SIZES: [number, number][] = [
  [333, 517],
  [1000, 37],
  [4001, 2999],
  [29, 31],
];

/** The request budgets (maxPixels) the same images are sent under. */
export const BUDGETS = [MAX_PIXELS, 1_003_520, 200_704, 12_544];

/** An image of `w`×`h` as the processor sizes it under `maxPixels` (transformers' smart_resize). */
export function imageUnder(w: number, h: number, maxPixels: number, factor = FACTOR): Required<GroundingImage> {
  const [rh, rw] = smartResize(h, w, { factor, minPixels: MIN_PIXELS, maxPixels });
  return { originalWidth: w, originalHeight: h, resizedWidth: rw, resizedHeight: rh };
}

/** A box of the original image as Qwen2.5-VL writes it: integer pixels of the resized image. */
export function toResized(box: number[], img: Required<GroundingImage>): number[] {
  return box.map((v, i) => Math.round(i % 2 === 0 ? (v * img.resizedWidth) / img.originalWidth : (v * img.resizedHeight) / img.originalHeight));
}

/** A box of the original image on the 0–1000 grid of Qwen2-VL and Qwen3-VL (integers). */
export function toRelative(box: number[], img: GroundingImage): number[] {
  return box.map((v, i) => Math.round((v * 1000) / (i % 2 === 0 ? img.originalWidth : img.originalHeight)));
}

/** A box inside a `w`×`h` image: from 10% to 70% across and 20% to 90% down. */
export function boxIn(w: number, h: number): [number, number, number, number] {
  return [0.1 * w, 0.2 * h, 0.7 * w, 0.9 * h];
}
