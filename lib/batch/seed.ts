/**
 * Per-request seeds of a batch run with `--seed`: derived from the global seed and the request's
 * custom_id, never its position, so a resumed, reordered or differently parallel run samples each
 * request the same way.
 * @internal
 * @module
 */
import { createHash } from 'node:crypto';

/** A seed in [0, 2^48) from sha256 over the global seed and the custom_id. @internal */
export function requestSeed(globalSeed: number, customId: string): number {
  const h = createHash('sha256').update(`qwenvl-batch-seed\0${globalSeed}\0`).update(customId, 'utf8').digest();
  return h.readUIntBE(0, 6);
}
