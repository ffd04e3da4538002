/**
 * Scripted decoding for the tests of replies the random-weight fixtures never write (thinking
 * blocks, tool calls). A test file mocks lib/model/generate.js so that `tokenLoop` is a vi.fn
 * around the real one (vi.mock is hoisted per file, so that part stays in the file) and installs
 * `scriptedLoop(realLoop, rows)` as its implementation: the real token loop runs (prefill, decode
 * steps, stopping) and each step's token is replaced by the next token of the reply under test.
 * Everything after it (detokenizing, stop strings, the reply parser, finish reasons) is what a
 * real reply goes through.
 */
import type { tokenLoop } from '../../lib/model/generate.js';
import type { ToolDefinition } from '../../lib/index.js';

export type TokenLoop = typeof tokenLoop;

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
 * A token loop that runs `real` and emits `rows[b]` for batch row b in place of the model's
 * tokens (-1 for rows already stopped or past their script). When the model ends its own rows
 * first (its end-of-sequence or maxTokens), the script goes on up to maxTokens.
 */
export function scriptedLoop(real: TokenLoop, rows: number[][]): TokenLoop {
  return async function* (ctx, p, o, isStopped) {
    let i = 0;
    const left = () => rows.some((r, b) => !isStopped(b) && i < r.length);
    const next = () => {
      const tokens = new Int32Array(p.batchSize).fill(-1);
      const eos = new Array<boolean>(p.batchSize).fill(false);
      rows.forEach((r, b) => {
        if (isStopped(b) || i >= r.length) return;
        tokens[b] = r[i];
        eos[b] = ctx.eosTokenIds.includes(r[i]);
      });
      i++;
      return { tokens, eos };
    };
    for await (const _ of real(ctx, p, o, isStopped)) {
      yield next();
      if (!left()) return;
    }
    while (left() && i < o.maxTokens) yield next();
  };
}
