/**
 * The Qwen3-VL vision tower: learned position embeddings interpolated from a square grid of
 * `num_position_embeddings`, GELU-tanh MLP, and DeepStack taps at `deepstack_visual_indexes`.
 * @module
 */
import type { VisionConfig } from '../model/config.js';
import { checkVision } from './common.js';
import type { ConfigReader } from './fields.js';

/** Reads `vision_config` of Qwen3-VL / Qwen3-VL-MoE. */
export function parseQwen3Vision(v: ConfigReader): VisionConfig {
  const hiddenSize = v.posInt('hidden_size', 1152);
  const heads = v.posInt('num_heads', 16);
  const vision: VisionConfig = {
    depth: v.posInt('depth', 27),
    hiddenSize,
    heads,
    headDim: Math.trunc(hiddenSize / heads),
    intermediateSize: v.posInt('intermediate_size', 4304),
    mlpRatio: null,
    hiddenAct: v.str('hidden_act', 'gelu_pytorch_tanh'),
    patchSize: v.posInt('patch_size', 16),
    temporalPatchSize: v.posInt('temporal_patch_size', 2),
    spatialMergeSize: v.posInt('spatial_merge_size', 2),
    inChannels: v.posInt('in_channels', 3),
    outHiddenSize: v.posInt('out_hidden_size', 3584),
    windowSize: null,
    fullattBlockIndexes: null,
    tokensPerSecond: null,
    numPositionEmbeddings: v.posInt('num_position_embeddings', 2304),
    deepstackVisualIndexes: v.intList('deepstack_visual_indexes', [8, 16, 24]),
  };
  checkVision(v, vision);
  return vision;
}
