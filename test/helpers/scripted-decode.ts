/**
 * Scripted decoding for the tests of replies the random-weight fixtures never write (thinking
 * blocks, tool calls). A test file mocks lib/model/generate.js so that `runOnEngine` is a vi.fn
 * around the real one (vi.mock is hoisted per file, so that part stays in the file) and installs
 * `scriptedRun(realRun, rows)` as its implementation: the real engine run goes on (prefill, decode
 * steps, stopping) and each step's token is replaced by the next token of the reply under test.
 * Everything after it (detokenizing, stop strings, the reply parser, finish reasons) is what a
 * real reply goes through.
 */
import type { runOnEngine } from '../../lib/model/generate.js';
import type { ToolDefinition } from '../../lib/index.js';

export type RunOnEngine = typeof runOnEngine;

/** The fixtures' `<|im_end|>` token id (an end-of-sequence token of every chat template here). */
export const IM_END = 151645;

/** A one-function tool, `get_weather(city)`, for the tool-call tests. */
export const WEATHER: ToolDefinition = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

/**
 * A run of the engine that runs `real` (queue, vision stage, prefill and decode steps in the shared
 * batch) and hands `rows[b]` to batch row b in place of the model's tokens; a row ends at its
 * script's end, an end-of-sequence token of the script, or when the caller ends it. When the model
 * ends its own rows first (its end-of-sequence or maxTokens), the script goes on up to maxTokens.
 */
export function scriptedRun(real: RunOnEngine, rows: number[][]): RunOnEngine {
  return async (ctx, engine, p, o, onToken) => {
    const given = rows.map(() => 0);
    const ended = rows.map(() => false);
    const feed = (b: number): boolean => {
      const r = rows[b] ?? [];
      if (ended[b] || given[b] >= r.length || given[b] >= o.maxTokens) return (ended[b] = true);
      const tok = r[given[b]++];
      const eos = ctx.eosTokenIds.includes(tok);
      ended[b] = onToken(b, tok, eos) === true || eos || given[b] >= r.length;
      return ended[b];
    };
    await real(ctx, engine, p, o, (b) => feed(b));
    for (let b = 0; b < rows.length; b++) while (!feed(b));
  };
}
