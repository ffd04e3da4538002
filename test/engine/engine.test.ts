// The engine (lib/engine/engine.ts): concurrent chat()/stream() calls share one running batch.
// Under load (text and image prompts of different lengths, greedy and seeded, a batched call, one
// aborted midway) every request gets exactly the tokens it gets alone; admission waits for KV
// memory and refuses what could never fit; an abort frees its KV at once; a repeated image skips
// the vision tower (vision-feature cache) and a repeated prefix skips its prefill (prefix cache),
// with the same tokens as without the caches.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadModel, type ChatResult, type Model } from '../../lib/index.js';
import { native } from '../../lib/native/binding.js';
import { checkpointDir, fixtureDir } from '../helpers/fixtures.js';

const CKPT = checkpointDir('qwen2-vl');
const IMG = join(fixtureDir('qwen2-vl'), 'inputs', 'gradient_224x224.png');
const NOISE = join(fixtureDir('qwen2-vl'), 'inputs', 'noise_120x90.png');

type Msg = { role: 'user' | 'assistant' | 'system'; content: string | ({ type: 'image'; image: string } | { type: 'text'; text: string })[] };
const ask = (text: string, img?: string): Msg[] => [
  { role: 'user', content: [...(img ? [{ type: 'image' as const, image: img }] : []), { type: 'text' as const, text }] },
];

const greedy = { maxTokens: 10, doSample: false, repetitionPenalty: 1.1 };
const seeded = (seed: number) => ({ maxTokens: 10, doSample: true, temperature: 1.3, topK: 0, topP: 0.95, repetitionPenalty: 1.1, seed });
/** No end-of-sequence id the random weights could produce: every run uses its maxTokens. */
const NO_EOS = { eosTokenIds: [1 << 30] };

/** The model without caches: each request alone is the reference. */
let plain: Model;
beforeAll(async () => {
  plain = await loadModel(CKPT, { threads: 1, engine: { visionCacheBytes: 0, prefixCacheBytes: 0 } });
});
afterAll(() => plain?.dispose());

const tokens = (r: ChatResult | ChatResult[]) => (Array.isArray(r) ? r.map((x) => x.tokens) : r.tokens);

describe('continuous batching', () => {
  it('8 concurrent mixed requests get the tokens each gets alone; one aborted midway frees its KV', async () => {
    const model = await loadModel(CKPT, { threads: 1, engine: { tokenBudget: 24 } });
    try {
      const requests: { messages: Msg[] | Msg[][]; options: Record<string, unknown> }[] = [
        { messages: ask('Describe the picture.', IMG), options: greedy },
        { messages: ask('hi'), options: seeded(1) },
        { messages: ask('a much longer text prompt that is chunked over several steps of the shared batch, ' + 'word '.repeat(30)), options: greedy },
        { messages: ask('What colours?', NOISE), options: seeded(2) },
        { messages: [ask('row one of a batch'), ask('row two, a little longer than row one')], options: seeded(3) },
        { messages: ask('short', IMG), options: { ...greedy, maxTokens: 4 } },
        { messages: ask('penalised', undefined), options: { ...seeded(4), repetitionPenalty: 1.5, stop: ['zzz'] } },
      ];
      const want = [];
      for (const r of requests) want.push(tokens(await plain.chat(r.messages as Msg[], { ...r.options, ...NO_EOS })));

      const forward = vi.spyOn(native, 'sessionForward');
      const ac = new AbortController();
      const aborted = model.chat(ask('this one is aborted midway', IMG), { ...greedy, ...NO_EOS, maxTokens: 40, signal: ac.signal });
      let abortedAt = -1;
      const watch = (async () => {
        // Abort once it has some tokens: its KV goes back at once (or right after the step in flight).
        while (model.stats().generatedTokens < 12) await new Promise((r) => setTimeout(r, 5));
        abortedAt = model.stats().kv.usedBytes;
        ac.abort();
      })();
      const got = await Promise.all(requests.map((r) => model.chat(r.messages as Msg[], { ...r.options, ...NO_EOS })));
      await watch;
      const a = await aborted;
      expect(got.map(tokens)).toEqual(want);
      expect(a.finishReason).toBe('abort');
      expect(a.tokens.length).toBeLessThan(40);
      expect(abortedAt).toBeGreaterThan(0);
      // Steps carried several requests' rows at once.
      const rows = forward.mock.calls.map(([, f]) => f.rows?.length ?? 0);
      expect(Math.max(...rows)).toBeGreaterThanOrEqual(5);
      forward.mockRestore();
      const s = model.stats();
      expect(s.running).toBe(0);
      expect(s.queued).toBe(0);
      // Only the prefix cache's entries hold KV now.
      expect(s.kv.usedBytes).toBe(s.prefixCache.bytes);
      expect(s.generatedTokens).toBeGreaterThanOrEqual(want.flat(2).length);
    } finally {
      model.dispose();
    }
  });

  it('streams interleave: a second stream gets tokens before the first ends', async () => {
    const model = await loadModel(CKPT, { threads: 1 });
    try {
      const order: number[] = [];
      const run = async (i: number, text: string) => {
        let s = '';
        for await (const chunk of model.stream(ask(text), { ...greedy, ...NO_EOS, maxTokens: 12 })) {
          order.push(i);
          s += chunk;
        }
        return s;
      };
      const [x, y] = await Promise.all([run(0, 'first stream'), run(1, 'second stream')]);
      expect(x).toBe((await plain.chat(ask('first stream'), { ...greedy, ...NO_EOS, maxTokens: 12 })).text);
      expect(y).toBe((await plain.chat(ask('second stream'), { ...greedy, ...NO_EOS, maxTokens: 12 })).text);
      const lastOf0 = order.lastIndexOf(0), firstOf1 = order.indexOf(1);
      expect(firstOf1).toBeLessThan(lastOf0);
    } finally {
      model.dispose();
    }
  });
});

describe('admission', () => {
  it('waits for KV memory first come first served, refuses what could never fit, and E_BUSY past maxQueue', async () => {
    const t = plain.config.text;
    const perToken = t.layers * 2 * t.kvHeads * t.headDim * 4;
    const prompt = (await plain.prepare(ask('memory bound'))).seqLength;
    // Room for one request of 16 new tokens at a time (and no prefix cache to evict).
    const model = await loadModel(CKPT, { threads: 1, engine: { kvMemoryBytes: (prompt + 20) * perToken, prefixCacheBytes: 0, maxQueue: 1 } });
    try {
      const o = { ...greedy, ...NO_EOS, maxTokens: 16 };
      const want = tokens(await plain.chat(ask('memory bound'), o));
      const first = model.chat(ask('memory bound'), o);
      while (model.stats().running === 0) await new Promise((r) => setTimeout(r, 2));
      const second = model.chat(ask('memory bound'), o);
      while (model.stats().queued === 0) await new Promise((r) => setTimeout(r, 2));
      // One running, one waiting for its memory: the queue (1) is full.
      await expect(model.chat(ask('memory bound'), o)).rejects.toMatchObject({ code: 'E_BUSY' });
      expect(model.stats().running).toBe(1);
      expect(tokens(await first)).toEqual(want);
      expect(tokens(await second)).toEqual(want);
      // More KV than the engine has: refused at once, before the vision tower runs.
      const encode = vi.spyOn(native, 'modelEncodeFeatures');
      await expect(model.chat(ask('too long', IMG), { ...o, maxTokens: 1000 })).rejects.toMatchObject({ code: 'E_INPUT', message: expect.stringMatching(/kvMemoryBytes/) });
      expect(encode).not.toHaveBeenCalled();
      encode.mockRestore();
    } finally {
      model.dispose();
    }
    const capped = await loadModel(CKPT, { threads: 1, engine: { maxRunning: 1 } });
    try {
      await expect(capped.chat([ask('a'), ask('b')])).rejects.toMatchObject({ code: 'E_INPUT', message: expect.stringMatching(/maxRunning/) });
    } finally {
      capped.dispose();
    }
  });

  it("precision 'fast' makes 'bf16' the KV cache's default; an explicit kvCache wins", async () => {
    const t = plain.config.text;
    const perToken = t.layers * 2 * t.kvHeads * t.headDim * 4;  // f32
    const prompt = (await plain.prepare(ask('memory bound'))).seqLength;
    const estimate = async (options: Parameters<typeof loadModel>[1]) => {
      const m = await loadModel(CKPT, { threads: 1, ...options });
      try {
        return (await m.estimateTokens(ask('memory bound'), { maxTokens: 100 })).memoryBytes;
      } finally {
        m.dispose();
      }
    };
    const exact = await estimate({});
    expect(exact - (await estimate({ precision: 'fast' }))).toBe(((prompt + 100) * perToken) / 2);
    expect(await estimate({ precision: 'fast', engine: { kvCache: 'f32' } })).toBe(exact);
    expect(await estimate({ precision: 'exact', engine: { kvCache: 'bf16' } })).toBe(await estimate({ precision: 'fast' }));
  });

  it("kvCache 'bf16' stores keys and values at 2 bytes: twice the tokens fit, the memory estimate halves its KV, the logits move slightly", async () => {
    const t = plain.config.text;
    const perToken = t.layers * 2 * t.kvHeads * t.headDim * 4;  // f32
    const p = await plain.prepare(ask('memory bound'));
    const prompt = p.seqLength;
    // Room for prompt + 16 new tokens only at 2 bytes per element.
    const kvMemoryBytes = ((prompt + 20) * perToken) / 2;
    const o = { ...greedy, ...NO_EOS, maxTokens: 16 };
    const f32 = await loadModel(CKPT, { threads: 1, engine: { kvMemoryBytes, prefixCacheBytes: 0 } });
    const bf16 = await loadModel(CKPT, { threads: 1, engine: { kvMemoryBytes, prefixCacheBytes: 0, kvCache: 'bf16' } });
    try {
      await expect(f32.chat(ask('memory bound'), o)).rejects.toMatchObject({ code: 'E_INPUT', message: expect.stringMatching(/kvMemoryBytes/) });
      const r = bf16.chat(ask('memory bound'), o);
      while (bf16.stats().running === 0) await new Promise((res) => setTimeout(res, 2));
      expect(bf16.stats().kv.usedBytes).toBe(((prompt + 16) * perToken) / 2);
      expect((await r).tokens).toHaveLength(16);
      const [ef, eb] = [await f32.estimateTokens(ask('memory bound'), { maxTokens: 100 }), await bf16.estimateTokens(ask('memory bound'), { maxTokens: 100 })];
      expect(ef.memoryBytes - eb.memoryBytes).toBe(((prompt + 100) * perToken) / 2);
      // logits() runs on the same storage: rounded keys and values move the logits, a little.
      const [lf, lb] = [(await f32.logits(p)).data as Float32Array, (await bf16.logits(p)).data as Float32Array];
      let ab = 0, aa = 0, bb = 0;
      lf.forEach((x, i) => ((ab += x * lb[i]), (aa += x * x), (bb += lb[i] * lb[i])));
      expect(lf).not.toEqual(lb);
      expect(ab / Math.sqrt(aa * bb)).toBeGreaterThan(0.999);
    } finally {
      f32.dispose();
      bf16.dispose();
    }
  });

  it('checks the engine options', async () => {
    for (const engine of [{ maxRunning: 0 }, { tokenBudget: 1.5 }, { visionCacheBytes: -1 }, { kvMemoryBytes: '1' }, { kvCache: 'f16' }, { kvCache: 16 }, 'x']) {
      await expect(loadModel(CKPT, { engine: engine as never })).rejects.toMatchObject({ code: 'E_INPUT', message: expect.stringMatching(/engine/) });
    }
  });
});

describe('caches', () => {
  it('a repeated image skips the vision tower and gives the same tokens', async () => {
    const o = { ...greedy, ...NO_EOS };
    const want = tokens(await plain.chat(ask('What is it?', IMG), o));
    const wantOther = tokens(await plain.chat(ask('And its colours?', IMG), o));
    const model = await loadModel(CKPT, { threads: 1, engine: { prefixCacheBytes: 0 } });
    const encode = vi.spyOn(native, 'modelEncodeFeatures');
    try {
      expect(tokens(await model.chat(ask('What is it?', IMG), o))).toEqual(want);
      expect(encode).toHaveBeenCalledTimes(1);
      expect(tokens(await model.chat(ask('What is it?', IMG), o))).toEqual(want);
      // Same pixels in another prompt: the same features.
      expect(tokens(await model.chat(ask('And its colours?', IMG), o))).toEqual(wantOther);
      expect(encode).toHaveBeenCalledTimes(1);
      // Concurrent requests for one new image share one encode.
      await Promise.all([model.chat(ask('one', NOISE), o), model.chat(ask('two', NOISE), o)]);
      expect(encode).toHaveBeenCalledTimes(2);
      const s = model.stats().visionCache;
      // 'two' found the features in the cache, or waited for the encode 'one' started.
      expect(s.hits + s.misses).toBe(5);
      expect(s.hits).toBeGreaterThanOrEqual(2);
      expect(s.entries).toBe(2);
      expect(s.bytes).toBeGreaterThan(0);
      expect(s.savedSeconds).toBeGreaterThan(0);
      expect(model.stats().visionEncodes).toBe(2);
    } finally {
      encode.mockRestore();
      model.dispose();
    }
  });

  it('without the vision cache a request\'s features handle is freed once its prompt is in the KV cache', async () => {
    const forward = vi.spyOn(native, 'sessionForward');
    try {
      await plain.chat(ask('What is it?', IMG), { maxTokens: 2 });
      const features = forward.mock.calls.map(([, a]) => a.features).find((f) => f !== undefined)!;
      expect(features).toBeDefined();
      const s = native.modelNewSession((plain as unknown as { handle: Parameters<typeof native.modelNewSession>[0] }).handle, 1, 4);
      try {
        const args = { ids: Int32Array.of(1), steps: 1, positions: new Int32Array(3), features, visualRows: Int32Array.of(-1) };
        await expect(Promise.resolve().then(() => native.sessionForward(s, args))).rejects.toMatchObject({ code: 'E_DISPOSED' });
      } finally {
        native.disposeHandle(s);
      }
    } finally {
      forward.mockRestore();
    }
  });

  it('the vision cache is bounded by bytes (least recently used out)', async () => {
    const one = await loadModel(CKPT, { threads: 1 });
    let bytes: number;
    try {
      await one.chat(ask('x', IMG), { maxTokens: 1 });
      bytes = one.stats().visionCache.bytes;
    } finally {
      one.dispose();
    }
    const model = await loadModel(CKPT, { threads: 1, engine: { visionCacheBytes: bytes + 1 } });
    const encode = vi.spyOn(native, 'modelEncodeFeatures');
    try {
      await model.chat(ask('x', IMG), { maxTokens: 1 });
      await model.chat(ask('x', NOISE), { maxTokens: 1 });
      await model.chat(ask('x', IMG), { maxTokens: 1 }); // evicted by the noise image
      expect(encode).toHaveBeenCalledTimes(3);
      expect(model.stats().visionCache.bytes).toBeLessThanOrEqual(bytes + 1);
    } finally {
      encode.mockRestore();
      model.dispose();
    }
  });

  it('a prompt that starts with a cached prefix (earlier turn, same image) copies its KV, with the tokens of a full prefill', async () => {
    const model = await loadModel(CKPT, { threads: 1, engine: { visionCacheBytes: 0 } });
    const copy = vi.spyOn(native, 'sessionCopyPrefix');
    try {
      for (const o of [{ ...greedy, ...NO_EOS }, { ...seeded(7), ...NO_EOS }]) {
        const turn1 = ask('Look at this.', IMG);
        const r1 = await model.chat(turn1, o);
        expect(r1.tokens).toEqual(tokens(await plain.chat(turn1, o)));
        const before = model.stats().prefixCache;
        const turn2: Msg[] = [...turn1, { role: 'assistant', content: r1.text }, { role: 'user', content: 'And now?' }];
        const r2 = await model.chat(turn2, o);
        expect(r2.tokens).toEqual(tokens(await plain.chat(turn2, o)));
        const after = model.stats().prefixCache;
        expect(after.hits).toBe(before.hits + 1);
        // The whole first prompt, image included, came from the cache.
        const p1 = await model.prepare(turn1);
        expect(after.savedTokens - before.savedTokens).toBeGreaterThanOrEqual(p1.seqLength);
      }
      expect(copy).toHaveBeenCalled();
      // Another image at the same place: no match past it.
      const before = model.stats().prefixCache.savedTokens;
      const r = await model.chat(ask('Look at this.', NOISE), { ...greedy, ...NO_EOS });
      expect(r.tokens).toEqual(tokens(await plain.chat(ask('Look at this.', NOISE), { ...greedy, ...NO_EOS })));
      const p = await model.prepare(ask('Look at this.', NOISE));
      const firstVisual = Array.from(p.inputIds).indexOf(model.config.tokens.imageTokenId);
      expect(model.stats().prefixCache.savedTokens - before).toBeLessThanOrEqual(firstVisual);
      expect(model.stats().prefixCache.bytes).toBeLessThanOrEqual(model.stats().prefixCache.capacityBytes);
    } finally {
      copy.mockRestore();
      model.dispose();
    }
  });
});

describe('sessionCopyPrefix (KvPool::copy_prefix)', () => {
  it('copies the keys and values bit for bit: the next step gives the logits of a full prefill; bad arguments are E_INPUT', async () => {
    const handle = (plain as unknown as { handle: Parameters<typeof native.modelNewSession>[0] }).handle;
    const p = await plain.prepare(ask('a prompt whose first half is shared'));
    const S = p.seqLength, k = S - 3;
    const pos = (from: number, to: number) => {
      const out = new Int32Array(3 * (to - from));
      for (let a = 0; a < 3; a++) out.set(p.positionIds.subarray(a * S + from, a * S + to), a * (to - from));
      return out;
    };
    const s = native.modelNewSession(handle, 0, 1);
    try {
      // `full` prefills [0, k) then [k, S); `src` the same first chunk and one token more; `dst`
      // copies src's first k entries and prefills [k, S): the same computation as full's second
      // chunk over the copied keys and values, so the same logits bit for bit.
      const full = native.sessionAddSequence(s, S), src = native.sessionAddSequence(s, k + 2), dst = native.sessionAddSequence(s, S);
      const run = (row: number, from: number, to: number, logits: 'last' | 'none') =>
        native.sessionForward(s, { ids: p.inputIds.slice(from, to), counts: Int32Array.of(to - from), positions: pos(from, to), rows: Int32Array.of(row), logits });
      await run(full, 0, k, 'none');
      const whole = await run(full, k, S, 'last');
      await run(src, 0, k, 'none');
      await run(src, k, k + 1, 'none');
      native.sessionCopyPrefix(s, src, dst, k);
      expect(native.sessionLengths(s)).toEqual([S, k + 1, k]);
      const rest = await run(dst, k, S, 'last');
      // Compared as bytes (a diff of 150k floats would swamp the report).
      expect(Buffer.from(rest.logits!.data).equals(Buffer.from(whole.logits!.data))).toBe(true);
      const bad = (src_: number, dst_: number, n: number, msg: RegExp) => expect(() => native.sessionCopyPrefix(s, src_, dst_, n)).toThrow(msg);
      bad(src, dst, 2, /destination is not empty/);
      const fresh = native.sessionAddSequence(s, 4);
      bad(src, fresh, k + 2, /source holds/);
      bad(src, fresh, 5, /at most 4/);
      bad(src, fresh, 0, /positive/);
      bad(src, src, 1, /different sequences/);
      bad(99, fresh, 1, /not in the KV pool/);
    } finally {
      native.disposeHandle(s);
    }
  });
});
