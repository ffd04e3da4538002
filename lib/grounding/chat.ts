/**
 * What chat() adds to a result: the grounding of one row's reply over that row's images and videos.
 * @internal
 * @module
 */
import { getFamily, type FamilyId } from '../families/registry.js';
import type { PreparedInputs } from '../model/inputs.js';
import type { QwenTokenizer } from '../text/tokenizer.js';
import { groundingOf } from './parse.js';
import { textWithSpecialTokens } from './reply-text.js';
import type { ImageSize } from '../processor/image.js';
import type { GroundingItem } from './types.js';

/** The images of batch row `row` of a prepared request, in order. */
export function rowImages(p: Pick<PreparedInputs, 'imageSizes' | 'imageRows'>, row: number): ImageSize[] {
  return p.imageSizes.filter((_, i) => p.imageRows[i] === row);
}

/** The videos (their frame sizes) of batch row `row`, in order. */
export function rowVideos(p: Pick<PreparedInputs, 'videoSizes' | 'videoRows'>, row: number): ImageSize[] {
  // A prepared request made by hand (or before videos carried their sizes) may lack them.
  if (!Array.isArray(p.videoSizes) || !Array.isArray(p.videoRows)) return [];
  return p.videoSizes.filter((_, i) => p.videoRows[i] === row);
}

/**
 * `{ grounding }` for a row's reply when it holds boxes or points on the row's images or videos, else `{}`
 * (so a result without grounding has no such key). Never throws on any reply.
 */
export function chatGrounding(
  family: FamilyId,
  tokenizer: QwenTokenizer,
  p: Pick<PreparedInputs, 'imageSizes' | 'imageRows' | 'videoSizes' | 'videoRows'>,
  row: number,
  tokens: readonly number[],
  text: string,
): { grounding?: GroundingItem[] } {
  const images = rowImages(p, row);
  const videos = rowVideos(p, row);
  const coordinates = getFamily(family)?.groundingCoordinates;
  if ((images.length === 0 && videos.length === 0) || coordinates === undefined) return {};
  const { items } = groundingOf(textWithSpecialTokens(tokenizer, tokens, text), images, coordinates, videos);
  return items.length > 0 ? { grounding: items } : {};
}
