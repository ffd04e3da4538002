/**
 * Validation of {@link LoadOptions}: every option's type and range, before anything is read, so
 * a wrong value is an E_INPUT naming the option instead of a default silently taken (a
 * `maxInputPixels: 0` once meant "no option").
 * @internal
 * @module
 */
import { inputError } from '../errors.js';
import type { LoadOptions } from './load.js';

const POSITIVE_INTEGERS = ['threads', 'maxInputPixels', 'maxVisualTokens', 'maxMemoryBytes'] as const;

/** @internal Throws E_INPUT naming the first option of the wrong type or range. */
export function validateLoadOptions(options: unknown): asserts options is LoadOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw inputError(`loadModel: options must be an object, got ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of POSITIVE_INTEGERS) {
    const v = o[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)) {
      throw inputError(`loadModel: ${key} must be a positive integer, got ${describe(v)}`);
    }
  }
  if (o.contextLength !== undefined && (typeof o.contextLength !== 'number' || !Number.isSafeInteger(o.contextLength) || o.contextLength < 2)) {
    throw inputError(`loadModel: contextLength must be an integer >= 2, got ${describe(o.contextLength)}`);
  }
  if (o.device !== undefined && o.device !== 'cpu' && o.device !== 'auto') {
    throw inputError(`loadModel: device must be 'cpu' or 'auto', got ${describe(o.device)}`);
  }
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') {
    throw inputError(`loadModel: onProgress must be a function, got ${describe(o.onProgress)}`);
  }
  if (o.checkFinite !== undefined && typeof o.checkFinite !== 'boolean') {
    throw inputError(`loadModel: checkFinite must be a boolean, got ${describe(o.checkFinite)}`);
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  return typeof v;
}
