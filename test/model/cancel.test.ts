// Cancellation reaches native work: an AbortSignal or dispose() stops a running vision encode or
// prefill within one layer, not after it. Timed on a deep copy of the fixture checkpoint (48
// decoder layers, 32 vision blocks, one compute thread) whose prefill takes about a second or two;
// each bound is a fraction of the measured uncancelled run, so a loaded machine slows both alike.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, Model, QwenVLError, type ChatResult } from '../../lib/index.js';
import type { PreparedInputs } from '../../lib/model/inputs.js';
import { native, type NativeCancelToken, type NativeForwardArgs, type NativeHandle } from '../../lib/native/binding.js';
import { FIXTURE_CHECKPOINT, writeDeepCheckpoint } from '../helpers/deep-checkpoint.js';

const IMG = join(FIXTURE_CHECKPOINT, '../inputs/gradient_224x224.png');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A prompt of `words` words (~2.9 tokens each): from ~4000 tokens the prefill's attention
// dominates and each layer is a small slice of it.
const longPrompt = (words: number) => [{ role: 'user', content: Array.from({ length: words }, (_, i) => `w${i % 97}`).join(' ') }];
// Grown in beforeAll until its prefill is long enough to abort a third of the way in.
let LONG = longPrompt(1400);

function rawImage(side: number) {
  const data = new Uint8Array(side * side * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
  return { data, width: side, height: side };
}
const imageAsk = (side: number) => [{ role: 'user', content: [{ type: 'image', image: rawImage(side) }, { type: 'text', text: 'hi' }] }];

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await run();
  return { value, ms: performance.now() - t0 };
}

type Settled<T> = { value: T; error?: undefined } | { value?: undefined; error: unknown };

/** Starts `run`, fires `cancel` after `afterMs`, and measures how long the call takes to settle after it. */
async function cancelAfter<T>(run: () => Promise<T>, afterMs: number, cancel: () => void): Promise<Settled<T> & { latency: number }> {
  const running = run().then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  await sleep(afterMs);
  const t0 = performance.now();
  cancel();
  const settled = await running;
  return { ...settled, latency: performance.now() - t0 } as Settled<T> & { latency: number };
}

function expectCode(e: unknown, code: string): void {
  expect(e).toBeInstanceOf(QwenVLError);
  expect((e as QwenVLError).code).toBe(code);
}

let deep: { dir: string; remove: () => void };
let model: Model;
let reference: ChatResult;
let prefillMs: number;
let imageInputs: PreparedInputs;
let visionMs: number;
let side: number;

beforeAll(async () => {
  deep = await writeDeepCheckpoint(48, 32);
  // No prefix cache: every run of LONG must prefill it again for the timings to mean anything.
  model = await loadModel(deep.dir, { threads: 1, engine: { prefixCacheBytes: 0 } });
  // The prompt grows until its prefill takes long enough to abort partway, whatever the CPU's
  // speed (1400 words took 0.5-2 s on the 2-core VMs, just under 0.5 s on a quiet Zen 5).
  for (let words = 1400; ; words = Math.round(words * 1.3)) {
    LONG = longPrompt(words);
    const r = await timed(() => model.chat(LONG, { doSample: false, maxTokens: 2 }));
    reference = r.value;
    prefillMs = r.ms;
    if (prefillMs > 600 || words > 4000) break;
  }
  // The image grows until its encode takes long enough to abort halfway, whatever the CPU's speed
  // (a 700-pixel image took 370 ms with AVX-512 and 800+ with AVX2).
  for (side = 700; ; side = Math.round(side * 1.4)) {
    imageInputs = await model.prepare(imageAsk(side));
    visionMs = (await timed(() => model.logits(imageInputs))).ms;
    if (visionMs > 600 || side > 3000) break;
  }
});
afterAll(() => {
  model?.dispose();
  deep?.remove();
});

describe('abort reaches native work', () => {
  it('an abort during a long prefill resolves within a layer, as documented', async () => {
    expect(reference.tokens).toHaveLength(2);
    expect(prefillMs).toBeGreaterThan(500);
    const ac = new AbortController();
    const r = await cancelAfter(() => model.chat(LONG, { doSample: false, maxTokens: 2, signal: ac.signal }), prefillMs / 3, () => ac.abort());
    expect(r.error).toBeUndefined();
    expect(r.value!.finishReason).toBe('abort');
    expect(r.value!.tokens).toEqual([]); // stopped inside the prefill, not after it
    expect(r.value!.usage.promptTokens).toBe(reference.usage.promptTokens);
    // Two thirds of the prefill were left; one layer is 1/48 of it.
    expect(r.latency, `abort took ${r.latency.toFixed(0)} ms of a ${prefillMs.toFixed(0)} ms prefill`).toBeLessThan(prefillMs / 4);
  });

  it('the model keeps working after an abort: the next request gives the same tokens as a fresh run', async () => {
    const again = await model.chat(LONG, { doSample: false, maxTokens: 2 });
    expect(again.tokens).toEqual(reference.tokens);
    expect(again.finishReason).toBe(reference.finishReason);
  });

  it('an abort during the vision encoder rejects logits() with E_ABORTED within a block', async () => {
    expect(visionMs).toBeGreaterThan(500);
    const ac = new AbortController();
    const r = await cancelAfter(() => model.logits(imageInputs, { signal: ac.signal }), visionMs / 3, () => ac.abort());
    expectCode(r.error, 'E_ABORTED');
    expect(r.latency, `abort took ${r.latency.toFixed(0)} ms of a ${visionMs.toFixed(0)} ms encode`).toBeLessThan(visionMs / 4);
    const after = await model.logits(imageInputs);
    expect(after.shape).toEqual([1, model.config.text.vocabSize]);
  });

  it('an abort during the vision encoder of chat() resolves with finishReason "abort"', async () => {
    const prepared = (await timed(() => model.prepare(imageAsk(side)))).ms;
    const ac = new AbortController();
    const r = await cancelAfter(() => model.chat(imageAsk(side), { maxTokens: 2, signal: ac.signal }), prepared + visionMs / 3, () => ac.abort());
    expect(r.value?.finishReason).toBe('abort');
    expect(r.value?.tokens).toEqual([]);
    expect(r.latency).toBeLessThan(visionMs / 4);
  });

  it('an abort during preprocessing (image decoding) resolves at once', async () => {
    const big = imageAsk(2800);
    const prepMs = (await timed(() => model.prepare(big))).ms;
    expect(prepMs).toBeGreaterThan(40);
    const ac = new AbortController();
    const r = await cancelAfter(() => model.chat(big, { maxTokens: 2, signal: ac.signal }), 5, () => ac.abort());
    expect(r.value?.finishReason).toBe('abort');
    expect(r.value?.tokens).toEqual([]);
    expect(r.value?.usage).toEqual({ promptTokens: 0, completionTokens: 0, totalTokens: 0 });
    expect(r.latency, `abort took ${r.latency.toFixed(0)} ms of ${prepMs.toFixed(0)} ms preprocessing`).toBeLessThan(Math.max(20, prepMs / 4));
  });

  it('an abort during the prefill ends a stream at once, with no chunk', async () => {
    const t0 = performance.now();
    const stop = new AbortController();
    const chunks: string[] = [];
    const run = (async () => {
      for await (const c of model.stream(LONG, { doSample: false, maxTokens: 2, signal: stop.signal })) chunks.push(c);
    })();
    await sleep(prefillMs / 3);
    stop.abort();
    await run;
    expect(chunks).toEqual([]);
    expect(performance.now() - t0).toBeLessThan(prefillMs / 3 + prefillMs / 4);
  });
});

describe('native sessions', () => {
  it('a cancelled forward leaves its session as it was: the same session then gives the fresh logits', async () => {
    const handle = (model as unknown as { handle: NativeHandle }).handle; // the low-level API under Model
    const p = await model.prepare([{ role: 'user', content: LONG[0].content.slice(0, LONG[0].content.length / 2) }]);
    const args = (cancel?: NativeCancelToken): NativeForwardArgs => ({
      ids: p.inputIds,
      steps: p.seqLength,
      pad: Int32Array.from(p.padding),
      positions: p.positionIds,
      logits: 'last',
      ...(cancel ? { cancel } : {}),
    });
    const fresh = native.modelNewSession(handle, 1, p.seqLength);
    const t0 = performance.now();
    const want = new Float32Array((await native.sessionForward(fresh, args())).logits!.data);
    const ms = performance.now() - t0;
    native.disposeHandle(fresh);

    const session = native.modelNewSession(handle, 1, p.seqLength);
    const token = native.newCancelToken();
    const running = native.sessionForward(session, args(token));
    await sleep(ms / 3);
    native.cancelToken(token, 'abort');
    await expect(running).rejects.toMatchObject({ code: 'E_ABORTED' });
    expect(native.sessionLengths(session)).toEqual([0]);
    const got = new Float32Array((await native.sessionForward(session, args())).logits!.data);
    expect(got).toEqual(want);
    native.disposeHandle(session);
    // A token is set once: the first reason stays, and a call given a set token fails before any work.
    native.cancelToken(token, 'dispose');
    const s2 = native.modelNewSession(handle, 1, p.seqLength);
    await expect(native.sessionForward(s2, args(token))).rejects.toMatchObject({ code: 'E_ABORTED' });
    expect(native.sessionLengths(s2)).toEqual([0]);
    native.disposeHandle(s2);
    expect(() => native.cancelToken(token, 'stop' as 'abort')).toThrow(QwenVLError);
  });
});

describe('dispose() during a call', () => {
  it('rejects running chat and stream calls with E_DISPOSED within a layer; an aborted one stays aborted', async () => {
    const m = await loadModel(deep.dir, { threads: 1, engine: { prefixCacheBytes: 0 } });
    const first = new AbortController();
    const chat = m.chat(LONG, { doSample: false, maxTokens: 2 }).then((value) => ({ value }), (error: unknown) => ({ error }));
    const aborted = m.chat(LONG, { doSample: false, maxTokens: 2, signal: first.signal });
    const streamed: string[] = [];
    const stream = (async () => {
      for await (const c of m.stream(LONG, { doSample: false, maxTokens: 2 })) streamed.push(c);
    })().then(() => ({ error: undefined }), (error: unknown) => ({ error }));
    // Three prefills share the machine now: each runs about three times slower than the reference.
    await sleep(prefillMs / 3);
    const t0 = performance.now();
    first.abort();
    m.dispose();
    expect(m.disposed).toBe(true);
    const [c, s, a] = await Promise.all([chat, stream, aborted]);
    const latency = performance.now() - t0;
    expectCode((c as { error: unknown }).error, 'E_DISPOSED');
    expectCode(s.error, 'E_DISPOSED');
    expect(streamed).toEqual([]);
    expect(a.finishReason).toBe('abort');
    expect(latency, `dispose took ${latency.toFixed(0)} ms; the prefill ${prefillMs.toFixed(0)} ms`).toBeLessThan(prefillMs / 2);
    await expect(m.chat(LONG)).rejects.toMatchObject({ code: 'E_DISPOSED' });
  });

  it('await using: the scope ends once the calls it cancelled have settled', async () => {
    const order: string[] = [];
    let call: Promise<void> | undefined;
    {
      await using m = await loadModel(deep.dir, { threads: 1 });
      call = m.chat(LONG, { maxTokens: 2 }).then(
        () => void order.push('resolved'),
        (e: unknown) => void order.push((e as QwenVLError).code),
      );
      await sleep(prefillMs / 3);
    }
    order.push('scope ended');
    await call;
    expect(order).toEqual(['E_DISPOSED', 'scope ended']);
  });

  it('rejects a running vision encode with E_DISPOSED', async () => {
    const m = await loadModel(deep.dir, { threads: 1, engine: { prefixCacheBytes: 0 } });
    const r = await cancelAfter(() => m.logits(imageInputs), visionMs / 3, () => m.dispose());
    expectCode(r.error, 'E_DISPOSED');
    expect(r.latency).toBeLessThan(visionMs / 4);
  });
});

describe('abort and dispose races', () => {
  it('many aborts and disposes at random moments settle every call as documented and never crash', async () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const ask = [{ role: 'user', content: [{ type: 'image', image: IMG }, { type: 'text', text: 'Describe' }] }];
    const fresh = await (async () => {
      const m = await loadModel(FIXTURE_CHECKPOINT);
      try {
        return await m.chat(ask, { doSample: false, maxTokens: 6 });
      } finally {
        m.dispose();
      }
    })();
    for (let round = 0; round < 3; round++) {
      const m = await loadModel(FIXTURE_CHECKPOINT);
      const calls: Promise<unknown>[] = [];
      const timers: Promise<void>[] = [];
      for (let k = 0; k < 6; k++) {
        const ac = new AbortController();
        const kind = k % 3;
        const call =
          kind === 0
            ? m.chat(ask, { doSample: false, maxTokens: 6, signal: ac.signal })
            : kind === 1
              ? (async () => {
                  let n = 0;
                  for await (const _ of m.stream(ask, { doSample: false, maxTokens: 6, signal: ac.signal })) if (++n > 100) break;
                })()
              : m.encodeImages([IMG], { signal: ac.signal });
        calls.push(call);
        timers.push(sleep(rand() * 60).then(() => ac.abort()));
      }
      const disposeAt = rand() * 80;
      timers.push(sleep(disposeAt).then(() => m.dispose()));
      const settled = await Promise.allSettled(calls);
      await Promise.all(timers);
      for (const s of settled) {
        if (s.status === 'rejected') {
          expect(s.reason).toBeInstanceOf(QwenVLError);
          expect(['E_ABORTED', 'E_DISPOSED']).toContain((s.reason as QwenVLError).code);
        } else if (s.value && typeof s.value === 'object' && 'finishReason' in s.value) {
          const r = s.value as ChatResult;
          // A run that was not cut short gives exactly the fresh tokens; a cut one a prefix of them.
          expect(fresh.tokens.slice(0, r.tokens.length)).toEqual(r.tokens);
          if (r.finishReason !== 'abort') expect(r.tokens).toEqual(fresh.tokens);
        }
      }
      expect(m.disposed).toBe(true);
    }
    const m = await loadModel(FIXTURE_CHECKPOINT);
    try {
      expect((await m.chat(ask, { doSample: false, maxTokens: 6 })).tokens).toEqual(fresh.tokens);
    } finally {
      m.dispose();
    }
  });
});
