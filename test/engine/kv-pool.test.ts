// A session's KV pool: one slot per sequence, added, grown and freed independently. A freed
// sequence's id is refused; a grown one keeps what it held; a sequence added later runs on its own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../lib/index.js';
import { RequestCancel } from '../../lib/model/cancel.js';
import { prefillArgs, type LoopContext } from '../../lib/model/generate.js';
import type { PreparedInputs } from '../../lib/model/inputs.js';
import { native, type NativeHandle } from '../../lib/native/binding.js';
import { checkpointDir } from '../helpers/fixtures.js';

let model: Model;
let ctx: LoopContext;
let p: PreparedInputs;
let solo: PreparedInputs;

beforeAll(async () => {
  model = await loadModel(checkpointDir('qwen3-vl'), { threads: 1 });
  ctx = (model as unknown as { loopContext(c: RequestCancel): LoopContext }).loopContext(new RequestCancel('test'));
  const long = [{ role: 'user', content: 'the longer of the two prompts in this batch' }];
  p = await model.prepare([[{ role: 'user', content: 'short' }], long]);
  solo = await model.prepare(long);
});
afterAll(() => model?.dispose());

const maxDiff = (a: Float32Array, b: Float32Array) => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};

/** One decode step of `rows` (token 100 each) after the prompt; the last position's logits. */
async function decode(session: NativeHandle, rows: number[], prompt = p): Promise<Float32Array> {
  const R = rows.length, S = prompt.seqLength;
  const positions = new Int32Array(3 * R);
  rows.forEach((b, i) => (positions[i] = positions[R + i] = positions[2 * R + i] = S + prompt.ropeDeltas[prompt === p ? b : 0]));
  const r = await native.sessionForward(session, { ids: new Int32Array(R).fill(100), steps: 1, positions, rows: Int32Array.from(rows), logits: 'last' });
  return new Float32Array(r.logits!.data);
}

/** Sessions over the two-row batch `p`, one per capacity, each prefilled; disposed after `body`. */
async function withPrefilled(
  capacities: number[],
  kvDtype: 'f32' | 'bf16',
  body: (...sessions: NativeHandle[]) => Promise<void>,
): Promise<void> {
  const sessions = capacities.map((c) => native.modelNewSession(ctx.handle, 2, c, { kvDtype }));
  try {
    for (const s of sessions) await native.sessionForward(s, prefillArgs(ctx, p, null, 'last'));
    await body(...sessions);
  } finally {
    for (const s of sessions) native.disposeHandle(s);
  }
}

describe('KV pool', () => {
  it('stores f32 or bf16, nothing else', () => {
    for (const kvDtype of ['f32', 'bf16'] as const) native.disposeHandle(native.modelNewSession(ctx.handle, 1, 4, { kvDtype }));
    expect(() => native.modelNewSession(ctx.handle, 1, 4, { kvDtype: 'f16' as 'bf16' })).toThrow(/KV storage must be f32 or bf16 \(got f16\)/);
  });

  it('a grown bf16 sequence keeps its keys and values', async () => {
    const S = p.seqLength;
    await withPrefilled([S + 1, S], 'bf16', async (big, tight) => {
      native.sessionGrowSequence(tight, 0, S + 1);
      native.sessionGrowSequence(tight, 1, S + 1);
      expect(await decode(tight, [0, 1])).toEqual(await decode(big, [0, 1]));
    });
  });

  it('a freed sequence leaves the others running and its id is refused', async () => {
    const S = p.seqLength;
    await withPrefilled([S + 2, S + 2], 'f32', async (ref, s) => {
      const want = await decode(ref, [1]);
      native.sessionFreeSequence(s, 0);
      expect(native.sessionLengths(s)).toEqual([null, S]);
      expect(await decode(s, [1])).toEqual(want);
      await expect(decode(s, [0])).rejects.toMatchObject({ code: 'E_INPUT', message: expect.stringMatching(/not in the KV pool|not a live sequence/) });
      expect(() => native.sessionFreeSequence(s, 0)).toThrow(/not in the KV pool/);
      expect(() => native.sessionFreeSequence(s, 7)).toThrow(/not in the KV pool/);
    });
  });

  it('a full sequence overflows, and grown it continues exactly as one made large enough', async () => {
    const S = p.seqLength;
    await withPrefilled([S + 3, S], 'f32', async (big, tight) => {
      await expect(decode(tight, [0, 1])).rejects.toMatchObject({ code: 'E_CONTEXT_OVERFLOW' });
      native.sessionGrowSequence(tight, 0, S + 3);
      native.sessionGrowSequence(tight, 1, S + 3);
      expect(native.sessionLengths(tight)).toEqual([S, S]);
      expect(await decode(tight, [0, 1])).toEqual(await decode(big, [0, 1]));
      expect(() => native.sessionGrowSequence(tight, 0, S)).toThrow(/cannot shrink/);
    });
  });

  it('a sequence added to a running session computes what it would alone', async () => {
    const S = p.seqLength, T = solo.seqLength;
    const alone = native.modelNewSession(ctx.handle, 1, T + 1);
    const s = native.modelNewSession(ctx.handle, 2, S + 1);
    try {
      const wantPrefill = new Float32Array((await native.sessionForward(alone, prefillArgs(ctx, solo, null, 'last'))).logits!.data);
      const wantDecode = await decode(alone, [0], solo);
      await native.sessionForward(s, prefillArgs(ctx, p, null, 'last'));
      const id = native.sessionAddSequence(s, T + 1);
      expect(id).toBe(2);
      const got = await native.sessionForward(s, { ...prefillArgs(ctx, solo, null, 'last'), rows: Int32Array.of(id) });
      expect(new Float32Array(got.logits!.data)).toEqual(wantPrefill);
      expect(await decode(s, [id], solo)).toEqual(wantDecode);
      expect(native.sessionLengths(s)).toEqual([S, S, T + 1]);
      // The batch's own rows are unaffected by the newcomer.
      await withPrefilled([S + 1], 'f32', async (ref) => {
        expect(maxDiff(await decode(s, [0, 1]), await decode(ref, [0, 1]))).toBe(0);
      });
    } finally {
      native.disposeHandle(alone);
      native.disposeHandle(s);
    }
  });
});
