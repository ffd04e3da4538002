/**
 * Generation options: what a caller may set, their defaults, and their validation.
 * @module
 */
import { inputError } from '../errors.js';
import type { GenerationDefaults } from '../model/config.js';

/** Options of `model.chat()` and `model.stream()`. */
export interface GenerateOptions {
  /** Most new tokens to generate. Defaults to generation_config.json's `max_new_tokens`, else 512. */
  maxTokens?: number;
  /**
   * Sample instead of taking the most likely token. Defaults to generation_config.json's
   * `do_sample` (the official Qwen checkpoints set it). `temperature: 0` forces greedy.
   */
  doSample?: boolean;
  /** Softmax temperature (> 0 samples, 0 = greedy). Defaults to the checkpoint's. */
  temperature?: number;
  /** Nucleus sampling mass in (0, 1]. Defaults to the checkpoint's. */
  topP?: number;
  /** Keep only the k most likely tokens (0 = off). Defaults to the checkpoint's. */
  topK?: number;
  /** Keep tokens with probability >= minP × the best token's (0 = off). Default 0. */
  minP?: number;
  /** transformers' repetition penalty (1 = off). Defaults to the checkpoint's. */
  repetitionPenalty?: number;
  /** Seed of the sampling RNG: the same seed, prompt and options reproduce a run. Default: random. */
  seed?: number;
  /** Generation stops when the text contains one of these; the stop string is not returned. */
  stop?: string | readonly string[];
  /** Token ids that end generation. Defaults to generation_config.json's `eos_token_id`. */
  eosTokenIds?: readonly number[];
  /**
   * Stops generation at the next token. `chat()` then resolves with the text so far and
   * `finishReason: 'abort'`; `stream()` ends after the last chunk. Neither rejects.
   */
  signal?: AbortSignal;
}

/** The options after defaults and validation. @internal */
export interface ResolvedGenerateOptions {
  maxTokens: number;
  doSample: boolean;
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  repetitionPenalty: number;
  seed: number;
  stop: string[];
  /** Empty: the model's defaults. */
  eosTokenIds: number[];
  signal?: AbortSignal;
}

function finiteNumber(name: string, v: unknown, ok: (x: number) => boolean, expected: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
    throw inputError(`Expected ${expected} for ${name} but received ${String(v)} of type ${typeof v}`);
  }
  return v;
}

/** @internal */
export function resolveGenerateOptions(o: GenerateOptions = {}, d: GenerationDefaults): ResolvedGenerateOptions {
  if (o === null || typeof o !== 'object') throw inputError('generation options must be an object');
  const maxTokens =
    o.maxTokens === undefined
      ? (d.maxNewTokens ?? 512)
      : finiteNumber('maxTokens', o.maxTokens, (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
  const temperature =
    o.temperature === undefined ? d.temperature : finiteNumber('temperature', o.temperature, (x) => x >= 0, 'a number >= 0');
  const topP = o.topP === undefined ? d.topP : finiteNumber('topP', o.topP, (x) => x > 0 && x <= 1, 'a number in (0, 1]');
  const topK = o.topK === undefined ? d.topK : finiteNumber('topK', o.topK, (x) => Number.isInteger(x) && x >= 0, 'an integer >= 0');
  const minP = o.minP === undefined ? 0 : finiteNumber('minP', o.minP, (x) => x >= 0 && x <= 1, 'a number in [0, 1]');
  const repetitionPenalty =
    o.repetitionPenalty === undefined
      ? d.repetitionPenalty
      : finiteNumber('repetitionPenalty', o.repetitionPenalty, (x) => x > 0, 'a number > 0');
  if (o.doSample !== undefined && typeof o.doSample !== 'boolean') throw inputError('doSample must be a boolean');
  const doSample = (o.doSample ?? d.doSample) && temperature > 0;
  const seed =
    o.seed === undefined
      ? Math.floor(Math.random() * 2 ** 32)
      : finiteNumber('seed', o.seed, (x) => Number.isSafeInteger(x) && x >= 0, 'a non-negative safe integer');
  const stopList = o.stop === undefined ? [] : typeof o.stop === 'string' ? [o.stop] : [...o.stop];
  for (const s of stopList) {
    if (typeof s !== 'string' || s.length === 0) throw inputError('stop strings must be non-empty strings');
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw inputError('signal must be an AbortSignal');
  const eosTokenIds = o.eosTokenIds === undefined ? [] : [...o.eosTokenIds];
  if (!Array.isArray(o.eosTokenIds ?? []) || eosTokenIds.some((t) => !Number.isSafeInteger(t) || t < 0)) {
    throw inputError('eosTokenIds must be an array of token ids');
  }
  return { maxTokens, doSample, temperature, topP, topK, minP, repetitionPenalty, seed, stop: stopList, eosTokenIds, signal: o.signal };
}
