/**
 * Tiny random checkpoints in the official layouts, for the layout suite. `scaleConfig` shrinks a
 * published config.json (widths, depths, experts) but keeps its structural flags: tied or untied
 * lm_head, nested or flat text section, biases, q/k norm, window-attention blocks, deepstack
 * indexes, MoE sparsity, mrope sections (rescaled in proportion), quantization_config.
 * `officialTensors` lists the tensor names and shapes the real checkpoints of the family carry
 * for such a config (written from the transformers module trees, independent of lib/), and
 * `writeLayout` writes one set of weights in any of the key layouts, sharded or not, as bf16, f16
 * or f32.
 */
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  f32ToBf16Bits,
  f32ToF16Bits,
  randomFloats,
  writeSafetensors,
  writeShardedCheckpoint,
  type WriterTensors,
} from './safetensors-writer.js';

export type Family = 'qwen2_vl' | 'qwen2_5_vl' | 'qwen3_vl' | 'qwen3_vl_moe';
export type DiskDtype = 'BF16' | 'F16' | 'F32';
type Json = Record<string, unknown>;

/** The text section of a config (nested `text_config` or the top level). */
export function textSection(config: Json): Json {
  return (config.text_config as Json | undefined) ?? config;
}

/** mrope sections rescaled to sum to `half`, by largest remainder (e.g. [16,24,24] -> [2,3,3]). */
export function scaleSections(sections: number[], half: number): number[] {
  const total = sections.reduce((a, b) => a + b, 0);
  const exact = sections.map((s) => (s * half) / total);
  const out = exact.map(Math.floor);
  const order = exact.map((e, i) => [e - Math.floor(e), i]).sort((a, b) => b[0] - a[0]);
  for (let k = 0; k < half - out.reduce((a, b) => a + b, 0); k++) out[order[k][1]]++;
  return out;
}

/** Block indexes of a `depth`-block tower mapped onto `newDepth` blocks, in proportion, distinct. */
export function scaleIndexes(indexes: number[], depth: number, newDepth: number): number[] {
  const out = indexes.map((i) => Math.min(newDepth - 1, Math.floor(((i + 1) * newDepth) / depth) - 1));
  return [...new Set(out.map((i) => Math.max(0, i)))];
}

const TEXT = { hidden: 32, layers: 2, heads: 2, headDim: 16, intermediate: 64, experts: 4, moeIntermediate: 16 };
const VISION = { hidden: 32, depth: 4, heads: 2, intermediate: 64 };

/**
 * A published config scaled down to a few thousand parameters per layer. Vocabulary, token ids,
 * patch sizes, window size, rope kind and every structural flag stay as published.
 */
export function scaleConfig(family: Family, official: Json): Json {
  const config = structuredClone(official);
  const text = textSection(config);
  const v = (config.vision_config ??= {}) as Json;
  const heads = text.num_attention_heads as number;
  const kv = (text.num_key_value_heads as number | undefined) ?? heads;
  text.hidden_size = TEXT.hidden;
  text.num_hidden_layers = TEXT.layers;
  text.num_attention_heads = TEXT.heads;
  text.num_key_value_heads = kv < heads ? 1 : TEXT.heads;
  text.intermediate_size = TEXT.intermediate;
  if ('max_window_layers' in text) text.max_window_layers = TEXT.layers;
  if (family === 'qwen3_vl' || family === 'qwen3_vl_moe') text.head_dim = TEXT.headDim;
  const headDim = family === 'qwen3_vl' || family === 'qwen3_vl_moe' ? TEXT.headDim : TEXT.hidden / TEXT.heads;
  const rope = (text.rope_scaling ?? config.rope_scaling) as Json | undefined;
  if (rope?.mrope_section) rope.mrope_section = scaleSections(rope.mrope_section as number[], headDim / 2);
  if (family === 'qwen3_vl_moe') {
    text.num_experts = TEXT.experts;
    text.num_experts_per_tok = Math.min(text.num_experts_per_tok as number, TEXT.experts);
    text.moe_intermediate_size = TEXT.moeIntermediate;
    text.mlp_only_layers = ((text.mlp_only_layers as number[] | undefined) ?? []).filter((l) => l < TEXT.layers);
  }

  const depth = (v.depth as number | undefined) ?? 32;
  // Qwen2.5-VL: 8 blocks so that the published 1-in-8 full-attention blocks stay a minority.
  const newDepth = family === 'qwen2_5_vl' ? 8 : VISION.depth;
  v.depth = newDepth;
  v.num_heads = VISION.heads;
  if (family === 'qwen2_vl') {
    v.embed_dim = VISION.hidden;
    v.hidden_size = TEXT.hidden; // Qwen2-VL's merger output width
  } else {
    v.hidden_size = VISION.hidden;
    v.intermediate_size = VISION.intermediate;
    v.out_hidden_size = TEXT.hidden;
  }
  if (family === 'qwen2_5_vl') {
    v.fullatt_block_indexes = scaleIndexes((v.fullatt_block_indexes as number[] | undefined) ?? [7, 15, 23, 31], depth, newDepth);
    v.window_size ??= 112;
  }
  if (family === 'qwen3_vl' || family === 'qwen3_vl_moe') {
    v.deepstack_visual_indexes = scaleIndexes(v.deepstack_visual_indexes as number[], depth, newDepth);
  }
  return config;
}

/** Tensor name -> shape, in the legacy layout (`model.*` text, `visual.*` vision), lm_head excluded. */
export function officialTensors(family: Family, config: Json): Map<string, number[]> {
  const t = textSection(config);
  const v = config.vision_config as Json;
  const out = new Map<string, number[]>();
  const put = (name: string, shape: number[]) => out.set(name, shape);
  const H = t.hidden_size as number;
  const nh = t.num_attention_heads as number;
  const kv = (t.num_key_value_heads as number | undefined) ?? nh;
  const hd = (t.head_dim as number | undefined) ?? H / nh;
  const qwen3 = family === 'qwen3_vl' || family === 'qwen3_vl_moe';
  put('model.embed_tokens.weight', [t.vocab_size as number, H]);
  put('model.norm.weight', [H]);
  for (let l = 0; l < (t.num_hidden_layers as number); l++) {
    const p = `model.layers.${l}.`;
    put(`${p}input_layernorm.weight`, [H]);
    put(`${p}post_attention_layernorm.weight`, [H]);
    put(`${p}self_attn.q_proj.weight`, [nh * hd, H]);
    put(`${p}self_attn.k_proj.weight`, [kv * hd, H]);
    put(`${p}self_attn.v_proj.weight`, [kv * hd, H]);
    put(`${p}self_attn.o_proj.weight`, [H, nh * hd]);
    if (qwen3) {
      put(`${p}self_attn.q_norm.weight`, [hd]);
      put(`${p}self_attn.k_norm.weight`, [hd]);
    } else {
      put(`${p}self_attn.q_proj.bias`, [nh * hd]);
      put(`${p}self_attn.k_proj.bias`, [kv * hd]);
      put(`${p}self_attn.v_proj.bias`, [kv * hd]);
    }
    const step = (t.decoder_sparse_step as number | undefined) ?? 1;
    const sparse = family === 'qwen3_vl_moe' && !((t.mlp_only_layers as number[]) ?? []).includes(l) && (l + 1) % step === 0;
    if (sparse) {
      const E = t.num_experts as number;
      const mi = t.moe_intermediate_size as number;
      put(`${p}mlp.gate.weight`, [E, H]);
      put(`${p}mlp.experts.gate_up_proj`, [E, H, 2 * mi]);
      put(`${p}mlp.experts.down_proj`, [E, mi, H]);
    } else {
      const I = t.intermediate_size as number;
      put(`${p}mlp.gate_proj.weight`, [I, H]);
      put(`${p}mlp.up_proj.weight`, [I, H]);
      put(`${p}mlp.down_proj.weight`, [H, I]);
    }
  }

  const E = (family === 'qwen2_vl' ? v.embed_dim : v.hidden_size) as number;
  const patch = ((v.patch_size ?? v.spatial_patch_size) as number | undefined) ?? (qwen3 ? 16 : 14);
  const tp = (v.temporal_patch_size as number | undefined) ?? 2;
  const merged = E * ((v.spatial_merge_size as number | undefined) ?? 2) ** 2;
  const outW = (family === 'qwen2_vl' ? v.hidden_size : v.out_hidden_size) as number;
  const linear = (name: string, o: number, i: number) => {
    put(`${name}.weight`, [o, i]);
    put(`${name}.bias`, [o]);
  };
  const norm = (name: string, n: number, bias: boolean) => {
    put(`${name}.weight`, [n]);
    if (bias) put(`${name}.bias`, [n]);
  };
  put('visual.patch_embed.proj.weight', [E, (v.in_chans ?? v.in_channels ?? 3) as number, tp, patch, patch]);
  if (qwen3) {
    put('visual.patch_embed.proj.bias', [E]);
    put('visual.pos_embed.weight', [v.num_position_embeddings as number, E]);
  }
  const layerNorm = family !== 'qwen2_5_vl';
  for (let b = 0; b < (v.depth as number); b++) {
    const p = `visual.blocks.${b}.`;
    norm(`${p}norm1`, E, layerNorm);
    norm(`${p}norm2`, E, layerNorm);
    linear(`${p}attn.qkv`, 3 * E, E);
    linear(`${p}attn.proj`, E, E);
    if (family === 'qwen2_vl') {
      const I = E * ((v.mlp_ratio as number | undefined) ?? 4);
      linear(`${p}mlp.fc1`, I, E);
      linear(`${p}mlp.fc2`, E, I);
    } else if (family === 'qwen2_5_vl') {
      const I = v.intermediate_size as number;
      linear(`${p}mlp.gate_proj`, I, E);
      linear(`${p}mlp.up_proj`, I, E);
      linear(`${p}mlp.down_proj`, E, I);
    } else {
      const I = v.intermediate_size as number;
      linear(`${p}mlp.linear_fc1`, I, E);
      linear(`${p}mlp.linear_fc2`, E, I);
    }
  }
  if (qwen3) {
    norm('visual.merger.norm', E, true);
    linear('visual.merger.linear_fc1', merged, merged);
    linear('visual.merger.linear_fc2', outW, merged);
    ((v.deepstack_visual_indexes as number[]) ?? []).forEach((_, i) => {
      const p = `visual.deepstack_merger_list.${i}.`;
      norm(`${p}norm`, merged, true);
      linear(`${p}linear_fc1`, merged, merged);
      linear(`${p}linear_fc2`, outW, merged);
    });
  } else {
    norm('visual.merger.ln_q', E, family === 'qwen2_vl');
    linear('visual.merger.mlp.0', merged, merged);
    linear('visual.merger.mlp.2', outW, merged);
  }
  return out;
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** Normal values of the same variance (1/3) from uniform ones in [-1, 1) (Box-Muller, in place). */
function normalFrom(r: Float32Array): Float32Array {
  for (let i = 0; i + 1 < r.length; i += 2) {
    // 1 - u for u uniform in [0, 1); an f32 input of 1 (rounded up from just below) counts as its top.
    const radius = Math.sqrt((-2 / 3) * Math.log((1 - r[i]) / 2 || 2 ** -25));
    const angle = Math.PI * r[i + 1];
    r[i] = radius * Math.cos(angle);
    r[i + 1] = radius * Math.sin(angle);
  }
  // An odd length leaves the last value uniform (of the same variance).
  return r;
}

/**
 * Seeded random values for every tensor, scaled like an initialised model so activations stay
 * in range: norms near 1, small biases, embeddings ~0.6, matrices ~1/sqrt(fan_in). Uniform in
 * ±scale, or with `normal` normal of the same variance (the bell shape of trained weights, whose
 * tails set a group's quantization range).
 */
export function randomWeights(
  shapes: Map<string, number[]>,
  seed: number,
  opts: { normal?: boolean } = {},
): Map<string, { shape: number[]; values: Float32Array }> {
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const r = opts.normal ? normalFrom(randomFloats(n, hash(name) ^ seed)) : randomFloats(n, hash(name) ^ seed);
    const isNorm = /norm|ln_q/.test(name) && name.endsWith('.weight');
    let scale: number;
    if (isNorm) scale = 0.1;
    else if (name.endsWith('.bias')) scale = 0.02;
    else if (name.includes('embed_tokens')) scale = 0.6;
    else if (name.includes('pos_embed')) scale = 0.1;
    else scale = 1.7 / Math.sqrt(shape.length === 3 ? shape[1] : shape.slice(1).reduce((a, b) => a * b, 1));
    for (let i = 0; i < n; i++) r[i] = (isNorm ? 1 : 0) + r[i] * scale;
    out.set(name, { shape, values: r });
  }
  return out;
}

// The same weights are written in many layouts: convert each tensor once per dtype.
const encoded = new WeakMap<Float32Array, Map<DiskDtype, ArrayBufferView>>();

function encode(values: Float32Array, dtype: DiskDtype): ArrayBufferView {
  if (dtype === 'F32') return values;
  const cache = encoded.get(values) ?? new Map<DiskDtype, ArrayBufferView>();
  encoded.set(values, cache);
  let bits = cache.get(dtype);
  if (!bits) cache.set(dtype, (bits = dtype === 'BF16' ? f32ToBf16Bits(values) : f32ToF16Bits(values)));
  return bits;
}

/**
 * Copies a checkpoint's tokenizer / template / processor files into `dst`, with tokenizer.json cut
 * down to its 256 byte-level symbols, no merges, and all its added tokens: the same format and
 * special-token ids, text encoded byte by byte, and a load ~20x faster than the full vocabulary.
 */
export function writeByteLevelFiles(src: string, dst: string): void {
  mkdirSync(dst, { recursive: true });
  for (const f of AUX_FILES) {
    try {
      cpSync(join(src, f), join(dst, f));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  const tok = JSON.parse(readFileSync(join(src, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number>; merges: unknown[] } };
  tok.model.vocab = Object.fromEntries(Object.entries(tok.model.vocab).filter(([k]) => [...k].length === 1));
  tok.model.merges = [];
  writeFileSync(join(dst, 'tokenizer.json'), JSON.stringify(tok));
}

/** Qwen's first added token (`<|endoftext|>`); every special token id is at or above it. */
const FIRST_ADDED_ID = 151643;

/**
 * Renumbers the added tokens of byte-level files (written by {@link writeByteLevelFiles} into
 * `dir`) to follow the 256 byte symbols, and returns `config` with its token ids renumbered the
 * same way and `vocab_size` set to `vocab`: a checkpoint whose embedding and LM head are `vocab`
 * rows instead of ~152k, with the same chat template and special tokens by name.
 */
export function compactVocabulary(dir: string, config: Json, vocab: number): Json {
  const renumber = (id: number) => (id >= FIRST_ADDED_ID ? id - FIRST_ADDED_ID + 256 : id);
  const ids = (v: unknown): unknown => (typeof v === 'number' ? renumber(v) : Array.isArray(v) ? v.map(ids) : v);
  // Every `*_token_id(s)` field, at any depth (a nested text_config carries its own).
  const remap = (o: Json): Json =>
    Object.fromEntries(Object.entries(o).map(([k, v]) => [k, /_token_ids?$/.test(k) ? ids(v) : v && typeof v === 'object' && !Array.isArray(v) ? remap(v as Json) : v]));
  const edit = (file: string, f: (j: Json) => Json) => {
    try {
      writeFileSync(join(dir, file), JSON.stringify(f(JSON.parse(readFileSync(join(dir, file), 'utf8')) as Json)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  };
  edit('tokenizer.json', (t) => ({ ...t, added_tokens: (t.added_tokens as { id: number }[]).map((a) => ({ ...a, id: renumber(a.id) })) }));
  edit('tokenizer_config.json', (t) => ({
    ...t,
    added_tokens_decoder: Object.fromEntries(Object.entries(t.added_tokens_decoder as Json).map(([id, v]) => [String(renumber(Number(id))), v])),
  }));
  edit('generation_config.json', remap);
  const out = remap(config);
  textSection(out).vocab_size = vocab;
  return out;
}

const AUX_FILES = ['tokenizer.json', 'tokenizer_config.json', 'chat_template.json', 'preprocessor_config.json',
  'video_preprocessor_config.json', 'generation_config.json'];

export interface LayoutOptions {
  /** Key names: `legacy` (`model.layers.*`, `visual.*`) or `new` (`model.language_model.*`, `model.visual.*`). */
  prefixes: 'legacy' | 'new';
  /** One model.safetensors, or shards with model.safetensors.index.json. */
  sharded: boolean;
  dtype: DiskDtype;
  /** Untied: lm_head.weight values (written with tie_word_embeddings false). Tied when absent. */
  lmHead?: Float32Array;
  /** Extra tensors (e.g. quantized ones), written as given. */
  extra?: WriterTensors;
}

/** Renames a legacy key into the layout asked for. */
export function layoutName(name: string, prefixes: 'legacy' | 'new'): string {
  if (prefixes === 'legacy' || name === 'lm_head.weight') return name;
  return name.startsWith('visual.') ? `model.${name}` : name.replace(/^model\./, 'model.language_model.');
}

/**
 * Writes a checkpoint folder: config.json (tie_word_embeddings set from `opts.lmHead`), the
 * weights, and the tokenizer / template / processor files copied from `filesFrom`.
 */
export async function writeLayout(
  dir: string,
  config: Json,
  weights: Map<string, { shape: number[]; values: Float32Array }>,
  filesFrom: string,
  opts: LayoutOptions,
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (const f of AUX_FILES) {
    try {
      cpSync(join(filesFrom, f), join(dir, f));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  const cfg = structuredClone(config);
  const tied = opts.lmHead === undefined;
  cfg.tie_word_embeddings = tied;
  if (cfg.text_config) (cfg.text_config as Json).tie_word_embeddings = tied;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg, null, 2));

  const all: WriterTensors = {};
  for (const [name, w] of weights) all[layoutName(name, opts.prefixes)] = { dtype: opts.dtype, shape: w.shape, data: encode(w.values, opts.dtype) };
  if (opts.lmHead) {
    const embed = weights.get('model.embed_tokens.weight')!;
    all['lm_head.weight'] = { dtype: opts.dtype, shape: embed.shape, data: encode(opts.lmHead, opts.dtype) };
  }
  Object.assign(all, opts.extra ?? {});
  if (!opts.sharded) {
    await writeSafetensors(join(dir, 'model.safetensors'), all, { format: 'pt' });
    return;
  }
  // Three shards as the hub writes them: vision, then the text layers, then embeddings and head.
  const shards: Record<string, WriterTensors> = {};
  const names = ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];
  for (const n of names) shards[n] = {};
  for (const [name, t] of Object.entries(all)) {
    const k = name.includes('visual.') ? 0 : name.includes('.layers.') ? 1 : 2;
    shards[names[k]][name] = t;
  }
  await writeShardedCheckpoint(dir, shards);
}
