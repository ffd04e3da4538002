// What the accuracy tests compare two runs of a model with (precision 'fast' vs 'exact', a bf16 KV
// cache vs f32): cosine and argmax over a slice of a logits (or features) array, and the wider
// generated Qwen2-VL checkpoint they both measure on besides the 32-wide fixtures.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_CONFIGS, checkpointDir } from './fixtures.js';
import { agreement } from './logit-agreement.js';
import { officialTensors, randomWeights, scaleConfig, scaleSections, textSection, writeByteLevelFiles, writeLayout } from './layout-checkpoint.js';

export function cosine(a: Float32Array, b: Float32Array, from = 0, to = a.length): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = from; i < to; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

/** The index of the largest of a[from..to), relative to from. */
export function argmax(a: Float32Array, from: number, to: number): number {
  let best = from;
  for (let i = from + 1; i < to; i++) if (a[i] > a[best]) best = i;
  return best - from;
}

/** Row by row (rows of `vocab` logits): the mean and worst cosine, and the fraction whose argmax agrees. */
export function compareRows(a: Float32Array, b: Float32Array, vocab: number): { meanCos: number; worstCos: number; top1: number; positions: number } {
  const positions = a.length / vocab;
  const r = agreement(a, b, vocab, 0, positions);
  return { meanCos: r.meanCos, worstCos: r.minCos, top1: r.top1, positions };
}

/**
 * Writes into `work` Qwen2-VL-2B's structure at 256-wide text (4 heads of 64 over 2 kv heads, MLPs
 * 1024 wide), random weights scaled like trained ones (long dot products, so rounding errors
 * accumulate as in a real model's layers), the vision config patched with `vision` (its
 * hidden_size, the merger's output, must be 256). Returns the checkpoint folder.
 */
export async function writeWideQwen2Vl(work: string, vision: Record<string, unknown>): Promise<string> {
  const official = JSON.parse(readFileSync(join(MODEL_CONFIGS, 'Qwen__Qwen2-VL-2B-Instruct/config.reconstructed.json'), 'utf8')) as Record<string, unknown>;
  const config = scaleConfig('qwen2_vl', official);
  Object.assign(textSection(config), { hidden_size: 256, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 1024 });
  (config.rope_scaling as { mrope_section: number[] }).mrope_section = scaleSections([16, 24, 24], 32);
  Object.assign(config.vision_config as object, vision);
  const files = join(work, 'files');
  writeByteLevelFiles(checkpointDir('qwen2-vl'), files);
  const dir = join(work, 'wide');
  await writeLayout(dir, config, randomWeights(officialTensors('qwen2_vl', config), 11), files, { prefixes: 'legacy', sharded: false, dtype: 'BF16' });
  return dir;
}
