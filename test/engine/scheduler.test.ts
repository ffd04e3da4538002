// The scheduler (lib/engine/scheduler.ts): the one generation loop. A step takes every running
// sequence's decode token plus prefill chunks under a token budget; a prompt longer than the budget
// is prefilled over several steps with the tokens of the one-shot prefill; sequences join a
// running loop and leave it (finish, stop, cancel) with their KV slots freed at once, without
// changing the others' tokens.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Scheduler, type Sequence } from '../../lib/engine/scheduler.js';
import { loadModel, type Model } from '../../lib/index.js';
import { resolveGenerateOptions, type GenerateOptions, type ResolvedGenerateOptions } from '../../lib/generate/options.js';
import { RequestCancel } from '../../lib/model/cancel.js';
import { encodeFeatures, promptGroup, tokenLoop, type LoopContext } from '../../lib/model/generate.js';
import type { PreparedInputs } from '../../lib/model/inputs.js';
import { native, type NativeForwardArgs } from '../../lib/native/binding.js';
import { checkpointDir, fixtureDir } from '../helpers/fixtures.js';

type Internals = { loopContext(c: RequestCancel): LoopContext; generationDefaults: Parameters<typeof resolveGenerateOptions>[1] };

interface Loaded {
  model: Model;
  ctx: LoopContext;
  resolve(o: GenerateOptions): ResolvedGenerateOptions;
}

async function load(family: string): Promise<Loaded> {
  const model = await loadModel(checkpointDir(family), { threads: 1 });
  const internals = model as unknown as Internals;
  return {
    model,
    ctx: internals.loopContext(new RequestCancel('test')),
    resolve: (o) => resolveGenerateOptions(o, internals.generationDefaults),
  };
}

let q2: Loaded;
let q3: Loaded;
beforeAll(async () => {
  q2 = await load('qwen2-vl');
  q3 = await load('qwen3-vl');
});
afterAll(() => {
  q2?.model.dispose();
  q3?.model.dispose();
});

const image = (family: string) => join(fixtureDir(family), 'inputs', 'gradient_224x224.png');
const ask = (text: string, img?: string) => [{ role: 'user' as const, content: [...(img ? [{ type: 'image' as const, image: img }] : []), { type: 'text' as const, text }] }];

/** Tokens of each row through tokenLoop (the chat path) with the given budget, and the forwards it ran. */
async function loop(l: Loaded, p: PreparedInputs, o: ResolvedGenerateOptions, tokenBudget?: number) {
  const spy = vi.spyOn(native, 'sessionForward');
  try {
    const out: number[][] = Array.from({ length: p.batchSize }, () => []);
    const ctx = { ...l.ctx, ...(tokenBudget ? { tokenBudget } : {}) };
    for await (const s of tokenLoop(ctx, p, o, () => false)) s.tokens.forEach((t, b) => t >= 0 && out[b].push(t));
    const forwards = spy.mock.calls.map(([, a]) => a as NativeForwardArgs);
    return { out, forwards };
  } finally {
    spy.mockRestore();
  }
}

const greedy = { maxTokens: 8, doSample: false, repetitionPenalty: 1.2 };
const sampled = { maxTokens: 8, doSample: true, temperature: 1.2, topK: 0, topP: 0.95, repetitionPenalty: 1.1, seed: 17 };

describe('chunked prefill', () => {
  it('gives the tokens of the one-shot prefill (a batch with an image, greedy and seeded)', async () => {
    const p = await q2.model.prepare([ask('What is in the picture?', image('qwen2-vl')), ask('and a text-only row that is longer than the first one')]);
    const realTokens = p.padding.reduce((n, pad) => n + p.seqLength - pad, 0);
    for (const opts of [greedy, sampled]) {
      const o = q2.resolve(opts);
      const one = await loop(q2, p, o);
      expect(one.forwards[0].ids.length).toBe(realTokens); // the whole batch in one step, no padding
      for (const budget of [1, 5, 37]) {
        const chunked = await loop(q2, p, o, budget);
        expect(chunked.out, `budget ${budget}`).toEqual(one.out);
        const prefillSteps = chunked.forwards.length - (one.forwards.length - 1);
        expect(prefillSteps).toBeGreaterThanOrEqual(Math.ceil(realTokens / Math.max(budget, p.batchSize)));
        const total = (r: typeof one) => r.forwards.reduce((n, f) => n + f.ids.length, 0);
        expect(total(chunked)).toBe(total(one)); // each prompt token computed once
        // Every step stays within the budget, but for the group's final step (one token per row).
        for (const f of chunked.forwards) expect(f.ids.length).toBeLessThanOrEqual(Math.max(budget, p.batchSize));
      }
    }
  }, 120_000);

  it('splits DeepStack visual rows across chunks with the one-shot tokens (qwen3-vl)', async () => {
    const p = await q3.model.prepare(ask('Describe it.', image('qwen3-vl')));
    const o = q3.resolve(greedy);
    const one = await loop(q3, p, o);
    const chunked = await loop(q3, p, o, 7);
    expect(chunked.out).toEqual(one.out);
    // The image's rows came through several chunks, each with the same native features handle.
    const visual = chunked.forwards.filter((f) => f.features !== undefined);
    expect(visual.length).toBeGreaterThan(2);
    expect(new Set(visual.map((f) => f.features)).size).toBe(1);
  }, 60_000);
});

/** One conversation's group in a shared scheduler: its tokens, and a hook on each. */
async function group(l: Loaded, s: Scheduler, text: string, o: ResolvedGenerateOptions, onToken?: (seq: Sequence, n: number) => void) {
  const p = await l.model.prepare(ask(text));
  const tokens: number[] = [];
  const [seq] = s.submit(
    promptGroup(l.ctx, p, o, null, o.maxTokens, (_, t) => {
      tokens.push(t);
      onToken?.(seq, tokens.length);
    }),
  );
  return { seq, tokens };
}

async function alone(l: Loaded, text: string, o: ResolvedGenerateOptions): Promise<number[]> {
  const s = new Scheduler({ model: l.ctx.handle });
  try {
    const g = await group(l, s, text, o);
    await s.run();
    return g.tokens;
  } finally {
    s.dispose();
  }
}

describe('sequences join and leave a running loop', () => {
  const A = 'the first request, which runs from the start';
  const B = 'a second request that joins while the first one decodes';

  it('a sequence that joins mid-run shares the steps and both get the tokens they get alone', async () => {
    for (const opts of [greedy, sampled]) {
      const o = q2.resolve({ ...opts, maxTokens: 6 });
      const wantA = await alone(q2, A, o);
      const wantB = await alone(q2, B, { ...o, seed: 99 });
      const s = new Scheduler({ model: q2.ctx.handle });
      const spy = vi.spyOn(native, 'sessionForward');
      try {
        const pB = await q2.model.prepare(ask(B));
        let b: { tokens: number[] } | null = null;
        const a = await group(q2, s, A, o, (_, n) => {
          // Joins after A's second token: admitted between steps, prefilled beside A's decode token.
          if (n === 2) {
            const tokens: number[] = [];
            s.submit(promptGroup(q2.ctx, pB, { ...o, seed: 99 }, null, o.maxTokens, (_, t) => tokens.push(t)));
            b = { tokens };
          }
        });
        const running = s.run();
        await running;
        expect(a.tokens).toEqual(wantA);
        expect(b!.tokens).toEqual(wantB);
        const counts = spy.mock.calls.map(([, f]) => Array.from((f as NativeForwardArgs).counts ?? []));
        // A's decode token and B's whole prompt in one step.
        expect(counts).toContainEqual([1, pB.seqLength]);
        expect(s.idle).toBe(true);
        expect(native.sessionLengths(s.nativeSession)).toEqual([null, null]);
      } finally {
        spy.mockRestore();
        s.dispose();
      }
    }
  }, 120_000);

  it('under a budget, every step carries the running decode tokens and chunks of the joining prompt', async () => {
    const o = q2.resolve({ ...greedy, maxTokens: 12 });
    const wantA = await alone(q2, A, o);
    const wantB = await alone(q2, B, o);
    const budget = 6;
    const s = new Scheduler({ model: q2.ctx.handle, tokenBudget: budget });
    const spy = vi.spyOn(native, 'sessionForward');
    try {
      const a = await group(q2, s, A, o);
      // A's prompt alone is chunked too: run it until it decodes, then B joins.
      while (a.tokens.length === 0) await s.step();
      const b = await group(q2, s, B, o);
      const before = spy.mock.calls.length;
      await s.run();
      expect(a.tokens).toEqual(wantA);
      expect(b.tokens).toEqual(wantB);
      const steps = spy.mock.calls.slice(before).map(([, f]) => f as NativeForwardArgs);
      const slotA = 0, slotB = 1;
      let bTokens = 0;
      for (const f of steps) {
        expect(f.ids.length).toBeLessThanOrEqual(budget);
        const rows = Array.from(f.rows!);
        const counts = Array.from(f.counts!);
        if (rows.includes(slotB) && counts[rows.indexOf(slotB)] > 1) {
          // B still prefilling: A's decode token rides along (A has tokens left all that time).
          expect(rows[0]).toBe(slotA);
          expect(counts[0]).toBe(1);
          bTokens += counts[rows.indexOf(slotB)];
        }
      }
      const pB = await q2.model.prepare(ask(B));
      expect(bTokens).toBeGreaterThan(budget); // B's prompt took several steps
      expect(bTokens).toBeLessThanOrEqual(pB.seqLength);
    } finally {
      spy.mockRestore();
      s.dispose();
    }
  }, 120_000);

  it('a cancelled sequence frees its KV slot at once and leaves the other running with its own tokens', async () => {
    const o = q2.resolve({ ...sampled, maxTokens: 8 });
    const wantB = await alone(q2, B, o);
    const s = new Scheduler({ model: q2.ctx.handle });
    const freed = vi.spyOn(native, 'sessionFreeSequence');
    try {
      let lengthsAfterCancel: (number | null)[] = [];
      const a = await group(q2, s, A, o, (seq, n) => {
        if (n === 3) seq.cancel();
      });
      const b = await group(q2, s, B, o);
      // Cancel during a step (from A's token callback): the slot goes as the step returns.
      while (a.seq.state !== 'done') await s.step();
      lengthsAfterCancel = native.sessionLengths(s.nativeSession);
      expect(lengthsAfterCancel[0]).toBeNull();
      expect(lengthsAfterCancel[1]).not.toBeNull();
      expect(freed.mock.calls.map(([, id]) => id)).toEqual([0]);
      await expect(a.seq.done).resolves.toBe('cancel');
      expect(a.tokens).toHaveLength(3);
      await s.run();
      expect(b.tokens).toEqual(wantB);
      await expect(b.seq.done).resolves.toBe('length');

      // Cancelled between steps: freed before cancel() returns.
      const c = await group(q2, s, A, o);
      await s.step();
      const slot = c.seq.slot;
      expect(native.sessionLengths(s.nativeSession)[slot]).not.toBeNull();
      c.seq.cancel();
      expect(native.sessionLengths(s.nativeSession)[slot]).toBeNull();
      // Cancelled while queued: never admitted.
      const d = await group(q2, s, A, o);
      d.seq.cancel();
      expect(await s.step()).toBe(false);
      expect(native.sessionLengths(s.nativeSession)).toHaveLength(slot + 1);
      expect(s.idle).toBe(true);
    } finally {
      freed.mockRestore();
      s.dispose();
    }
  }, 120_000);

  it('a stop from the token callback ends the sequence there', async () => {
    const o = q2.resolve({ ...greedy, maxTokens: 8 });
    const want = await alone(q2, A, o);
    const s = new Scheduler({ model: q2.ctx.handle });
    try {
      const p = await q2.model.prepare(ask(A));
      const got: number[] = [];
      const [seq] = s.submit(promptGroup(q2.ctx, p, o, null, o.maxTokens, (_, t) => void got.push(t)));
      seq.spec.onToken = (t) => (got.push(t), got.length === 4);
      await s.run();
      expect(got).toEqual(want.slice(0, 4));
      await expect(seq.done).resolves.toBe('stop');
    } finally {
      s.dispose();
    }
  }, 60_000);
});

describe('scheduler bookkeeping', () => {
  it('frees a group\'s vision features once its prompts are in the cache', async () => {
    const p = await q2.model.prepare(ask('What is it?', image('qwen2-vl')));
    const o = q2.resolve({ ...greedy, maxTokens: 3 });
    const v = (await encodeFeatures(q2.ctx, p))!;
    const s = new Scheduler({ model: q2.ctx.handle });
    try {
      const [seq] = s.submit(promptGroup(q2.ctx, p, o, v, o.maxTokens));
      await s.step();
      expect(seq.state).toBe('decode');
      const args = { ids: Int32Array.of(1), steps: 1, positions: new Int32Array(3), features: v.features, visualRows: Int32Array.of(0) };
      const probe = native.modelNewSession(q2.ctx.handle, 1, 4);
      try {
        await expect(Promise.resolve().then(() => native.sessionForward(probe, args))).rejects.toMatchObject({ code: 'E_DISPOSED' });
      } finally {
        native.disposeHandle(probe);
      }
      await s.run();
      expect(seq.tokens).toHaveLength(3);
    } finally {
      s.dispose();
    }
  }, 60_000);

  it('native pieces it stands on: per-row sample flags, samplers added per sequence', async () => {
    const s = native.modelNewSession(q2.ctx.handle, 0, 1);
    const params = { doSample: false, temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 };
    try {
      expect(native.sessionLengths(s)).toEqual([]);
      const a = native.sessionAddSequence(s, 8), b = native.sessionAddSequence(s, 8);
      native.sessionSampling(s, { rows: Int32Array.of(a), params: [params], seed: 1 });
      native.sessionSampling(s, { rows: Int32Array.of(b), params: [params], seed: 2, history: Int32Array.of(5) });
      // Row a's chunk stops short of its prompt's end: no token, no draw; row b samples.
      const r = await native.sessionForward(s, {
        ids: Int32Array.of(1, 2, 3),
        counts: Int32Array.of(2, 1),
        positions: Int32Array.of(0, 1, 0, 0, 1, 0, 0, 1, 0),
        rows: Int32Array.of(a, b),
        logits: 'sample',
        sample: Uint8Array.of(0, 1),
      });
      expect(r.tokens![0]).toBe(-1);
      expect(r.tokens![1]).toBeGreaterThanOrEqual(0);
      expect(native.sessionLengths(s)).toEqual([2, 1]);
      expect(() => native.sessionSampling(s, { rows: Int32Array.of(a, a), params: [params, params], seed: 1 })).toThrow(/twice/);
      expect(() => native.sessionSampling(s, { rows: Int32Array.of(7), params: [params], seed: 1 })).toThrow(/not a live sequence/);
      expect(() => native.sessionSampling(s, { rows: Int32Array.of(a), params: [params], seed: 1, history: Int32Array.of(1e9) })).toThrow(/vocabulary/);
      expect(() => native.sessionForward(s, { ids: Int32Array.of(1), steps: 1, positions: new Int32Array(3), rows: Int32Array.of(a), logits: 'last', sample: Uint8Array.of(1) })).toThrow(
        /sample flags go with logits 'sample'/,
      );
      // A freed sequence's sampler goes with its slot.
      native.sessionFreeSequence(s, b);
      expect(native.sessionLengths(s)).toEqual([2, null]);
    } finally {
      native.disposeHandle(s);
    }
  }, 60_000);

  it('a failed step fails its sequences and frees their slots; bad groups are refused at submit', async () => {
    const s = new Scheduler({ model: q2.ctx.handle });
    const vocab = q2.model.config.text.vocabSize;
    const seq = {
      ids: Int32Array.of(1, vocab + 5),
      positions: Int32Array.of(0, 1, 0, 1, 0, 1),
      nextPosition: 2,
      history: new Int32Array(0),
      maxTokens: 2,
    };
    const sampling = { doSample: false, temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 };
    try {
      const [bad] = s.submit({ sequences: [seq], sampling, seed: 0, eosTokenIds: [] });
      await expect(s.step()).rejects.toMatchObject({ code: 'E_INPUT' });
      await expect(bad.done).rejects.toMatchObject({ code: 'E_INPUT' });
      expect(native.sessionLengths(s.nativeSession)).toEqual([null]);
      expect(s.idle).toBe(true);
      const refuse = (o: object) => expect(() => s.submit({ sequences: [{ ...seq, ids: Int32Array.of(1, 2), ...o }], sampling, seed: 0, eosTokenIds: [] }));
      refuse({ positions: new Int32Array(5) }).toThrow(/positions/);
      refuse({ maxTokens: 0 }).toThrow(/maxTokens/);
      refuse({ visualRows: Int32Array.of(-1, -1) }).toThrow(/vision features/);
      expect(() => s.submit({ sequences: [], sampling, seed: 0, eosTokenIds: [] })).toThrow(/at least one/);
      expect(() => new Scheduler({ model: q2.ctx.handle, tokenBudget: 0 })).toThrow(/tokenBudget/);
    } finally {
      s.dispose();
    }
    expect(() => s.submit({ sequences: [seq], sampling, seed: 0, eosTokenIds: [] })).toThrow(/disposed/);
  }, 60_000);
});
