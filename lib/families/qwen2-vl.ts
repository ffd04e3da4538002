/**
 * Qwen2-VL (`model_type` "qwen2_vl"): Qwen2 decoder, a ViT of `embed_dim` width with LayerNorm and
 * a quick-GELU MLP of `mlp_ratio`, whose merger outputs `vision_config.hidden_size`.
 * @module
 */
import type { VisionConfig } from '../model/config.js';
import { checkVision } from './common.js';
import type { FamilyDescriptor } from './family.js';
import type { ConfigReader } from './fields.js';
import { parseQwen2Text } from './qwen2-text.js';

function parseVision(v: ConfigReader): VisionConfig {
  const hiddenSize = v.posInt('embed_dim', 1280);
  const heads = v.posInt('num_heads', 16);
  const mlpRatio = v.posNum('mlp_ratio', 4);
  const vision: VisionConfig = {
    depth: v.posInt('depth', 32),
    hiddenSize,
    heads,
    headDim: Math.trunc(hiddenSize / heads),
    // transformers: int(embed_dim * mlp_ratio)
    intermediateSize: Math.trunc(hiddenSize * mlpRatio),
    mlpRatio,
    hiddenAct: v.str('hidden_act', 'quick_gelu'),
    patchSize: v.posInt('patch_size', 14),
    temporalPatchSize: v.posInt('temporal_patch_size', 2),
    spatialMergeSize: v.posInt('spatial_merge_size', 2),
    // The official configs spell it in_chans; transformers' parameter is in_channels (both 3).
    inChannels: v.has('in_channels') ? v.posInt('in_channels') : v.posInt('in_chans', 3),
    outHiddenSize: v.posInt('hidden_size', 3584),
    windowSize: null,
    fullattBlockIndexes: null,
    tokensPerSecond: null,
    numPositionEmbeddings: null,
    deepstackVisualIndexes: [],
  };
  checkVision(v, vision);
  return vision;
}

/** Qwen2-VL. */
export const qwen2Vl: FamilyDescriptor<'qwen2-vl'> = {
  id: 'qwen2-vl',
  modelType: 'qwen2_vl',
  displayName: 'Qwen2-VL',
  architectures: ['Qwen2VLForConditionalGeneration'],
  ropeIndex: 'qwen2_vl',
  lastHiddenIsNormed: true,
  // The Qwen2-VL report (arXiv 2409.12191): box corners normalised to [0, 1000) between <|box_start|> and <|box_end|>.
  groundingCoordinates: 'relative-1000',
  parseText: parseQwen2Text,
  parseVision,
};
