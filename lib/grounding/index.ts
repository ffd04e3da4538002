/**
 * Grounding: the boxes and points of a reply, in pixels of the original images, and drawing them.
 * @module
 */
export { parseGrounding, type ParseGroundingOptions } from './parse.js';
export { drawGrounding, GROUNDING_COLORS, type DrawGroundingOptions } from './draw.js';
export type { GroundingImage, GroundingItem, GroundingResult, GroundingVideo } from './types.js';
