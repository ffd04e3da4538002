/**
 * transformers' `smart_resize` (Qwen2-VL image processor), reproduced operation for operation:
 * the same float64 divisions, `math.sqrt`, `floor`/`ceil` and Python's `round` (ties to even).
 * @module
 */
import { inputError } from '../errors.js';
import { publicCall } from '../validate.js';

/** Bounds for {@link smartResize}. */
export interface SmartResizeOptions {
  /** Both output sides are multiples of this (patch size × merge size: 28 or 32). */
  factor: number;
  /** Lower bound of height × width. */
  minPixels: number;
  /** Upper bound of height × width. */
  maxPixels: number;
}

/** Python's built-in `round()` on a float: nearest integer, ties to even. */
export function pyRound(x: number): number {
  const r = Math.round(x); // ties toward +Infinity
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The size an image of `height` × `width` is resized to: both sides multiples of `factor`,
 * the pixel count inside [minPixels, maxPixels], the aspect ratio kept as closely as possible.
 * Returns `[height, width]`. Throws E_INPUT when the aspect ratio exceeds 200 (as transformers
 * does) or when the bounds leave no valid size.
 */
export function smartResize(height: number, width: number, options: SmartResizeOptions): [number, number] {
  return publicCall('smartResize', arguments, () => smartResizeImpl(height, width, options));
}

/** {@link smartResize} without the public guard, for internal callers: what it throws passes through unchanged. */
export function smartResizeImpl(height: number, width: number, options: SmartResizeOptions): [number, number] {
  const { factor, minPixels, maxPixels } = options;
  for (const [name, v] of [['height', height], ['width', width], ['factor', factor]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw inputError(`smartResize: ${name} must be a positive integer, got ${v}`);
  }
  if (!(minPixels >= 0) || !(maxPixels >= 1) || !Number.isFinite(minPixels) || !Number.isFinite(maxPixels)) {
    throw inputError(`smartResize: invalid pixel bounds [${minPixels}, ${maxPixels}]`);
  }
  const ratio = Math.max(height, width) / Math.min(height, width);
  if (ratio > 200) {
    throw inputError(`image ${width}x${height}: absolute aspect ratio must be smaller than 200, got ${ratio}`);
  }
  let hBar = pyRound(height / factor) * factor;
  let wBar = pyRound(width / factor) * factor;
  if (hBar * wBar > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    hBar = Math.max(factor, Math.floor(height / beta / factor) * factor);
    wBar = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (hBar * wBar < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    hBar = Math.ceil((height * beta) / factor) * factor;
    wBar = Math.ceil((width * beta) / factor) * factor;
  }
  if (hBar < factor || wBar < factor) {
    throw inputError(
      `image ${width}x${height}: no resized size fits factor ${factor} and pixel bounds [${minPixels}, ${maxPixels}]`,
    );
  }
  return [hBar, wBar];
}
