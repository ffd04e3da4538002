/**
 * Boxes and points drawn on the original image: an SVG overlay of the image's size composited by
 * sharp, written as PNG.
 * @module
 */
import sharp from 'sharp';
import { decodeImage, type DecodeOptions, type ImageInput, type RgbImage } from '../processor/image.js';
import { expected, guardAsync } from '../validate.js';
import type { GroundingItem } from './types.js';

/** Outline colours, item after item (opaque, so a drawn pixel has exactly its colour). */
export const GROUNDING_COLORS: readonly string[] = ['#ff0000', '#00c800', '#0064ff', '#ff9600', '#c800c8', '#00c8c8', '#ffdc00', '#8c3c00'];

/** Options of {@link drawGrounding}. */
export interface DrawGroundingOptions extends DecodeOptions {
  /** Which image of the request this is: only items with this `image` are drawn. Default 0. */
  image?: number;
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
  if (!Array.isArray(items)) throw expected('drawGrounding: items', 'an array of grounding items', items);
  const { image: index = 0, ...decode } = options;
  return guardAsync('drawGrounding', async () => overlay(await decodeImage(image, decode), items, index));
}

async function overlay(rgb: RgbImage, items: readonly GroundingItem[], index: number): Promise<Buffer> {
  const W = rgb.width, H = rgb.height;
  const stroke = Math.max(2, Math.round(Math.min(W, H) / 200));
  const font = Math.max(10, Math.round(Math.min(W, H) / 30));
  const shapes: string[] = [];
  items.forEach((it, i) => {
    if (it === null || typeof it !== 'object' || it.image !== index) return;
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
