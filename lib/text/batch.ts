/**
 * Batching of token id rows: padding to a common length with an attention mask, as the tokenizer call inside
 * the Qwen-VL processors does with `padding=True` (pad to the longest row). Generation uses left padding so
 * every row's last prompt token sits at the same position.
 * @module
 */
import { inputError } from '../errors.js';
import { publicCall } from '../validate.js';
import type { QwenTokenizer } from './tokenizer.js';

/** A padded batch, row-major `[batchSize, seqLength]`. */
export interface PaddedBatch {
  batchSize: number;
  seqLength: number;
  /** Token ids, padding positions hold the pad id. */
  inputIds: Int32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Int32Array;
  /** Number of real tokens of each row. */
  lengths: number[];
}

/** Options of {@link padBatch}. */
export interface PadOptions {
  /** Id written into padding positions (the tokenizer's pad token, `<|endoftext|>` for Qwen). */
  padId: number;
  /** Which end gets the padding. Default 'left'. */
  side?: 'left' | 'right';
  /** Pad to at least this length (default: the longest row). */
  minLength?: number;
}

/** Pads rows of ids to the longest row (or `minLength`) and builds the attention mask. */
export function padBatch(rows: readonly ArrayLike<number>[], options: PadOptions): PaddedBatch {
  return publicCall('padBatch', arguments, () => padBatchImpl(rows, options));
}

/** {@link padBatch} without the public guard, for internal callers: what it throws passes through unchanged. */
export function padBatchImpl(rows: readonly ArrayLike<number>[], options: PadOptions): PaddedBatch {
  const { padId } = options;
  const side = options.side ?? 'left';
  if (!Number.isInteger(padId) || padId < 0) throw inputError(`padBatch: padId must be a non-negative integer, got ${padId}`);
  if (side !== 'left' && side !== 'right') throw inputError(`padBatch: side must be "left" or "right", got ${String(side)}`);
  if (rows.length === 0) throw inputError('padBatch: the batch is empty');
  const lengths = rows.map((r) => r.length);
  const seqLength = Math.max(options.minLength ?? 0, ...lengths);
  const inputIds = new Int32Array(rows.length * seqLength).fill(padId);
  const attentionMask = new Int32Array(rows.length * seqLength);
  rows.forEach((row, b) => {
    const start = b * seqLength + (side === 'left' ? seqLength - row.length : 0);
    for (let i = 0; i < row.length; i++) {
      const id = row[i];
      if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) throw inputError(`padBatch: rows[${b}][${i}] = ${id} is not a token id`);
      inputIds[start + i] = id;
      attentionMask[start + i] = 1;
    }
  });
  return { batchSize: rows.length, seqLength, inputIds, attentionMask, lengths };
}

/** The ids of row `b` of a padded batch, padding included. */
export function batchRow(batch: PaddedBatch, b: number): Int32Array {
  return publicCall('batchRow', arguments, () => {
    if (!Number.isInteger(b) || b < 0 || b >= batch.batchSize) throw inputError(`batchRow: row ${b} out of range [0, ${batch.batchSize})`);
    return batch.inputIds.subarray(b * batch.seqLength, (b + 1) * batch.seqLength);
  });
}

/**
 * Tokenizes prompts (already expanded, see `expandVisionPlaceholders`) and pads them with the tokenizer's pad id.
 * `side` defaults to 'left' (what the Qwen-VL generation path needs; the reference fixtures used it).
 */
export function encodeBatch(
  tokenizer: QwenTokenizer,
  prompts: readonly string[],
  options: { side?: 'left' | 'right'; padId?: number } = {},
): PaddedBatch {
  return publicCall('encodeBatch', arguments, () => encodeBatchImpl(tokenizer, prompts, options));
}

/** {@link encodeBatch} without the public guard, for internal callers: what it throws passes through unchanged. */
function encodeBatchImpl(
  tokenizer: QwenTokenizer,
  prompts: readonly string[],
  options: { side?: 'left' | 'right'; padId?: number } = {},
): PaddedBatch {
  const padId = options.padId ?? tokenizer.specialIds.pad ?? tokenizer.specialIds.endOfText;
  if (padId === undefined) throw inputError('encodeBatch: the tokenizer has no pad token; pass padId');
  return padBatchImpl(
    prompts.map((p) => tokenizer.encode(p)),
    { padId, side: options.side ?? 'left' },
  );
}
