/**
 * The Qwen3 text decoder of Qwen3-VL and Qwen3-VL-MoE: no attention biases by default, per-head
 * q/k RMSNorm, interleaved M-RoPE, settings always in `text_config`.
 * @module
 */
import type { MoeConfig, TextConfig } from '../model/config.js';
import { checkMoe, checkText, headDim, kvHeads, parseRope, textSection, tieWordEmbeddings } from './common.js';
import type { ConfigLayout } from './family.js';
import type { ConfigReader } from './fields.js';

/** Defaults that differ between the dense and the MoE text config classes. */
export interface Qwen3TextDefaults {
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  /** A number, or null for "hidden_size / num_attention_heads". */
  headDim: number | null;
}

function parseMoe(r: ConfigReader, layers: number): MoeConfig {
  const numExperts = r.nonNegInt('num_experts', 60);
  const decoderSparseStep = r.posInt('decoder_sparse_step', 1);
  const mlpOnlyLayers = r.intList('mlp_only_layers', []);
  const moe: MoeConfig = {
    numExperts,
    topK: r.posInt('num_experts_per_tok', 4),
    normTopkProb: r.bool('norm_topk_prob', true),
    moeIntermediateSize: r.posInt('moe_intermediate_size', 1408),
    decoderSparseStep,
    mlpOnlyLayers,
    // transformers' rule for which decoder layers get the sparse block.
    sparseLayers: Array.from(
      { length: layers },
      (_, i) => !mlpOnlyLayers.includes(i) && numExperts > 0 && (i + 1) % decoderSparseStep === 0,
    ),
  };
  checkMoe(r, moe, layers);
  return moe;
}

/** Reads a Qwen3-VL(-MoE) text decoder from `text_config`. */
export function parseQwen3Text(root: ConfigReader, defaults: Qwen3TextDefaults, moe: boolean): { text: TextConfig; layout: ConfigLayout } {
  const { reader: r, layout } = textSection(root, true);
  const hiddenSize = r.posInt('hidden_size', defaults.hiddenSize);
  const heads = r.posInt('num_attention_heads', defaults.heads);
  const layers = r.posInt('num_hidden_layers', defaults.layers);
  const explicitHeadDim = r.has('head_dim') ? r.posInt('head_dim') : defaults.headDim;
  const rope = parseRope(r, 5000000.0, [24, 20, 20]);
  const attentionBias = r.bool('attention_bias', false);
  const text: TextConfig = {
    hiddenSize,
    layers,
    heads,
    kvHeads: kvHeads(r, heads, defaults.kvHeads),
    headDim: headDim(r, hiddenSize, heads, explicitHeadDim),
    intermediateSize: r.posInt('intermediate_size', defaults.intermediateSize),
    vocabSize: r.posInt('vocab_size', 151936),
    rmsEps: r.posNum('rms_norm_eps', 1e-6),
    ropeTheta: rope.ropeTheta,
    ropeType: rope.ropeType,
    mropeSection: rope.mropeSection,
    // transformers' Qwen3-VL rotary embedding always interleaves, whatever mrope_interleaved says.
    mropeInterleaved: true,
    tieWordEmbeddings: tieWordEmbeddings(r, root, false),
    qkvBias: attentionBias,
    oBias: attentionBias,
    qkNorm: true,
    hiddenAct: r.str('hidden_act', 'silu'),
    maxPositionEmbeddings: r.posInt('max_position_embeddings', 128000),
    slidingWindow: null,
    layerTypes: Array.from({ length: layers }, () => 'full_attention' as const),
  };
  if (moe) text.moe = parseMoe(r, layers);
  checkText(r, text);
  return { text, layout };
}
