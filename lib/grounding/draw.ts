/**
 * Boxes and points drawn on the original image: an SVG overlay of the image's size composited by
 * sharp, written as PNG.
 * @module
 */
import sharp from 'sharp';
import { decodeImageImpl, type DecodeOptions, type ImageInput, type RgbImage } from '../processor/image.js';
import { checkArray, expected, publicCallAsync, readOptions } from '../validate.js';
import type { GroundingItem } from './types.js';

/** Outline colours, item after item (opaque, so a drawn pixel has exactly its colour). */
export const GROUNDING_COLORS: readonly string[] = ['#ff0000', '#00c800', '#0064ff', '#ff9600', '#c800c8', '#00c8c8', '#ffdc00', '#8c3c00'];

/** Options of {@link drawGrounding}. */
export interface DrawGroundingOptions extends DecodeOptions {
  /** Which image of the request this is: only items with this `image` are drawn. Default 0. */
  image?: number;
  /**
   * Instead of `image`: the picture is a frame of this video of the request, and the items on that
   * video are drawn (pick the items of one `time` first to draw one moment).
   */
  video?: number;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Draws the boxes (outlines) and points (dots) of `items` on `image` (decoded as the processor
 * decodes it, EXIF orientation applied, so the pixels match the items'), each with its label,
 * and returns the PNG.
 */
export async function drawGrounding(image: ImageInput, items: readonly GroundingItem[], options: DrawGroundingOptions = {}): Promise<Buffer> {
  return publicCallAsync('drawGrounding', arguments, async () => {
    const list = checkArray('drawGrounding: items', items, 'an array of grounding items').map(readItem);
    const { image: imageIndex, video: videoIndex, ...decode } = readOptions('drawGrounding: options', options, ['image', 'video', 'maxInputPixels', 'autoOrient', 'alpha', 'media']) as DrawGroundingOptions;
    if (imageIndex !== undefined && videoIndex !== undefined) throw expected('drawGrounding: options', 'either image or video, not both', options);
    const media = videoIndex !== undefined ? 'video' : 'image';
    const index = videoIndex ?? imageIndex ?? 0;
    if (!Number.isInteger(index) || index < 0) throw expected(`drawGrounding: options.${media}`, `a${media === 'image' ? 'n image' : ' video'} index (an integer >= 0)`, index);
    return overlay(await decodeImageImpl(image, decode), list, media, index);
  });
}

/**
 * An item as drawn: its coordinates become SVG attributes, so each must be a finite number (a
 * string there could carry markup into the overlay) and the label is escaped.
 */
function readItem(v: unknown, i: number): GroundingItem {
  const where = `drawGrounding: items[${i}]`;
  if (v === null || typeof v !== 'object') throw expected(where, 'a grounding item ({ box | point, image | video, label? })', v);
  const it = readOptions(where, v, ['box', 'point', 'image', 'video', 'time', 'frame', 'label']);
  const coords = (key: 'box' | 'point', n: number): number[] | undefined => {
    const c = it[key];
    if (c === undefined) return undefined;
    const xs = checkArray(`${where}.${key}`, c, `${n} finite numbers`, n);
    if (xs.length !== n || !xs.every((x) => typeof x === 'number' && Number.isFinite(x))) throw expected(`${where}.${key}`, `${n} finite numbers`, c);
    return xs as number[];
  };
  const box = coords('box', 4), point = coords('point', 2);
  const onVideo = it.video !== undefined;
  if (onVideo && it.image !== undefined) throw expected(where, 'an item on an image or on a video, not both', v);
  const index = onVideo ? it.video : it.image;
  if (!Number.isInteger(index) || (index as number) < 0) {
    throw expected(`${where}.${onVideo ? 'video' : 'image'}`, `a${onVideo ? ' video' : 'n image'} index (an integer >= 0)`, index);
  }
  if (it.label !== undefined && typeof it.label !== 'string') throw expected(`${where}.label`, 'a string', it.label);
  return {
    ...(onVideo ? { video: index as number } : { image: index as number }),
    ...(box ? { box: box as [number, number, number, number] } : {}),
    ...(point ? { point: point as [number, number] } : {}),
    ...(it.label !== undefined ? { label: it.label as string } : {}),
  };
}

async function overlay(rgb: RgbImage, items: readonly GroundingItem[], media: 'image' | 'video', index: number): Promise<Buffer> {
  const W = rgb.width, H = rgb.height;
  const stroke = Math.max(2, Math.round(Math.min(W, H) / 200));
  const font = Math.max(10, Math.round(Math.min(W, H) / 30));
  const shapes: string[] = [];
  items.forEach((it, i) => {
    if ((media === 'image' ? it.image : it.video) !== index) return;
    const color = GROUNDING_COLORS[i % GROUNDING_COLORS.length];
    let at: [number, number] | undefined;
    if (it.box) {
      const [x1, y1, x2, y2] = it.box;
      shapes.push(`<rect x="${x1}" y="${y1}" width="${x2 - x1}" height="${y2 - y1}" fill="none" stroke="${color}" stroke-width="${stroke}"/>`);
      at = [x1 + stroke, y1 > font + stroke ? y1 - stroke : y1 + font + stroke];
    }
    if (it.point) {
      const [x, y] = it.point;
      shapes.push(`<circle cx="${x}" cy="${y}" r="${stroke * 2}" fill="${color}" stroke="#ffffff" stroke-width="${Math.max(1, stroke / 2)}"/>`);
      at ??= [x + stroke * 3, y - stroke * 3];
    }
    if (it.label && at) {
      shapes.push(
        `<text x="${at[0]}" y="${at[1]}" font-family="sans-serif" font-size="${font}" fill="${color}" stroke="#000000" ` +
          `stroke-width="${Math.max(1, font / 12)}" paint-order="stroke">${escapeXml(it.label)}</text>`,
      );
    }
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" shape-rendering="crispEdges">${shapes.join('')}</svg>`;
  return sharp(rgb.data, { raw: { width: W, height: H, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .png()
    .toBuffer();
}
