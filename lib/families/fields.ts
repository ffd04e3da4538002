/**
 * Typed reads of JSON config fields. Every failure is an E_MODEL_FORMAT error naming the file and
 * the dotted field path, so a bad checkpoint says exactly what to fix.
 *
 * A JSON `null` counts as absent: transformers passes it on as `None`, and every field read here
 * treats `None` as "use the default" (or has no meaningful None).
 * @module
 */
import { formatError, type QwenVLError } from '../errors.js';

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

  /** An integer >= 1. */
  posInt(key: string, def?: number): number {
    return this.value(key, def, 'a positive integer', (v) => Number.isSafeInteger(v) && (v as number) >= 1) as number;
  }

  /** An integer >= 0. */
  nonNegInt(key: string, def?: number): number {
    return this.value(key, def, 'a non-negative integer', (v) => Number.isSafeInteger(v) && (v as number) >= 0) as number;
  }

  /** A finite number > 0. */
  posNum(key: string, def?: number): number {
    return this.value(key, def, 'a positive number', (v) => typeof v === 'number' && Number.isFinite(v) && v > 0) as number;
  }

  /** A finite number >= 0. */
  nonNegNum(key: string, def?: number): number {
    return this.value(key, def, 'a non-negative number', (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0) as number;
  }

  /** A boolean. */
  bool(key: string, def?: boolean): boolean {
    return this.value(key, def, 'true or false', (v) => typeof v === 'boolean') as boolean;
  }

  /** A string. */
  str(key: string, def?: string): string {
    return this.value(key, def, 'a string', (v) => typeof v === 'string') as string;
  }

  /** An array of integers >= 0. */
  intList(key: string, def?: readonly number[]): number[] {
    const v = this.value(key, def, 'an array of non-negative integers', (x) =>
      Array.isArray(x) && x.every((e) => Number.isSafeInteger(e) && (e as number) >= 0),
    ) as number[];
    return [...v];
  }

  /** A non-negative integer or an array of them (token ids such as eos_token_id), as an array; [] when absent. */
  idList(key: string): number[] {
    const v = this.raw(key);
    if (v === undefined) return [];
    if (Number.isSafeInteger(v) && (v as number) >= 0) return [v as number];
    if (Array.isArray(v) && v.every((e) => Number.isSafeInteger(e) && (e as number) >= 0)) return [...(v as number[])];
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
