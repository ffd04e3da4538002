/**
 * Typed reads of JSON config fields. Every failure is an E_MODEL_FORMAT error naming the file and
 * the dotted field path, so a bad checkpoint says exactly what to fix.
 *
 * A JSON `null` counts as absent: transformers passes it on as `None`, and every field read here
 * treats `None` as "use the default" (or has no meaningful None).
 *
 * Every number read is bounded ({@link FIELD_LIMITS}) before anything can be sized by it: a config
 * saying `num_hidden_layers: 2**31` must get a typed error, not a JS array that exhausts the heap.
 * @module
 */
import { formatError, type QwenVLError } from '../errors.js';

/**
 * Upper bounds of config fields, by JSON key (the same key gets the same bound in every section).
 * Each is far above any released checkpoint (Qwen2.5-VL-72B: 80 layers, hidden 8192, vocab 152064;
 * Qwen3-VL-235B-A22B: 128 experts) and far below what would exhaust memory when something is sized
 * by it. Lists bound each element.
 */
export const FIELD_LIMITS: Readonly<Record<string, number>> = Object.freeze({
  // Text decoder.
  num_hidden_layers: 1024,
  hidden_size: 65536,
  intermediate_size: 262144,
  moe_intermediate_size: 262144,
  num_attention_heads: 1024,
  num_key_value_heads: 1024,
  head_dim: 8192,
  vocab_size: 2 ** 22,
  max_position_embeddings: 2 ** 24,
  sliding_window: 2 ** 24,
  max_window_layers: 2 ** 20,
  num_experts: 4096,
  num_experts_per_tok: 4096,
  decoder_sparse_step: 1024,
  mlp_only_layers: 1023,
  mrope_section: 4096,
  rms_norm_eps: 1,
  rope_theta: 1e12,
  // Vision tower.
  depth: 1024,
  embed_dim: 65536,
  out_hidden_size: 65536,
  num_heads: 1024,
  mlp_ratio: 64,
  patch_size: 1024,
  temporal_patch_size: 64,
  spatial_merge_size: 64,
  in_channels: 64,
  in_chans: 64,
  window_size: 65536,
  num_position_embeddings: 2 ** 20,
  fullatt_block_indexes: 1023,
  deepstack_visual_indexes: 1023,
  tokens_per_second: 1000,
  // Generation defaults.
  top_k: 2 ** 22,
  max_new_tokens: 2 ** 24,
  max_length: 2 ** 24,
  temperature: 1e4,
  repetition_penalty: 1e4,
  // quantization_config.
  bits: 64,
  group_size: 2 ** 20,
});

/** Token ids (`*_token_id`): below the largest vocabulary allowed. */
export const TOKEN_ID_LIMIT = FIELD_LIMITS.vocab_size - 1;
/** Any other integer field. */
export const DEFAULT_INT_LIMIT = 2 ** 24;
/** Any other number field. */
export const DEFAULT_NUMBER_LIMIT = 1e12;
/** Most entries of a list field. */
export const LIST_LENGTH_LIMIT = 4096;

/** The upper bound of field `key` (a JSON key, not a dotted path). */
export function fieldLimit(key: string, integer: boolean): number {
  return FIELD_LIMITS[key] ?? (key.endsWith('_token_id') ? TOKEN_ID_LIMIT : integer ? DEFAULT_INT_LIMIT : DEFAULT_NUMBER_LIMIT);
}

/** A parsed JSON object. */
export type Json = Record<string, unknown>;

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** True for a plain JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads fields of one JSON object (the whole file or a nested section of it). */
export class ConfigReader {
  /**
   * @param obj  the JSON object to read
   * @param file the file name used in error messages
   * @param path the dotted path of `obj` inside the file ('' for the top level)
   */
  constructor(
    readonly obj: Json,
    readonly file: string,
    readonly path = '',
  ) {}

  /** Dotted path of `key` for messages (`text_config.hidden_size`). */
  field(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  /** Whether `key` holds a value other than null. */
  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  /** The raw value (undefined when absent or null). */
  raw(key: string): unknown {
    const v = this.obj[key];
    return v === null ? undefined : v;
  }

  /** An E_MODEL_FORMAT error about `key`. */
  error(key: string, message: string): QwenVLError {
    return formatError(this.file, `field "${this.field(key)}": ${message}`);
  }

  private value<T>(key: string, def: T | undefined, expected: string, ok: (v: unknown) => boolean): unknown {
    const v = this.raw(key);
    if (v === undefined) {
      if (def === undefined) throw this.error(key, `missing (expected ${expected})`);
      return def;
    }
    if (!ok(v)) throw this.error(key, `expected ${expected}, got ${describe(v)}`);
    return v;
  }

  /** `v` (of field `key`) checked against the field's bound. */
  private bounded(key: string, v: number, integer: boolean, what = ''): number {
    const max = fieldLimit(key, integer);
    if (v > max) throw this.error(key, `${what}${v} is over the limit of ${max}`);
    return v;
  }

  /** A list field checked against the list length and element bounds. */
  private boundedList(key: string, list: readonly number[]): number[] {
    if (list.length > LIST_LENGTH_LIMIT) throw this.error(key, `${list.length} entries are over the limit of ${LIST_LENGTH_LIMIT}`);
    list.forEach((e, i) => this.bounded(key, e, true, `entry ${i}: `));
    return [...list];
  }

  /** An integer >= 1, at most the field's bound. */
  posInt(key: string, def?: number): number {
    const v = this.value(key, def, 'a positive integer', (x) => Number.isSafeInteger(x) && (x as number) >= 1) as number;
    return this.bounded(key, v, true);
  }

  /** An integer >= 0, at most the field's bound. */
  nonNegInt(key: string, def?: number): number {
    const v = this.value(key, def, 'a non-negative integer', (x) => Number.isSafeInteger(x) && (x as number) >= 0) as number;
    return this.bounded(key, v, true);
  }

  /** A finite number > 0, at most the field's bound. */
  posNum(key: string, def?: number): number {
    const v = this.value(key, def, 'a positive number', (x) => typeof x === 'number' && Number.isFinite(x) && x > 0) as number;
    return this.bounded(key, v, false);
  }

  /** A finite number >= 0, at most the field's bound. */
  nonNegNum(key: string, def?: number): number {
    const v = this.value(key, def, 'a non-negative number', (x) => typeof x === 'number' && Number.isFinite(x) && x >= 0) as number;
    return this.bounded(key, v, false);
  }

  /** A boolean. */
  bool(key: string, def?: boolean): boolean {
    return this.value(key, def, 'true or false', (v) => typeof v === 'boolean') as boolean;
  }

  /** A string. */
  str(key: string, def?: string): string {
    return this.value(key, def, 'a string', (v) => typeof v === 'string') as string;
  }

  /** An array of integers >= 0, each at most the field's bound. */
  intList(key: string, def?: readonly number[]): number[] {
    const v = this.value(key, def, 'an array of non-negative integers', (x) =>
      Array.isArray(x) && x.every((e) => Number.isSafeInteger(e) && (e as number) >= 0),
    ) as number[];
    return this.boundedList(key, v);
  }

  /** A non-negative integer or an array of them (token ids such as eos_token_id), as an array; [] when absent. */
  idList(key: string): number[] {
    const v = this.raw(key);
    if (v === undefined) return [];
    if (Number.isSafeInteger(v) && (v as number) >= 0) return [this.bounded(key, v as number, true)];
    if (Array.isArray(v) && v.every((e) => Number.isSafeInteger(e) && (e as number) >= 0)) return this.boundedList(key, v as number[]);
    throw this.error(key, `expected a token id or an array of token ids, got ${describe(v)}`);
  }

  /** A nested object section, or null when absent. */
  sub(key: string): ConfigReader | null {
    const v = this.raw(key);
    if (v === undefined) return null;
    if (!isJsonObject(v)) throw this.error(key, `expected an object, got ${describe(v)}`);
    return new ConfigReader(v, this.file, this.field(key));
  }
}
