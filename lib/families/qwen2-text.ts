/**
 * The Qwen2 text decoder shared by Qwen2-VL and Qwen2.5-VL (their transformers text config classes
 * have the same fields and defaults): biased q/k/v projections, no q/k norm, contiguous M-RoPE.
 * @module
 */
import type { TextConfig } from '../model/config.js';
import { checkText, headDim, kvHeads, parseRope, qwen2LayerTypes, textSection, tieWordEmbeddings } from './common.js';
import type { ConfigLayout } from './family.js';
import type { ConfigReader } from './fields.js';

/** Reads a Qwen2-VL / Qwen2.5-VL text decoder from the flat or the nested layout. */
export function parseQwen2Text(root: ConfigReader): { text: TextConfig; layout: ConfigLayout } {
  const { reader: r, layout } = textSection(root, false);
  const hiddenSize = r.posInt('hidden_size', 8192);
  const heads = r.posInt('num_attention_heads', 64);
  const layers = r.posInt('num_hidden_layers', 80);
  const derived = headDim(r, hiddenSize, heads, null);
  // The Qwen2 attention always uses hidden_size / heads; a different head_dim would be ignored by
  // transformers and then fail on the weights, so say so here.
  if (r.has('head_dim') && r.posInt('head_dim') !== derived) {
    throw r.error('head_dim', `${r.posInt('head_dim')} differs from hidden_size / num_attention_heads = ${derived}`);
  }
  const rope = parseRope(r, 1000000.0, null);
  const { slidingWindow, layerTypes } = qwen2LayerTypes(r, layers);
  const text: TextConfig = {
    hiddenSize,
    layers,
    heads,
    kvHeads: kvHeads(r, heads, 8),
    headDim: derived,
    intermediateSize: r.posInt('intermediate_size', 29568),
    vocabSize: r.posInt('vocab_size', 152064),
    rmsEps: r.posNum('rms_norm_eps', 1e-5),
    ropeTheta: rope.ropeTheta,
    ropeType: rope.ropeType,
    mropeSection: rope.mropeSection,
    mropeInterleaved: false,
    tieWordEmbeddings: tieWordEmbeddings(r, root, false),
    qkvBias: true,
    oBias: false,
    qkNorm: false,
    hiddenAct: r.str('hidden_act', 'silu'),
    maxPositionEmbeddings: r.posInt('max_position_embeddings', 32768),
    slidingWindow,
    layerTypes,
  };
  checkText(r, text);
  return { text, layout };
}
