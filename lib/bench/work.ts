/**
 * The work one pass of a checkpoint does, counted from its weight shapes (safetensors headers) and
 * its config: bytes of weights a decode step reads in the format they run in, and the FLOPs of
 * prefill and of the vision tower. The floors of `qwenvl bench` divide these by the measured
 * bandwidth and compute peak.
 * @internal
 * @module
 */
import { openSafetensorsImpl } from '../io/safetensors.js';
import type { ModelConfig } from '../model/config.js';
import { native } from '../native/binding.js';

/** The language model's weight format at run time (`loadModel`'s `weights`). */
export type BenchWeights = 'bf16' | 'q8' | 'q4';

/** Matrices of a checkpoint, split by where they run. */
export interface CheckpointWork {
  /** Weight bytes one decode token reads: every decoder-layer matrix and the LM head. */
  decodeBytes: number;
  /** Multiply-adds per token of the decoder layers' matrices (FLOPs = 2 × this × tokens). */
  textMacsPerToken: number;
  /** Multiply-adds of the LM head for one token. */
  headMacs: number;
  /** Multiply-adds per patch of the vision tower's matrices before the merger. */
  visionMacsPerPatch: number;
  /** Multiply-adds per merged token of the merger's matrices. */
  mergerMacsPerToken: number;
  /** Whether the checkpoint stores MoE experts: then decode reads only the routed ones, and the counts above include every expert. */
  moe: boolean;
}

const LAYER = /(^|\.)layers\.\d+\./;

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Counts the work of the checkpoint in `dir` with its language-model matrices in `weights`. A
 * checkpoint already quantized (AWQ, GPTQ, FP8) counts its stored bytes, which it runs as read.
 */
export async function checkpointWork(dir: string, config: ModelConfig, weights: BenchWeights): Promise<CheckpointWork> {
  const ckpt = await openSafetensorsImpl(dir);
  const prequantized = config.quantization !== null;
  const bytesOf = (shape: readonly number[], stored: number): number =>
    prequantized || shape.length !== 2 ? stored : native.weightBytes(weights, shape[0], shape[1]);
  const H = config.text.hiddenSize;
  let decodeBytes = 0, textMacs = 0, visionMacs = 0, mergerMacs = 0, moe = false;
  let head: { shape: readonly number[]; byteLength: number } | undefined;
  let embed: { shape: readonly number[]; byteLength: number } | undefined;
  for (const [name, t] of ckpt.tensors) {
    const isVisual = /(^|\.)visual\./.test(name);
    if (name.endsWith('lm_head.weight')) head = t;
    else if (name.endsWith('embed_tokens.weight') && !isVisual) embed = t;
    if (t.shape.length < 2) continue; // norms and biases: negligible reads, no matmul
    if (isVisual) {
      if (name.includes('merger')) mergerMacs += numel(t.shape);
      else if (name.endsWith('.weight') && !name.includes('pos_embed')) visionMacs += numel(t.shape);
    } else if (LAYER.test(name)) {
      if (name.includes('experts')) moe = true;
      decodeBytes += bytesOf(t.shape, t.byteLength);
      // Packed quantized tensors (qweight, scales) hold fewer elements than they multiply: count
      // the multiply-adds from the config where a layer's K is the hidden size or the MLP width.
      if (name.endsWith('.weight') || name.endsWith('.qweight')) textMacs += name.endsWith('.qweight') ? macsOfPacked(t.shape, config) : numel(t.shape);
    }
  }
  const lm = head ?? (config.text.tieWordEmbeddings ? embed : undefined);
  const headMacs = config.text.vocabSize * H;
  decodeBytes += lm ? bytesOf(lm.shape, lm.byteLength) : native.weightBytes(weights, config.text.vocabSize, H);
  return { decodeBytes, textMacsPerToken: textMacs, headMacs, visionMacsPerPatch: visionMacs, mergerMacsPerToken: mergerMacs, moe };
}

/** AWQ / GPTQ `qweight` int32 tensors pack 8 nibbles along one axis: the matrix is 8× the larger side. */
function macsOfPacked(shape: readonly number[], config: ModelConfig): number {
  const bits = config.quantization?.bits ?? 4;
  return numel(shape) * (32 / bits);
}

/** FLOPs of one stage, split by the kernel that runs them: the weight matrices' and attention's. */
export interface StageFlops {
  matrices: number;
  attention: number;
}

/** FLOPs of a prefill of `tokens` tokens: the layers' matrices and the LM head on the last token, and causal attention. */
export function prefillFlops(w: CheckpointWork, config: ModelConfig, tokens: number): StageFlops {
  const t = config.text;
  return {
    matrices: 2 * tokens * w.textMacsPerToken + 2 * w.headMacs,
    attention: 2 * tokens * tokens * t.heads * t.headDim * t.layers, // q·kᵀ and p·v, half under the mask
  };
}

/** FLOPs of the vision tower on `patches` patches (attention counted full, as Qwen2-VL runs it; windowed towers do less). */
export function visionFlops(w: CheckpointWork, config: ModelConfig, patches: number): StageFlops {
  const v = config.vision;
  const merged = patches / v.spatialMergeSize ** 2;
  return {
    matrices: 2 * patches * w.visionMacsPerPatch + 2 * merged * w.mergerMacsPerToken,
    attention: 4 * patches * patches * v.heads * v.headDim * v.depth,
  };
}
