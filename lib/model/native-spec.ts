/**
 * Turns a parsed {@link ModelConfig} and a checkpoint's tensor names into what the native model
 * needs: the architecture numbers (TypeScript decides, C++ computes) and the weight-name prefixes
 * of the checkpoint's layout. Key naming is handled here and nowhere else.
 * @internal
 * @module
 */
import { formatError } from '../errors.js';
import type { ModelConfig } from './config.js';
import type { NativeQuantSpec } from './quantization.js';

/** @internal The architecture numbers native/models/spec.h reads. */
export interface NativeModelSpec {
  family: string;
  text: {
    hidden: number;
    layers: number;
    heads: number;
    kvHeads: number;
    headDim: number;
    intermediate: number;
    vocab: number;
    rmsEps: number;
    ropeTheta: number;
    mropeSection: number[];
    mropeInterleaved: boolean;
    qkvBias: boolean;
    oBias: boolean;
    qkNorm: boolean;
    tieEmbeddings: boolean;
    experts: number;
    expertsPerTok: number;
    moeIntermediate: number;
    normTopkProb: boolean;
    sparseLayers: number[];
  };
  vision: {
    depth: number;
    hidden: number;
    heads: number;
    intermediate: number;
    inChannels: number;
    patch: number;
    temporalPatch: number;
    merge: number;
    outHidden: number;
    hiddenAct: string;
    normEps: number;
    windowSize: number;
    fullattBlocks: number[];
    numPositionEmbeddings: number;
    deepstackIndexes: number[];
  };
  /** How the checkpoint's quantized linear layers are stored (method "none" when they are not). */
  quant: NativeQuantSpec;
}

/** @internal Where the checkpoint keeps each part's tensors. */
export interface WeightNames {
  textPrefix: string;
  visionPrefix: string;
  lmHead: string;
}

/** @internal */
export function nativeSpec(config: ModelConfig, quant: NativeQuantSpec): NativeModelSpec {
  const t = config.text;
  const v = config.vision;
  const moe = t.moe;
  return {
    // native/models/registry.cpp picks the family's structural switches by model_type.
    family: config.modelType,
    text: {
      hidden: t.hiddenSize,
      layers: t.layers,
      heads: t.heads,
      kvHeads: t.kvHeads,
      headDim: t.headDim,
      intermediate: t.intermediateSize,
      vocab: t.vocabSize,
      rmsEps: t.rmsEps,
      ropeTheta: t.ropeTheta,
      mropeSection: [...t.mropeSection],
      mropeInterleaved: t.mropeInterleaved,
      qkvBias: t.qkvBias,
      oBias: t.oBias,
      qkNorm: t.qkNorm,
      tieEmbeddings: t.tieWordEmbeddings,
      experts: moe?.numExperts ?? 0,
      expertsPerTok: moe?.topK ?? 0,
      moeIntermediate: moe?.moeIntermediateSize ?? 0,
      // transformers' Qwen3-VL-MoE block renormalises the top-k weights whatever norm_topk_prob says.
      normTopkProb: config.modelType === 'qwen3_vl_moe' ? true : (moe?.normTopkProb ?? true),
      sparseLayers: moe ? moe.sparseLayers.flatMap((s, i) => (s ? [i] : [])) : [],
    },
    vision: {
      depth: v.depth,
      hidden: v.hiddenSize,
      heads: v.heads,
      intermediate: v.intermediateSize,
      inChannels: v.inChannels,
      patch: v.patchSize,
      temporalPatch: v.temporalPatchSize,
      merge: v.spatialMergeSize,
      outHidden: v.outHiddenSize,
      hiddenAct: v.hiddenAct,
      normEps: 1e-6,
      windowSize: v.windowSize ?? 0,
      fullattBlocks: v.fullattBlockIndexes ?? [],
      numPositionEmbeddings: v.numPositionEmbeddings ?? 0,
      deepstackIndexes: v.deepstackVisualIndexes,
    },
    quant,
  };
}

/**
 * The checkpoint's key layout: the official repos' legacy names (`model.layers.*`, `visual.*`) or
 * newer transformers' (`model.language_model.layers.*`, `model.visual.*`).
 * @internal
 */
export function weightNames(tensorNames: Iterable<string>, file: string, tiedEmbeddings = true): WeightNames {
  const names = new Set(tensorNames);
  const textPrefix = ['model.language_model.', 'model.'].find((p) => names.has(`${p}embed_tokens.weight`));
  if (!textPrefix) throw formatError(file, 'no embed_tokens.weight tensor (expected model.embed_tokens.weight or model.language_model.embed_tokens.weight)');
  const visionPrefix = ['model.visual.', 'visual.'].find((p) => names.has(`${p}patch_embed.proj.weight`));
  if (!visionPrefix) throw formatError(file, 'no vision tower tensors (expected visual.patch_embed.proj.weight or model.visual.patch_embed.proj.weight)');
  if (!tiedEmbeddings && !names.has('lm_head.weight')) {
    throw formatError(file, 'config.json has tie_word_embeddings false but the checkpoint has no lm_head.weight tensor');
  }
  // The module name: the native Linear reads `lm_head.weight` (and `.bias` where a layer has one).
  return { textPrefix, visionPrefix, lmHead: 'lm_head' };
}
