/**
 * Pieces of config parsing shared by several families: where the text fields live, RoPE settings,
 * per-layer attention kinds, and the consistency checks every decoder must pass.
 * @module
 */
import { QwenVLError } from '../errors.js';
import type { MoeConfig, TextConfig, VisionConfig } from '../model/config.js';
import type { ConfigLayout } from './family.js';
import { ConfigReader } from './fields.js';

/**
 * The section holding the text decoder fields: `text_config` when present (newer transformers and
 * every Qwen3-VL checkpoint), else the top level (the official Qwen2-VL / Qwen2.5-VL repos).
 */
export function textSection(root: ConfigReader, required: boolean): { reader: ConfigReader; layout: ConfigLayout } {
  const nested = root.sub('text_config');
  if (nested !== null) return { reader: nested, layout: 'nested' };
  if (required) throw root.error('text_config', 'missing (this model type keeps its text decoder settings there)');
  return { reader: root, layout: 'flat' };
}

/** `num_key_value_heads`: an explicit null means "same as the attention heads", as in transformers. */
export function kvHeads(r: ConfigReader, heads: number, def: number): number {
  if (r.obj['num_key_value_heads'] === null) return heads;
  return r.posInt('num_key_value_heads', def);
}

/** `tie_word_embeddings`: the text section's own value, else the top level's, else `def`. */
export function tieWordEmbeddings(r: ConfigReader, root: ConfigReader, def: boolean): boolean {
  if (r.has('tie_word_embeddings')) return r.bool('tie_word_embeddings');
  return root.bool('tie_word_embeddings', def);
}

export interface RopeSettings {
  ropeTheta: number;
  ropeType: string;
  mropeSection: [number, number, number];
}

/**
 * RoPE settings from `rope_scaling` (transformers 4.x) or `rope_parameters` (5.x). `type` wins over
 * `rope_type` and "mrope" means "default", as the Qwen2-VL config classes normalise it.
 * `defaultSection` is used when the section exists but names no mrope_section (Qwen3-VL's
 * rotary embedding does that); null makes mrope_section required.
 */
export function parseRope(r: ConfigReader, defaultTheta: number, defaultSection: readonly number[] | null): RopeSettings {
  const scalingKey = r.has('rope_scaling') ? 'rope_scaling' : r.has('rope_parameters') ? 'rope_parameters' : null;
  const scaling = scalingKey === null ? null : r.sub(scalingKey);
  let ropeType = 'default';
  let typeKey = 'rope_type';
  if (scaling !== null) {
    typeKey = scaling.has('type') ? 'type' : 'rope_type';
    ropeType = scaling.str(typeKey, 'default');
    if (ropeType === 'mrope') ropeType = 'default';
  }
  if (ropeType !== 'default') {
    throw new QwenVLError(
      'E_UNSUPPORTED',
      `${r.file}: field "${scaling!.field(typeKey)}": RoPE scaling type "${ropeType}" is not supported (supported: default, mrope)`,
    );
  }
  let ropeTheta = defaultTheta;
  if (r.has('rope_theta')) ropeTheta = r.posNum('rope_theta');
  else {
    const params = r.sub('rope_parameters');
    if (params !== null && params.has('rope_theta')) ropeTheta = params.posNum('rope_theta');
  }
  if (scaling === null) {
    throw r.error('rope_scaling', 'missing (expected an object with mrope_section: the M-RoPE split of head_dim / 2)');
  }
  const section = scaling.has('mrope_section') || defaultSection === null
    ? scaling.intList('mrope_section')
    : [...defaultSection];
  if (section.length !== 3) {
    throw scaling.error('mrope_section', `expected 3 sections (temporal, height, width), got ${section.length}`);
  }
  return { ropeTheta, ropeType, mropeSection: [section[0], section[1], section[2]] };
}

/**
 * Per-layer attention kind: an explicit `layer_types`, else sliding-window layers from index
 * `max_window_layers` on when `use_sliding_window` is set (the Qwen2-VL text config rule).
 */
export function qwen2LayerTypes(r: ConfigReader, layers: number): { slidingWindow: number | null; maxWindowLayers: number; layerTypes: TextConfig['layerTypes'] } {
  const useSliding = r.bool('use_sliding_window', false);
  const slidingWindow = useSliding ? r.posInt('sliding_window', 4096) : null;
  const maxWindowLayers = r.nonNegInt('max_window_layers', 80);
  let layerTypes: TextConfig['layerTypes'];
  if (r.has('layer_types')) {
    const raw = r.raw('layer_types');
    if (!Array.isArray(raw) || !raw.every((t) => t === 'full_attention' || t === 'sliding_attention')) {
      throw r.error('layer_types', 'expected an array of "full_attention" / "sliding_attention"');
    }
    if (raw.length !== layers) throw r.error('layer_types', `has ${raw.length} entries for ${layers} layers`);
    layerTypes = [...(raw as TextConfig['layerTypes'])];
  } else {
    layerTypes = Array.from({ length: layers }, (_, i) =>
      slidingWindow !== null && i >= maxWindowLayers ? 'sliding_attention' : 'full_attention',
    );
  }
  return { slidingWindow, maxWindowLayers, layerTypes };
}

/** Head size: explicit `head_dim` when the family honours it, else hidden / heads (which must divide). */
export function headDim(r: ConfigReader, hidden: number, heads: number, explicit: number | null): number {
  if (explicit !== null) return explicit;
  if (hidden % heads !== 0) {
    throw r.error('num_attention_heads', `${heads} heads do not divide hidden_size ${hidden}`);
  }
  return hidden / heads;
}

/**
 * Bounds on products of fields that size one allocation (each field alone is bounded by
 * FIELD_LIMITS): far above released checkpoints, far below what a process can hold.
 */
export const PRODUCT_LIMITS = Object.freeze({
  /** vocab_size × hidden_size: the embedding table (Qwen2.5-VL-72B: 1.2e9). */
  embedding: 2 ** 34,
  /** num_attention_heads × head_dim: one token's query row (Qwen2.5-VL-72B: 8192). */
  attentionWidth: 2 ** 18,
  /** in_channels × temporal_patch_size × patch_size²: one vision patch (Qwen3-VL: 1536). */
  patch: 2 ** 20,
  /** spatial_merge_size² × vision width: one row of the merger's input (Qwen2-VL: 5120). */
  mergerInput: 2 ** 22,
});

function checkProduct(r: ConfigReader, key: string, what: string, factors: string, value: number, max: number): void {
  if (value > max) throw r.error(key, `${what} (${factors}) = ${value} is over the limit of ${max}`);
}

/** Consistency checks every text decoder must pass. */
export function checkText(r: ConfigReader, text: TextConfig): void {
  checkProduct(r, 'vocab_size', 'the embedding table', 'vocab_size × hidden_size', text.vocabSize * text.hiddenSize, PRODUCT_LIMITS.embedding);
  checkProduct(r, 'num_attention_heads', 'the attention width', 'num_attention_heads × head_dim', text.heads * text.headDim, PRODUCT_LIMITS.attentionWidth);
  if (text.kvHeads > text.heads || text.heads % text.kvHeads !== 0) {
    throw r.error('num_key_value_heads', `${text.kvHeads} key/value heads do not divide ${text.heads} attention heads`);
  }
  if (text.headDim % 2 !== 0) throw r.error('head_dim', `head_dim ${text.headDim} must be even for rotary embeddings`);
  const sum = text.mropeSection[0] + text.mropeSection[1] + text.mropeSection[2];
  if (sum * 2 !== text.headDim) {
    throw r.error(
      r.has('rope_scaling') ? 'rope_scaling' : 'rope_parameters',
      `mrope_section [${text.mropeSection.join(', ')}] sums to ${sum}, but head_dim / 2 is ${text.headDim / 2}`,
    );
  }
}

/** Consistency checks for a MoE block description. */
export function checkMoe(r: ConfigReader, moe: MoeConfig, layers: number): void {
  if (moe.topK > moe.numExperts) {
    throw r.error('num_experts_per_tok', `${moe.topK} experts per token exceeds num_experts ${moe.numExperts}`);
  }
  for (const l of moe.mlpOnlyLayers) {
    if (l >= layers) throw r.error('mlp_only_layers', `layer ${l} is out of range (${layers} layers)`);
  }
}

/** Consistency checks every vision tower must pass. */
export function checkVision(r: ConfigReader, v: VisionConfig): void {
  checkProduct(r, 'patch_size', 'a vision patch', 'in_channels × temporal_patch_size × patch_size²', v.inChannels * v.temporalPatchSize * v.patchSize ** 2, PRODUCT_LIMITS.patch);
  checkProduct(r, 'spatial_merge_size', 'the merger input', 'spatial_merge_size² × vision width', v.spatialMergeSize ** 2 * v.hiddenSize, PRODUCT_LIMITS.mergerInput);
  const headsKey = 'num_heads';
  if (v.hiddenSize % v.heads !== 0) {
    throw r.error(headsKey, `${v.heads} heads do not divide the vision width ${v.hiddenSize}`);
  }
  if ((v.hiddenSize / v.heads) % 4 !== 0) {
    // The 2-D vision rotary embedding splits each head into row and column halves of rotate pairs.
    throw r.error(headsKey, `vision head size ${v.hiddenSize / v.heads} must be a multiple of 4`);
  }
  const inRange = (key: string, list: readonly number[] | null) => {
    for (const i of list ?? []) {
      if (i >= v.depth) throw r.error(key, `block index ${i} is out of range (depth ${v.depth})`);
    }
  };
  inRange('fullatt_block_indexes', v.fullattBlockIndexes);
  inRange('deepstack_visual_indexes', v.deepstackVisualIndexes);
}

/** An empty section for families whose config.json has no vision_config (all defaults apply). */
export function emptySection(root: ConfigReader, key: string): ConfigReader {
  return new ConfigReader({}, root.file, root.field(key));
}
