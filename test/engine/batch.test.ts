// A forward over a batch description: sequences contribute different numbers of tokens (a decode
// token beside a prefill chunk), and logits come only for the tokens flagged as needing them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../lib/index.js';
import { RequestCancel } from '../../lib/model/cancel.js';
import { prefillArgs, type LoopContext } from '../../lib/model/generate.js';
import type { PreparedInputs } from '../../lib/model/inputs.js';
import { native } from '../../lib/native/binding.js';
import { checkpointDir } from '../helpers/fixtures.js';

let model: Model;
let ctx: LoopContext;
let a: PreparedInputs;
let b: PreparedInputs;

beforeAll(async () => {
  model = await loadModel(checkpointDir('qwen2.5-vl'), { threads: 1 });
  ctx = (model as unknown as { loopContext(c: RequestCancel): LoopContext }).loopContext(new RequestCancel('test'));
  a = await model.prepare([{ role: 'user', content: 'the first sequence, already running' }]);
  b = await model.prepare([{ role: 'user', content: 'a second one that joins while the first decodes' }]);
});
afterAll(() => model?.dispose());

/** Positions [3][count] of tokens [from, from + count) of a single-row prompt. */
function positionsOf(p: PreparedInputs, from: number, count: number): Int32Array {
  const S = p.seqLength, out = new Int32Array(3 * count);
  for (let d = 0; d < 3; d++) out.set(p.positionIds.subarray(d * S + from, d * S + from + count), d * count);
  return out;
}

const relDiff = (x: Float32Array, y: Float32Array) => {
  let d = 0, m = 0;
  for (let i = 0; i < x.length; i++) {
    d = Math.max(d, Math.abs(x[i] - y[i]));
    m = Math.max(m, Math.abs(y[i]));
  }
  return d / m;
};

describe('batch description', () => {
  it('a decode token and a prefill chunk in one forward give what each gives alone', async () => {
    const SA = a.seqLength, SB = b.seqLength, DEC = 77;
    const decodePos = Int32Array.of(SA + a.ropeDeltas[0], SA + a.ropeDeltas[0], SA + a.ropeDeltas[0]);
    // Alone: a's prefill then one decode token; b's prefill.
    const sa = native.modelNewSession(ctx.handle, 1, SA + 1);
    await native.sessionForward(sa, prefillArgs(ctx, a, null, 'last'));
    const wantA = new Float32Array((await native.sessionForward(sa, { ids: Int32Array.of(DEC), steps: 1, positions: decodePos, logits: 'last' })).logits!.data);
    native.disposeHandle(sa);
    const sb = native.modelNewSession(ctx.handle, 1, SB);
    const wantB = new Float32Array((await native.sessionForward(sb, prefillArgs(ctx, b, null, 'last'))).logits!.data);
    native.disposeHandle(sb);

    // Together: a is running; b is added and its first chunk (half its prompt) rides with a's
    // decode token; then its second chunk alone.
    const s = native.modelNewSession(ctx.handle, 1, SA + 1);
    try {
      await native.sessionForward(s, prefillArgs(ctx, a, null, 'last'));
      const idB = native.sessionAddSequence(s, SB);
      const half = Math.floor(SB / 2);
      const pb = positionsOf(b, 0, half);
      const positions = new Int32Array(3 * (1 + half));
      for (let d = 0; d < 3; d++) {
        positions[d * (1 + half)] = decodePos[d];
        positions.set(pb.subarray(d * half, (d + 1) * half), d * (1 + half) + 1);
      }
      const needsLogits = new Uint8Array(1 + half);
      needsLogits[0] = 1; // a's decode token; b's chunk needs none yet
      const mixed = await native.sessionForward(s, {
        ids: Int32Array.from([DEC, ...b.inputIds.subarray(0, half)]),
        counts: Int32Array.of(1, half),
        rows: Int32Array.of(0, idB),
        positions,
        needsLogits,
        logits: 'flagged',
      });
      expect(mixed.logits!.shape).toEqual([1, wantA.length]);
      expect(relDiff(new Float32Array(mixed.logits!.data), wantA)).toBeLessThan(1e-5);
      expect(native.sessionLengths(s)).toEqual([SA + 1, half]);
      const rest = await native.sessionForward(s, {
        ids: b.inputIds.slice(half),
        counts: Int32Array.of(SB - half),
        rows: Int32Array.of(idB),
        positions: positionsOf(b, half, SB - half),
        logits: 'last',
      });
      expect(relDiff(new Float32Array(rest.logits!.data), wantB)).toBeLessThan(1e-5);
      expect(native.sessionLengths(s)).toEqual([SA + 1, SB]);
    } finally {
      native.disposeHandle(s);
    }
  });

  it('refuses descriptions that do not add up', async () => {
    const s = native.modelNewSession(ctx.handle, 2, 8);
    try {
      const pos = new Int32Array(9);
      expect(() => native.sessionForward(s, { ids: new Int32Array(3), counts: Int32Array.of(1, 0), positions: pos })).toThrow(/counts\[1\] must be >= 1/);
      expect(() => native.sessionForward(s, { ids: new Int32Array(3), counts: Int32Array.of(1, 2, 3), positions: pos })).toThrow(/counts/);
      expect(() => native.sessionForward(s, { ids: new Int32Array(2), counts: Int32Array.of(1, 2), positions: pos })).toThrow(/ids/);
      expect(() =>
        native.sessionForward(s, { ids: new Int32Array(3), counts: Int32Array.of(1, 2), positions: pos, logits: 'flagged', needsLogits: new Uint8Array(2) }),
      ).toThrow(/needsLogits/);
      await expect(native.sessionForward(s, { ids: new Int32Array(10), counts: Int32Array.of(1, 9), positions: new Int32Array(30) })).rejects.toMatchObject({
        code: 'E_CONTEXT_OVERFLOW',
      });
    } finally {
      native.disposeHandle(s);
    }
  });
});
