/**
 * The checked copy of {@link LoadOptions}: each option read once (a throwing getter is E_INPUT) and
 * checked for its type and range before loading starts.
 * @internal
 * @module
 */
import { expected, optBoolean, optInteger, readOptions } from '../validate.js';
import type { LoadOptions } from './load.js';
import { PLACEMENT_CHOICES } from './placement.js';

const KEYS = [
  'threads', 'device', 'onProgress', 'contextLength', 'maxInputPixels', 'maxVisualTokens', 'maxMemoryBytes',
  'specialTokensInUserText', 'checkFinite', 'media', 'hub', 'weights', 'visionWeights', 'weightCache', 'precision', 'engine', 'placement',
] as const;

/** The values of {@link LoadOptions.weights} and {@link LoadOptions.visionWeights}. */
export const WEIGHT_CHOICES = ['bf16', 'q8', 'q4', 'auto'] as const;

const ENGINE_KEYS = ['maxRunning', 'maxQueue', 'tokenBudget', 'kvMemoryBytes', 'visionCacheBytes', 'prefixCacheBytes', 'kvCache'] as const;

/** The values of `EngineOptions.kvCache`. */
export const KV_CACHE_CHOICES = ['f32', 'bf16'] as const;

/** Most compute threads accepted. */
export const MAX_THREADS = 1024;

/** Throws E_INPUT naming the first bad option; returns a plain copy of the options. */
export function checkLoadOptions(options: unknown): LoadOptions {
  const o = readOptions('loadModel: options', options, KEYS);
  const w = (k: string) => `loadModel: options.${k}`;
  optInteger(w('threads'), o.threads, 1, MAX_THREADS);
  if (o.device !== undefined && o.device !== 'cpu' && o.device !== 'auto') throw expected(w('device'), "'cpu' or 'auto'", o.device);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw expected(w('onProgress'), 'a function', o.onProgress);
  optInteger(w('contextLength'), o.contextLength, 2, 2 ** 31 - 1);
  optInteger(w('maxInputPixels'), o.maxInputPixels, 1);
  optInteger(w('maxVisualTokens'), o.maxVisualTokens, 1);
  optInteger(w('maxMemoryBytes'), o.maxMemoryBytes, 1);
  optBoolean(w('specialTokensInUserText'), o.specialTokensInUserText);
  optBoolean(w('checkFinite'), o.checkFinite);
  if (o.weightCache !== undefined && typeof o.weightCache !== 'boolean' && (typeof o.weightCache !== 'string' || o.weightCache === '')) {
    throw expected(w('weightCache'), 'a boolean or a folder path', o.weightCache);
  }
  for (const k of ['weights', 'visionWeights'] as const) {
    if (o[k] !== undefined && !(WEIGHT_CHOICES as readonly unknown[]).includes(o[k])) {
      throw expected(w(k), "'bf16', 'q8', 'q4' or 'auto'", o[k]);
    }
  }
  if (o.precision !== undefined && o.precision !== 'exact' && o.precision !== 'fast') throw expected(w('precision'), "'exact' or 'fast'", o.precision);
  if (o.placement !== undefined && !(PLACEMENT_CHOICES as readonly unknown[]).includes(o.placement)) {
    throw expected(w('placement'), "'auto', 'mmap', 'owned' or 'huge'", o.placement);
  }
  // `media` is checked field by field where it is resolved (resolveMediaPolicy), `hub` where a Hub id is pulled (hubSettings).
  if (o.hub !== undefined && (o.hub === null || typeof o.hub !== 'object')) throw expected(w('hub'), 'an options object', o.hub);
  if (o.engine !== undefined) {
    const e = readOptions(w('engine'), o.engine, ENGINE_KEYS);
    const we = (k: string) => `loadModel: options.engine.${k}`;
    optInteger(we('maxRunning'), e.maxRunning, 1);
    optInteger(we('maxQueue'), e.maxQueue, 0);
    optInteger(we('tokenBudget'), e.tokenBudget, 1);
    optInteger(we('kvMemoryBytes'), e.kvMemoryBytes, 1);
    optInteger(we('visionCacheBytes'), e.visionCacheBytes, 0);
    optInteger(we('prefixCacheBytes'), e.prefixCacheBytes, 0);
    if (e.kvCache !== undefined && !(KV_CACHE_CHOICES as readonly unknown[]).includes(e.kvCache)) {
      throw expected(we('kvCache'), "'f32' or 'bf16'", e.kvCache);
    }
    o.engine = e;
  }
  return o as LoadOptions;
}
