/**
 * Checks of the arguments of {@link Model}'s low-level methods: their options objects, and
 * {@link PreparedInputs} handed back to `logits()` (which a caller may have built or changed by hand).
 * @internal
 * @module
 */
import { inputError } from '../errors.js';
import { expected, guard, isInstance, optBoolean, optInteger, readOptions } from '../validate.js';
import type { MediaPolicy } from '../processor/media-policy.js';
import { readTemplateVariables, readTools } from '../text/tool-messages.js';
import type { EstimateOptions, PrepareOptions } from './model.js';
import type { ModelConfig } from './config.js';
import type { PreparedInputs } from './inputs.js';

/** Options of prepare(). */
export function readPrepareOptions(where: string, options: unknown): PrepareOptions {
  const o = readOptions(`${where}: options`, options, ['specialTokensInUserText', 'media', 'tools', 'templateVariables']);
  const v = optBoolean(`${where}: options.specialTokensInUserText`, o.specialTokensInUserText);
  const tools = readTools(`${where}: options.tools`, o.tools);
  const templateVariables = readTemplateVariables(`${where}: options.templateVariables`, o.templateVariables);
  // `media` is checked field by field where it is resolved (resolveMediaPolicy).
  return {
    ...(v !== undefined ? { specialTokensInUserText: v } : {}),
    ...(o.media !== undefined ? { media: o.media as MediaPolicy } : {}),
    ...(tools ? { tools } : {}),
    ...(templateVariables ? { templateVariables } : {}),
  };
}

/** Options of estimateTokens(). */
export function readEstimateOptions(where: string, options: unknown): EstimateOptions {
  const o = readOptions(`${where}: options`, options, ['maxTokens']);
  const maxTokens = optInteger(`${where}: options.maxTokens`, o.maxTokens, 0);
  return { ...readPrepareOptions(where, options), ...(maxTokens !== undefined ? { maxTokens } : {}) };
}

/** Options of logits(). */
export function readLogitsOptions(where: string, options: unknown): { all: boolean; signal?: AbortSignal } {
  const o = readOptions(`${where}: options`, options, ['all', 'signal']);
  if (o.signal !== undefined && !isInstance(o.signal, AbortSignal)) throw expected(`${where}: options.signal`, 'an AbortSignal', o.signal);
  return { all: optBoolean(`${where}: options.all`, o.all) === true, ...(o.signal !== undefined ? { signal: o.signal as AbortSignal } : {}) };
}

function int32Array(where: string, v: unknown, length: number): void {
  if (!(v instanceof Int32Array)) throw expected(where, 'an Int32Array', v);
  if (v.length !== length) throw inputError(`${where}: expected ${length} elements, got ${v.length}`);
}

function grids(where: string, v: unknown): number {
  if (!Array.isArray(v)) throw expected(where, 'an array of [t, h, w] grids', v);
  let patches = 0;
  v.forEach((g, i) => {
    if (!Array.isArray(g) || g.length !== 3 || !g.every((x) => Number.isSafeInteger(x) && x > 0)) {
      throw expected(`${where}[${i}]`, 'three positive integers [t, h, w]', g);
    }
    patches += g[0] * g[1] * g[2];
  });
  return patches;
}

function pixels(where: string, v: unknown, patches: number, dim: unknown): void {
  if (patches === 0) {
    if (v !== null) throw expected(where, 'null (no grids)', v);
    return;
  }
  if (!(v instanceof Float32Array)) throw expected(where, 'a Float32Array', v);
  if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 1) throw expected(`${where} patch size`, 'a positive integer', dim);
  if (v.length !== patches * dim) throw inputError(`${where}: expected ${patches} × ${dim} values for the grids, got ${v.length}`);
}

/** Throws E_INPUT unless `p` is consistent {@link PreparedInputs} for this model. */
export function checkPrepared(where: string, p: unknown, config: ModelConfig): asserts p is PreparedInputs {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) throw expected(where, 'the result of model.prepare()', p);
  guard(where, () => {
    const q = p as Record<string, unknown>;
    const B = q.batchSize;
    const S = q.seqLength;
    if (typeof B !== 'number' || !Number.isSafeInteger(B) || B < 1) throw expected(`${where}.batchSize`, 'a positive integer', B);
    if (typeof S !== 'number' || !Number.isSafeInteger(S) || S < 1) throw expected(`${where}.seqLength`, 'a positive integer', S);
    int32Array(`${where}.inputIds`, q.inputIds, B * S);
    int32Array(`${where}.attentionMask`, q.attentionMask, B * S);
    int32Array(`${where}.positionIds`, q.positionIds, 3 * B * S);
    const vocab = config.text.vocabSize;
    const ids = q.inputIds as Int32Array;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= vocab) throw inputError(`${where}.inputIds[${i}]: ${ids[i]} is not a token id of this model (vocabulary ${vocab})`);
    }
    for (const key of ['padding', 'ropeDeltas'] as const) {
      const v = q[key];
      if (!Array.isArray(v) || v.length !== B || !v.every((x) => Number.isSafeInteger(x))) {
        throw expected(`${where}.${key}`, `an array of ${B} integers`, v);
      }
    }
    if (!(q.padding as number[]).every((x) => x >= 0 && x < S)) throw inputError(`${where}.padding: each row needs 0 <= padding < ${S}`);
    pixels(`${where}.pixelValues`, q.pixelValues, grids(`${where}.imageGridThw`, q.imageGridThw), q.patchDim);
    pixels(`${where}.pixelValuesVideos`, q.pixelValuesVideos, grids(`${where}.videoGridThw`, q.videoGridThw), q.videoPatchDim);
    const ts = q.secondPerGridTs;
    if (ts !== undefined && (!Array.isArray(ts) || !ts.every((x) => typeof x === 'number' && Number.isFinite(x)))) {
      throw expected(`${where}.secondPerGridTs`, 'an array of numbers', ts);
    }
  });
}
