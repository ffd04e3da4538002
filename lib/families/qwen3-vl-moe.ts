/**
 * Qwen3-VL-MoE (`model_type` "qwen3_vl_moe"): Qwen3-VL with sparse mixture-of-experts MLPs.
 * @module
 */
import type { FamilyDescriptor } from './family.js';
import { parseQwen3Text } from './qwen3-text.js';
import { parseQwen3Vision } from './qwen3-vision.js';

/** Qwen3-VL-MoE. */
export const qwen3VlMoe: FamilyDescriptor<'qwen3-vl-moe'> = {
  id: 'qwen3-vl-moe',
  modelType: 'qwen3_vl_moe',
  displayName: 'Qwen3-VL-MoE',
  architectures: ['Qwen3VLMoeForConditionalGeneration'],
  ropeIndex: 'qwen3_vl',
  lastHiddenIsNormed: false,
  // As Qwen3-VL (same cookbooks).
  groundingCoordinates: 'relative-1000',
  // Qwen3VLMoeTextConfig defaults (head_dim unset means hidden / heads).
  parseText: (root) =>
    parseQwen3Text(root, { hiddenSize: 2048, intermediateSize: 5632, layers: 24, heads: 16, kvHeads: 16, headDim: null }, true),
  parseVision: parseQwen3Vision,
};
