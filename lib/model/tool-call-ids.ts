/**
 * Ids of the tool calls chat() returns. They are derived from the request (sampling seed, batch
 * row, prompt) and the call itself, not drawn at random, so that a seeded run reproduces its result
 * exactly, ids included; a different prompt (the next turn of a conversation) gives different ids.
 * @internal
 * @module
 */
import { createHash } from 'node:crypto';

/** The id maker of one row's reply (see ToolCallParseOptions.makeId): `call_` and 24 hex digits. */
export function toolCallIds(seed: number, row: number, prompt: string): (index: number, raw: string) => string {
  let base: ReturnType<typeof createHash> | null = null;
  return (index, raw) => {
    // The prompt is hashed once per reply, however many calls it makes.
    base ??= createHash('sha256').update(`${seed}\0${row}\0`).update(prompt);
    return `call_${base.copy().update(`\0${index}\0${raw}`).digest('hex').slice(0, 24)}`;
  };
}
