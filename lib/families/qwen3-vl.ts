/**
 * Qwen3-VL (`model_type` "qwen3_vl"): dense Qwen3 decoder with DeepStack visual injection;
 * videos carry text timestamps, so each frame group is positioned like an image.
 * @module
 */
import type { FamilyDescriptor } from './family.js';
import { parseQwen3Text } from './qwen3-text.js';
import { parseQwen3Vision } from './qwen3-vision.js';

/** Qwen3-VL. */
export const qwen3Vl: FamilyDescriptor<'qwen3-vl'> = {
  id: 'qwen3-vl',
  modelType: 'qwen3_vl',
  displayName: 'Qwen3-VL',
  architectures: ['Qwen3VLForConditionalGeneration'],
  ropeIndex: 'qwen3_vl',
  lastHiddenIsNormed: false,
  // Qwen3-VL's 2d_grounding cookbook: 'relative coordinates ranging from 0 to 1000', divided by 1000.
  groundingCoordinates: 'relative-1000',
  // Qwen3VLTextConfig defaults (head_dim is a fixed 128 there, not hidden / heads).
  parseText: (root) =>
    parseQwen3Text(root, { hiddenSize: 4096, intermediateSize: 22016, layers: 32, heads: 32, kvHeads: 32, headDim: 128 }, false),
  parseVision: parseQwen3Vision,
};
