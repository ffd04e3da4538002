/**
 * Qwen2.5-VL (`model_type` "qwen2_5_vl"): Qwen2 decoder; a ViT with RMSNorm, a gated SiLU MLP,
 * window attention except in `fullatt_block_indexes`, and absolute-time video positions
 * (`tokens_per_second`).
 * @module
 */
import type { VisionConfig } from '../model/config.js';
import { checkVision } from './common.js';
import type { FamilyDescriptor } from './family.js';
import type { ConfigReader } from './fields.js';
import { parseQwen2Text } from './qwen2-text.js';

function parseVision(v: ConfigReader): VisionConfig {
  const hiddenSize = v.posInt('hidden_size', 3584);
  const heads = v.posInt('num_heads', 16);
  const patchSize = v.posInt('patch_size', 14);
  const spatialMergeSize = v.posInt('spatial_merge_size', 2);
  const vision: VisionConfig = {
    depth: v.posInt('depth', 32),
    hiddenSize,
    heads,
    headDim: Math.trunc(hiddenSize / heads),
    intermediateSize: v.posInt('intermediate_size', 3420),
    mlpRatio: null,
    hiddenAct: v.str('hidden_act', 'silu'),
    patchSize,
    temporalPatchSize: v.posInt('temporal_patch_size', 2),
    spatialMergeSize,
    inChannels: v.has('in_channels') ? v.posInt('in_channels') : v.posInt('in_chans', 3),
    outHiddenSize: v.posInt('out_hidden_size', 3584),
    windowSize: v.posInt('window_size', 112),
    fullattBlockIndexes: v.intList('fullatt_block_indexes', [7, 15, 23, 31]),
    tokensPerSecond: v.posNum('tokens_per_second', 4),
    numPositionEmbeddings: null,
    deepstackVisualIndexes: [],
  };
  checkVision(v, vision);
  return vision;
}

/** Qwen2.5-VL. */
export const qwen25Vl: FamilyDescriptor<'qwen2.5-vl'> = {
  id: 'qwen2.5-vl',
  modelType: 'qwen2_5_vl',
  displayName: 'Qwen2.5-VL',
  architectures: ['Qwen2_5_VLForConditionalGeneration'],
  ropeIndex: 'qwen2_5_vl',
  lastHiddenIsNormed: true,
  // Qwen2.5-VL's spatial_understanding cookbook scales by the processor's input size (grid × 14).
  groundingCoordinates: 'resized-pixels',
  parseText: parseQwen2Text,
  parseVision,
};
