// The generation path samples natively: each session row keeps its sampler settings and its
// repetition history in native memory, and a decode step returns token ids instead of logits.
// Its tokens must be exactly those of the per-token path it replaced (logits copied to JS, then
// sampleToken with the whole history copied back each token), for every sampler setting; and
// finished rows leave the step without changing the other rows' tokens.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadModel, type Model } from '../../lib/index.js';
import { resolveGenerateOptions, type GenerateOptions } from '../../lib/generate/options.js';
import { RequestCancel } from '../../lib/model/cancel.js';
import { prefillArgs, tokenLoop, type LoopContext } from '../../lib/model/generate.js';
import type { PreparedInputs } from '../../lib/model/inputs.js';
import { native, type NativeForwardArgs, type NativeHandle } from '../../lib/native/binding.js';
import { checkpointDir } from '../helpers/fixtures.js';

let model: Model;
let ctx: LoopContext;
let p: PreparedInputs;

beforeAll(async () => {
  model = await loadModel(checkpointDir('qwen2-vl'), { threads: 1 });
  const internals = model as unknown as { loopContext(c: RequestCancel): LoopContext; generationDefaults: Parameters<typeof resolveGenerateOptions>[1] };
  ctx = internals.loopContext(new RequestCancel('test'));
  // Two rows of different lengths: the shorter one is left padded.
  p = await model.prepare([
    [{ role: 'user', content: 'a short one' }],
    [{ role: 'user', content: 'a somewhat longer prompt that the batch pads the other row to' }],
  ]);
});
afterAll(() => model?.dispose());

const resolve = (o: GenerateOptions) =>
  resolveGenerateOptions(o, (model as unknown as { generationDefaults: Parameters<typeof resolveGenerateOptions>[1] }).generationDefaults);

/** The replaced path: logits to JS, the whole history copied to sampleToken every token, pad tokens for finished rows. */
async function perTokenReference(o: ReturnType<typeof resolve>, steps: number): Promise<number[][]> {
  const B = p.batchSize, S = p.seqLength;
  const session = native.modelNewSession(ctx.handle, B, S + steps);
  try {
    let logits = new Float32Array((await native.sessionForward(session, prefillArgs(ctx, p, null, 'last'))).logits!.data);
    const V = logits.length / B;
    const seen = Array.from({ length: B }, (_, b) => Array.from(p.inputIds.subarray(b * S, (b + 1) * S)));
    const rng = native.samplingRng(o.seed);
    const params = { doSample: o.doSample, temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP, repetitionPenalty: o.repetitionPenalty };
    const out: number[][] = Array.from({ length: B }, () => []);
    const done = new Array<boolean>(B).fill(false);
    for (let step = 0; step < steps; step++) {
      const ids = new Int32Array(B).fill(ctx.padTokenId);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const tok = native.sampleToken(logits.subarray(b * V, (b + 1) * V), params, Int32Array.from(seen[b]), rng);
        seen[b].push(tok);
        out[b].push(tok);
        ids[b] = tok;
        if (ctx.eosTokenIds.includes(tok)) done[b] = true;
      }
      if (done.every(Boolean)) break;
      const positions = new Int32Array(3 * B);
      for (let b = 0; b < B; b++) positions[b] = positions[B + b] = positions[2 * B + b] = S + step + p.ropeDeltas[b];
      const next = await native.sessionForward(session, { ids, steps: 1, positions, logits: 'last' });
      logits = new Float32Array(next.logits!.data);
    }
    return out;
  } finally {
    native.disposeHandle(session);
  }
}

async function loopTokens(o: ReturnType<typeof resolve>, isStopped: (row: number, step: number) => boolean = () => false): Promise<number[][]> {
  const out: number[][] = Array.from({ length: p.batchSize }, () => []);
  let step = 0;
  for await (const s of tokenLoop(ctx, p, o, (b) => isStopped(b, step))) {
    s.tokens.forEach((t, b) => t >= 0 && out[b].push(t));
    step++;
  }
  return out;
}

const STEPS = 10;
const base = { maxTokens: STEPS };

describe('native sampling on the generation path', () => {
  const settings: [string, GenerateOptions][] = [
    ['greedy', { doSample: false }],
    ['greedy + repetition penalty', { doSample: false, repetitionPenalty: 1.5 }],
    ['temperature', { doSample: true, temperature: 1.3, topK: 0, topP: 1, seed: 7 }],
    ['top-k', { doSample: true, temperature: 1, topK: 5, topP: 1, seed: 11 }],
    ['top-p', { doSample: true, temperature: 0.9, topK: 0, topP: 0.8, seed: 3 }],
    ['min-p', { doSample: true, temperature: 1.1, topK: 0, topP: 1, minP: 0.05, seed: 5 }],
    ['all together + penalty', { doSample: true, temperature: 0.7, topK: 40, topP: 0.95, minP: 0.01, repetitionPenalty: 1.2, seed: 42 }],
  ];
  for (const [name, opts] of settings) {
    it(`${name}: the same tokens as the per-token path`, async () => {
      const o = resolve({ ...base, ...opts });
      const want = await perTokenReference(o, STEPS);
      expect(await loopTokens(o)).toEqual(want);
    });
  }

  it('a different seed gives a different sampled run (the seed reaches the native sampler)', async () => {
    const a = await loopTokens(resolve({ ...base, doSample: true, temperature: 1.5, topK: 0, topP: 1, seed: 1 }));
    const b = await loopTokens(resolve({ ...base, doSample: true, temperature: 1.5, topK: 0, topP: 1, seed: 2 }));
    expect(a).not.toEqual(b);
  });

  it('decode steps return token ids, never logits', async () => {
    const spy = vi.spyOn(native, 'sessionForward');
    try {
      await loopTokens(resolve({ ...base, doSample: false }));
      const results = await Promise.all(spy.mock.results.map((r) => r.value as ReturnType<typeof native.sessionForward>));
      expect(results.length).toBe(STEPS);
      for (const r of results) {
        expect(r.logits).toBeUndefined();
        expect(r.tokens).toBeInstanceOf(Int32Array);
      }
    } finally {
      spy.mockRestore();
    }
  });
});

describe('finished rows stop computing', () => {
  it('a row stopped early leaves the step; the other row gets the same tokens', async () => {
    const o = resolve({ ...base, doSample: true, temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1.1, seed: 9 });
    const full = await loopTokens(o);
    const spy = vi.spyOn(native, 'sessionForward');
    const freed = vi.spyOn(native, 'sessionFreeSequence');
    let early: number[][];
    try {
      early = await loopTokens(o, (row, step) => row === 0 && step >= 2);
      // The stopped row's KV slot went back to the pool as soon as it stopped, row 1's when it
      // reached maxTokens.
      expect(freed.mock.calls.map(([, id]) => id)).toEqual([0, 1]);
      const rows = spy.mock.calls.map(([, a]) => (a as NativeForwardArgs).rows?.length ?? p.batchSize);
      // Row 0 stops after its second token: the prefill and the first decode step run both rows,
      // every later step only row 1.
      expect(rows).toEqual([2, 2, ...new Array<number>(STEPS - 2).fill(1)]);
    } finally {
      spy.mockRestore();
      freed.mockRestore();
    }
    expect(early[0]).toEqual(full[0].slice(0, 2));
    // Row 0 draws from the shared RNG only while it runs (as in the per-token path), so a sampled
    // row 1 matches the full run up to the stop; a greedy one matches throughout.
    expect(early[1].slice(0, 2)).toEqual(full[1].slice(0, 2));
    expect(early[1]).toHaveLength(STEPS);
    const greedy = resolve({ ...base, doSample: false, repetitionPenalty: 1.3 });
    const g = await loopTokens(greedy);
    const gEarly = await loopTokens(greedy, (row, step) => row === 0 && step >= 1);
    expect(gEarly[1]).toEqual(g[1]);
    expect(gEarly[0]).toEqual(g[0].slice(0, 1));
  });

  it('a step over some rows computes only those: the others keep their cache length', async () => {
    const B = p.batchSize, S = p.seqLength;
    const run = async (session: NativeHandle, rows: number[]) => {
      const positions = new Int32Array(3 * rows.length);
      rows.forEach((b, i) => (positions[i] = positions[rows.length + i] = positions[2 * rows.length + i] = S + p.ropeDeltas[b]));
      return native.sessionForward(session, { ids: new Int32Array(rows.length).fill(100), steps: 1, positions, rows: Int32Array.from(rows), logits: 'last' });
    };
    const a = native.modelNewSession(ctx.handle, B, S + 1);
    const b = native.modelNewSession(ctx.handle, B, S + 1);
    try {
      await native.sessionForward(a, prefillArgs(ctx, p, null, 'last'));
      await native.sessionForward(b, prefillArgs(ctx, p, null, 'last'));
      const both = new Float32Array((await run(a, [0, 1])).logits!.data);
      const one = new Float32Array((await run(b, [1])).logits!.data);
      expect(native.sessionLengths(b)).toEqual([S, S + 1]);
      expect(native.sessionStats(b)).toEqual({ forwards: 2, rowsComputed: 3 });
      const V = one.length;
      let diff = 0;
      for (let i = 0; i < V; i++) diff = Math.max(diff, Math.abs(one[i] - both[V + i]));
      expect(diff).toBeLessThan(1e-4);
      await expect(run(b, [1, 1])).rejects.toMatchObject({ code: 'E_INPUT' });
      await expect(run(b, [2])).rejects.toMatchObject({ code: 'E_INPUT' });
      expect(() => native.sessionForward(b, { ids: new Int32Array(1), steps: 1, positions: new Int32Array(3), rows: Int32Array.of(0), logits: 'sample' })).toThrow(
        /needs sessionSampling/,
      );
    } finally {
      native.disposeHandle(a);
      native.disposeHandle(b);
    }
  });
});
