// The execution context under a real model (native/core/exec_context.h, arena.h): a session's
// step intermediates come from its scratch arena, which stops growing once warm; results do not
// depend on what the arena held before; a profiled step or vision encode reports its wall time and
// each op family's time inside the kernels' entry points.
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
let other: PreparedInputs;
let batch: PreparedInputs;

beforeAll(async () => {
  model = await loadModel(checkpointDir('qwen3-vl'), { threads: 1 });
  ctx = (model as unknown as { loopContext(c: RequestCancel): LoopContext }).loopContext(new RequestCancel('test'));
  p = await model.prepare([{ role: 'user', content: 'describe the execution context in a few words' }]);
  other = await model.prepare([
    [{ role: 'user', content: 'a different and somewhat longer prompt, to dirty the scratch arena first' }],
    [{ role: 'user', content: 'and its neighbour' }],
  ]);
  // Two rows of different lengths: the short one is left padded (attention leaves its padding
  // queries' rows unwritten, so they must not read stale scratch).
  batch = await model.prepare([[{ role: 'user', content: 'short' }], [{ role: 'user', content: 'the longer of the two prompts in this batch, padded against' }]]);
});
afterAll(() => model?.dispose());

/** Decode step `i` (0-based) of sequence `row` after prompt `prompt`: token 100 + i. */
function decodeArgs(prompt: PreparedInputs, row: number, i: number, profile = false) {
  const pos = prompt.seqLength + i + prompt.ropeDeltas[0];
  return {
    ids: Int32Array.of(100 + i),
    steps: 1,
    positions: Int32Array.of(pos, pos, pos),
    rows: Int32Array.of(row),
    logits: 'last' as const,
    profile,
  };
}

function withSession<T>(batchSize: number, capacity: number, body: (s: NativeHandle) => Promise<T>): Promise<T> {
  const s = native.modelNewSession(ctx.handle, batchSize, capacity);
  return body(s).finally(() => native.disposeHandle(s));
}

describe('execution context', () => {
  it('a warm session takes nothing from the heap for its step intermediates across 20 decode steps', async () => {
    await withSession(1, p.seqLength + 32, async (s) => {
      await native.sessionForward(s, prefillArgs(ctx, p, null, 'last'));
      for (let i = 0; i < 2; i++) await native.sessionForward(s, decodeArgs(p, 0, i));
      const warm = native.sessionScratch(s);
      expect(warm.peakBytes).toBeGreaterThan(0);
      expect(warm.chunks).toBe(1);
      expect(warm.inUseBytes).toBe(0);
      for (let i = 2; i < 22; i++) {
        await native.sessionForward(s, decodeArgs(p, 0, i));
        expect(native.sessionScratch(s).inUseBytes, `after decode step ${i}`).toBe(0);
      }
      expect(native.sessionScratch(s)).toEqual(warm);
    });
  });

  it('results do not depend on what the scratch arena held before (bit-identical logits)', async () => {
    const cap = Math.max(batch.seqLength, other.seqLength) + 8;
    const run = async (s: NativeHandle) => {
      const out: Float32Array[] = [];
      const first = await native.sessionForward(s, prefillArgs(ctx, batch, null, 'all'));
      out.push(new Float32Array(first.logits!.data));
      for (let i = 0; i < 4; i++) {
        const positions = new Int32Array(6);
        for (let b = 0; b < 2; b++) positions[b] = positions[2 + b] = positions[4 + b] = batch.seqLength + i + batch.ropeDeltas[b];
        const r = await native.sessionForward(s, { ids: Int32Array.of(100 + i, 200 + i), steps: 1, positions, logits: 'last' });
        out.push(new Float32Array(r.logits!.data));
      }
      return out;
    };
    const fresh = await withSession(2, cap, run);
    const dirty = await withSession(2, cap, async (s) => {
      // Another batch first: its intermediates are left in the arena's chunk.
      await native.sessionForward(s, prefillArgs(ctx, other, null, 'all'));
      await native.sessionForward(s, decodeArgs(other, 0, 0));
      native.sessionFreeSequence(s, 0);
      native.sessionFreeSequence(s, 1);
      native.sessionAddSequence(s, cap);
      native.sessionAddSequence(s, cap);
      return run(s);
    });
    // Compared as bytes (a deep equality over millions of floats is slow and its diff unreadable).
    expect(dirty.length).toBe(fresh.length);
    const differing = fresh.map((f, i) => (Buffer.from(f.buffer).equals(Buffer.from(dirty[i].buffer)) ? -1 : i)).filter((i) => i >= 0);
    expect(differing, 'steps whose logits differ').toEqual([]);
  });

  it('a profiled step reports each op family inside the step time; an unprofiled one reports nothing', async () => {
    await withSession(1, p.seqLength + 4, async (s) => {
      await native.sessionForward(s, prefillArgs(ctx, p, null, 'last'));
      const plain = await native.sessionForward(s, decodeArgs(p, 0, 0));
      expect(plain.profile).toBeUndefined();
      const r = await native.sessionForward(s, decodeArgs(p, 0, 1, true));
      const prof = r.profile!;
      expect(prof.stepNs).toBeGreaterThan(0);
      for (const op of ['embedding', 'rms_norm', 'matmul', 'rope', 'attention', 'activation', 'rows']) {
        expect(prof.ops[op]?.calls, op).toBeGreaterThan(0);
      }
      const kernelNs = Object.values(prof.ops).reduce((a, o) => a + o.ns, 0);
      expect(kernelNs).toBeGreaterThan(0);
      expect(kernelNs).toBeLessThanOrEqual(prof.stepNs);
    });
  });

  it("a profiled vision encode reports the tower's op families, with the same embeddings as an unprofiled one", async () => {
    const img = await model.processor.processImages([{ data: new Uint8Array(64 * 48 * 3).map((_, i) => (i * 29) & 0xff), width: 64, height: 48 }]);
    const grids = Int32Array.from(img.imageGridThw.flat());
    const plain = await native.modelEncodeVision(ctx.handle, img.pixelValues, img.shape[1], grids, false);
    expect(plain.profile).toBeUndefined();
    const r = await native.modelEncodeVision(ctx.handle, img.pixelValues, img.shape[1], grids, false, undefined, true);
    const prof = r.profile!;
    for (const op of ['matmul', 'attention', 'activation']) expect(prof.ops[op]?.calls, op).toBeGreaterThan(0);
    const kernelNs = Object.values(prof.ops).reduce((a, o) => a + o.ns, 0);
    expect(kernelNs).toBeGreaterThan(0);
    expect(kernelNs).toBeLessThanOrEqual(prof.stepNs);
    expect(Buffer.from(r.embeds.data).equals(Buffer.from(plain.embeds.data))).toBe(true);
  });
});
