/**
 * Generation options: what a caller may set, their defaults, and their validation.
 * @module
 */
import type { MediaPolicy } from '../processor/media-policy.js';
import { readTemplateVariables, readTools, type ToolDefinition } from '../text/tool-messages.js';
import { checkArray, expected, guard, isInstance, optBoolean, readOptions } from '../validate.js';
import type { GenerationDefaults } from '../model/config.js';
import type { LoadOptions } from '../model/load.js';
import { readResponseFormat, type ResolvedResponseFormat, type ResponseFormat } from '../structured/response-format.js';

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
  /**
   * Whether special-token strings typed in user and tool text (`<|im_end|>`, `<|im_start|>system`, ...)
   * become control tokens. `true` is what transformers does, and the model's default unless
   * {@link LoadOptions.specialTokensInUserText} says otherwise; `false` tokenizes that text as the
   * plain characters it is, while the chat template's own special tokens still count. A server passing
   * on text from untrusted users should set `false`.
   */
  specialTokensInUserText?: boolean;
  /**
   * Structured output: `{ type: 'json_schema', schema }` makes the answer a JSON text valid against
   * the schema, `{ type: 'json_object' }` any JSON object, by constrained decoding (only tokens that
   * keep the text on the grammar can be drawn; the end token only once it is complete). A schema
   * keyword that cannot be guaranteed is E_UNSUPPORTED before anything runs. Default `{ type: 'text' }`.
   * The answer can still be cut short by `maxTokens` or a `stop` string (`finishReason: 'length'` / `'stop'`).
   */
  responseFormat?: ResponseFormat;
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
  /** Unset: the model's default. */
  specialTokensInUserText?: boolean;
  /** The request's media policy (RequestOptions.media), checked where it is resolved. */
  media?: MediaPolicy;
  /** RequestOptions.tools, checked; absent when none. */
  tools?: ToolDefinition[];
  /** RequestOptions.templateVariables, checked. */
  templateVariables?: Record<string, unknown>;
  /** The response format compiled; absent for free text. */
  responseFormat?: ResolvedResponseFormat;
}

const KEYS = [
  'maxTokens', 'doSample', 'temperature', 'topP', 'topK', 'minP', 'repetitionPenalty', 'seed', 'stop', 'eosTokenIds',
  'signal', 'specialTokensInUserText', 'media', 'tools', 'templateVariables', 'responseFormat',
] as const;

/** Most stop strings, and their longest length, accepted in one request. */
export const STOP_LIMITS = { count: 1024, length: 10_000 } as const;
/** Most end-of-sequence ids accepted in one request. */
export const MAX_EOS_IDS = 1024;

function finiteNumber(name: string, v: unknown, ok: (x: number) => boolean, want: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw expected(`generation options: ${name}`, want, v);
  return v;
}

function stopStrings(v: unknown): string[] {
  const where = 'generation options: stop';
  if (v === undefined) return [];
  if (typeof v === 'string') {
    if (v.length === 0 || v.length > STOP_LIMITS.length) throw expected(where, `a string of 1 to ${STOP_LIMITS.length} characters`, v);
    return [v];
  }
  const list = checkArray(where, v, 'a string or an array of strings');
  if (list.length > STOP_LIMITS.count) throw expected(where, `at most ${STOP_LIMITS.count} strings`, v);
  return guard(where, () =>
    list.map((s, i) => {
      if (typeof s !== 'string' || s.length === 0 || s.length > STOP_LIMITS.length) {
        throw expected(`${where}[${i}]`, `a string of 1 to ${STOP_LIMITS.length} characters`, s);
      }
      return s;
    }),
  );
}

function eosIds(v: unknown): number[] {
  const where = 'generation options: eosTokenIds';
  if (v === undefined) return [];
  const list = checkArray(where, v, 'an array of token ids');
  if (list.length > MAX_EOS_IDS) throw expected(where, `at most ${MAX_EOS_IDS} token ids`, v);
  return guard(where, () =>
    list.map((t, i) => {
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 0x7fffffff) {
        throw expected(`${where}[${i}]`, 'a token id (an integer >= 0)', t);
      }
      return t;
    }),
  );
}

/**
 * Checks the options (each read once; a throwing getter is E_INPUT) and fills in the defaults.
 * @internal
 */
export function resolveGenerateOptions(options: GenerateOptions | undefined, d: GenerationDefaults): ResolvedGenerateOptions {
  const o = readOptions('generation options', options, KEYS);
  const maxTokens =
    o.maxTokens === undefined
      ? (d.maxNewTokens ?? 512)
      : finiteNumber('maxTokens', o.maxTokens, (x) => Number.isSafeInteger(x) && x >= 1, 'a positive integer');
  const temperature =
    o.temperature === undefined ? d.temperature : finiteNumber('temperature', o.temperature, (x) => x >= 0, 'a number >= 0');
  const topP = o.topP === undefined ? d.topP : finiteNumber('topP', o.topP, (x) => x > 0 && x <= 1, 'a number in (0, 1]');
  const topK =
    o.topK === undefined ? d.topK : finiteNumber('topK', o.topK, (x) => Number.isInteger(x) && x >= 0 && x <= 0x7fffffff, 'an integer >= 0');
  const minP = o.minP === undefined ? 0 : finiteNumber('minP', o.minP, (x) => x >= 0 && x <= 1, 'a number in [0, 1]');
  const repetitionPenalty =
    o.repetitionPenalty === undefined
      ? d.repetitionPenalty
      : finiteNumber('repetitionPenalty', o.repetitionPenalty, (x) => x > 0, 'a number > 0');
  const doSampleOpt = optBoolean('generation options: doSample', o.doSample);
  const doSample = (doSampleOpt ?? d.doSample) && temperature > 0;
  const seed =
    o.seed === undefined
      ? Math.floor(Math.random() * 2 ** 32)
      : finiteNumber('seed', o.seed, (x) => Number.isSafeInteger(x) && x >= 0, 'a non-negative safe integer');
  const stop = stopStrings(o.stop);
  if (o.signal !== undefined && !isInstance(o.signal, AbortSignal)) throw expected('generation options: signal', 'an AbortSignal', o.signal);
  const eosTokenIds = eosIds(o.eosTokenIds);
  const specialTokensInUserText = optBoolean('generation options: specialTokensInUserText', o.specialTokensInUserText);
  const tools = readTools('generation options: tools', o.tools);
  const templateVariables = readTemplateVariables('generation options: templateVariables', o.templateVariables);
  const responseFormat = readResponseFormat('generation options: responseFormat', o.responseFormat);
  return {
    maxTokens, doSample, temperature, topP, topK, minP, repetitionPenalty, seed, stop, eosTokenIds,
    signal: o.signal as AbortSignal | undefined,
    ...(specialTokensInUserText !== undefined ? { specialTokensInUserText } : {}),
    ...(o.media !== undefined ? { media: o.media as MediaPolicy } : {}),
    ...(tools ? { tools } : {}),
    ...(templateVariables ? { templateVariables } : {}),
    ...(responseFormat ? { responseFormat } : {}),
  };
}
