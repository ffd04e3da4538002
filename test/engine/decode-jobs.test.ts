// Decode runs each layer's q, k and v projections as one matmul_group, and its MLP's gate and up
// as another (ops/matmul_group.h): the op profiler counts a group as one matmul call, so a decode
// step makes 4 per dense layer (qkv, o, gate+up, down) and 1 for the LM head, however many
// sequences the step holds. A layer that went back to one job per projection (7 per layer, and
// 2 more per extra sequence) fails here; the group's numbers are checked by the matmul_group parity suite.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../lib/index.js';
import { native, type NativeHandle } from '../../lib/native/binding.js';
import { checkpointDir } from '../helpers/fixtures.js';

const GREEDY = { doSample: false, temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 };

/** Matmul calls the profiler saw in one decode step of `rows` sequences, after their prefill. */
async function decodeMatmulCalls(model: Model, rows: number): Promise<number> {
  const handle = (model as unknown as { handle: NativeHandle }).handle;
  const p = await model.prepare([{ role: 'user', content: 'Count the jobs.' }]);
  const S = p.seqLength;
  const session = native.modelNewSession(handle, rows, S + 2);
  try {
    const tile = (a: Int32Array, parts: number, len: number) => {
      const out = new Int32Array(a.length * rows);
      for (let j = 0; j < parts; j++) for (let b = 0; b < rows; b++) out.set(a.subarray(j * len, (j + 1) * len), (j * rows + b) * len);
      return out;
    };
    native.sessionSampling(session, { params: Array(rows).fill(GREEDY), seed: 0, history: tile(p.inputIds, 1, S) });
    const r = await native.sessionForward(session, { ids: tile(p.inputIds, 1, S), steps: S, positions: tile(p.positionIds, 3, S), logits: 'sample' });
    const pos = S + p.ropeDeltas[0];
    const d = await native.sessionForward(session, {
      ids: r.tokens!,
      steps: 1,
      positions: new Int32Array(3 * rows).fill(pos),
      logits: 'sample',
      profile: true,
    });
    return d.profile!.ops.matmul.calls;
  } finally {
    native.disposeHandle(session);
  }
}

for (const family of ['qwen2-vl', 'qwen3-vl']) {
  describe(`decode matmul jobs (${family})`, () => {
    let model: Model;
    let layers: number;
    beforeAll(async () => {
      // Grouping needs a second pool thread (one thread runs every part in turn anyway).
      model = await loadModel(checkpointDir(family), { threads: 2 });
      const config = JSON.parse(readFileSync(join(checkpointDir(family), 'config.json'), 'utf8'));
      layers = config.text_config?.num_hidden_layers ?? config.num_hidden_layers;
    });
    afterAll(() => model?.dispose());

    it('one sequence: 4 per layer and the LM head', async () => {
      expect(native.info().threads).toBe(2);
      expect(await decodeMatmulCalls(model, 1)).toBe(4 * layers + 1);
    });

    it('three sequences: still 4 per layer (k and v over every row at once)', async () => {
      expect(await decodeMatmulCalls(model, 3)).toBe(4 * layers + 1);
    });
  });
}
