/**
 * Token and memory budgets: a request too large for the configured limits is refused with
 * E_INPUT, naming the numbers and the option that would allow it, before any heavy work runs.
 * @module
 */
import { totalmem } from 'node:os';
import { inputError } from '../errors.js';
import { publicCall } from '../validate.js';
import type { ModelConfig } from './config.js';
import type { KvCacheDtype } from '../engine/engine.js';

/** Limits applied to every request; set through {@link LoadOptions}. */
export interface Budget {
  /** Most vision tokens (after merging) in one request. */
  maxVisualTokens: number;
  /** Most bytes one request may need for activations, KV cache and logits (an estimate). */
  maxMemoryBytes: number;
}

/** Conservative defaults: 16384 vision tokens, and a quarter of this machine's memory (at most 16 GiB). */
export function defaultBudget(): Budget {
  return publicCall('defaultBudget', arguments, () => defaultBudgetImpl());
}

/** {@link defaultBudget} without the public guard, for internal callers: what it throws passes through unchanged. */
export function defaultBudgetImpl(): Budget {
  return { maxVisualTokens: 16384, maxMemoryBytes: Math.min(16 * 2 ** 30, Math.floor(totalmem() / 4)) };
}

/** Token counts of a request, known before anything runs. */
export interface TokenEstimate {
  /** Vision tokens of all images (what replaces the image placeholders). */
  imageTokens: number;
  /** Vision tokens of all videos. */
  videoTokens: number;
  /** Text tokens (chat template included). */
  textTokens: number;
  /** Padded prompt length × rows. */
  promptTokens: number;
  /** Rows of the batch. */
  batchSize: number;
  /** Estimated peak bytes for this request with the given maxTokens. */
  memoryBytes: number;
}

/** KV cache bytes one token of a sequence takes: every layer's keys and values, stored as `kv`. @internal */
export function kvBytesPerToken(config: ModelConfig, kv: KvCacheDtype): number {
  const t = config.text;
  return t.layers * 2 * t.kvHeads * t.headDim * (kv === 'bf16' ? 2 : 4);
}

/** Rough peak memory of a request: vision activations, KV cache and logits, in bytes. @internal */
export function estimateMemory(config: ModelConfig, patches: number, batch: number, seq: number, maxTokens: number, kv: KvCacheDtype = 'f32'): number {
  const v = config.vision, t = config.text;
  // Vision: the residual stream, q|k|v, two scratch rows and the MLP's hidden layer per patch.
  const vision = patches * (6 * v.hiddenSize + 2 * v.intermediateSize) * 4;
  // Decoder: KV cache for prompt + answer, and one prefill's activations.
  const cache = kvBytesPerToken(config, kv) * batch * (seq + maxTokens);
  const act = batch * seq * (4 * t.hiddenSize + 2 * (t.heads + 2 * t.kvHeads) * t.headDim + 2 * t.intermediateSize) * 4;
  const logits = batch * t.vocabSize * 4;
  return vision + cache + act + logits;
}

/** Throws E_INPUT when the estimate is over the budget. @internal */
export function checkBudget(e: TokenEstimate, budget: Budget): void {
  const visual = e.imageTokens + e.videoTokens;
  if (visual > budget.maxVisualTokens) {
    throw inputError(
      `the request has ${visual} vision tokens, over the budget of ${budget.maxVisualTokens}; ` +
        'lower the images\' resolution (maxPixels) or raise LoadOptions.maxVisualTokens',
    );
  }
  if (e.memoryBytes > budget.maxMemoryBytes) {
    const mib = (n: number) => `${Math.ceil(n / 2 ** 20)} MiB`;
    throw inputError(
      `the request needs about ${mib(e.memoryBytes)}, over the budget of ${mib(budget.maxMemoryBytes)}; ` +
        'use smaller images, fewer tokens (maxTokens) or raise LoadOptions.maxMemoryBytes',
    );
  }
}
