/**
 * Generated Qwen3-VL-MoE checkpoints with the expert geometry a test needs (more experts than the
 * fixture, expert widths that are whole q4/q8 groups or FP8 blocks, or experts large enough for
 * RSS to see): the fixture's config.json with its widths replaced, the fixture's tokenizer cut
 * to byte level (layout-checkpoint.ts), seeded random weights scaled like an initialised model,
 * in the release layout (`model.language_model.*`, fused experts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointDir } from './fixtures.js';
import { officialTensors, randomWeights, scaleConfig, scaleSections, textSection, writeByteLevelFiles, writeLayout } from './layout-checkpoint.js';
import type { WriterTensors } from './safetensors-writer.js';

type Json = Record<string, unknown>;

export interface MoeGeometry {
  hidden: number;
  headDim: number;
  layers: number;
  experts: number;
  topK: number;
  moeIntermediate: number;
}

/** The fixture's config with `g`'s widths (two attention heads, the vision tower's output as wide as the decoder). */
export function moeConfig(g: MoeGeometry): Json {
  const src = JSON.parse(readFileSync(join(checkpointDir('qwen3-vl-moe'), 'config.json'), 'utf8')) as Json;
  const config = scaleConfig('qwen3_vl_moe', src);
  const t = textSection(config);
  Object.assign(t, {
    hidden_size: g.hidden,
    head_dim: g.headDim,
    num_hidden_layers: g.layers,
    intermediate_size: 2 * g.hidden,
    num_experts: g.experts,
    num_experts_per_tok: g.topK,
    moe_intermediate_size: g.moeIntermediate,
    mlp_only_layers: [],
  });
  const rope = t.rope_scaling as Json;
  rope.mrope_section = scaleSections(rope.mrope_section as number[], g.headDim / 2);
  (config.vision_config as Json).out_hidden_size = g.hidden;
  return config;
}

/** Every tensor of such a checkpoint (legacy names) with seeded random values. */
export function moeWeights(config: Json, seed: number): Map<string, { shape: number[]; values: Float32Array }> {
  return randomWeights(officialTensors('qwen3_vl_moe', config), seed);
}

/**
 * Writes the checkpoint into `dir`: `weights` (legacy names, renamed to the release layout) as
 * `dtype`, and `extra` tensors (release names) as given; the byte-level tokenizer files are made
 * once in `filesDir`.
 */
export async function writeMoeCheckpoint(
  dir: string,
  config: Json,
  weights: Map<string, { shape: number[]; values: Float32Array }>,
  filesDir: string,
  opts: { dtype?: 'BF16' | 'F16' | 'F32'; extra?: WriterTensors } = {},
): Promise<void> {
  writeByteLevelFiles(checkpointDir('qwen3-vl-moe'), filesDir);
  await writeLayout(dir, config, weights, filesDir, { prefixes: 'new', sharded: false, dtype: opts.dtype ?? 'BF16', extra: opts.extra });
}
