import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QwenVLError } from '../../lib/errors.js';
import { decodePosition, getRopeIndex, ropeIndexOptions, type RopeIndexOptions } from '../../lib/families/rope-index.js';
import { loadModelConfig } from '../../lib/model/config.js';
import { fixtureCaseRefs, fixtureFolders } from '../helpers/fixtures.js';
import { readSafetensors } from '../helpers/read-safetensors.js';

function rows(data: number[], shape: number[]): number[][] {
  const [b, s] = shape;
  return Array.from({ length: b }, (_, i) => data.slice(i * s, (i + 1) * s));
}

function grids(data: number[] | undefined): number[][] | null {
  if (data === undefined) return null;
  return Array.from({ length: data.length / 3 }, (_, i) => data.slice(i * 3, i * 3 + 3));
}

describe('getRopeIndex against transformers reference tensors', () => {
  for (const { family } of fixtureFolders()) {
    describe(family, () => {
      for (const { name, root, dir } of fixtureCaseRefs(family)) {
        it(name, async () => {
          const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as {
            image_grid_thw: number[][] | null;
            video_grid_thw: number[][] | null;
            second_per_grid_ts: number[] | null;
            rope_deltas: number[][];
          };
          const t = readSafetensors(join(dir, 'tensors.safetensors'), [
            'input_ids', 'attention_mask', 'image_grid_thw', 'video_grid_thw', 'position_ids', 'rope_deltas',
          ]);
          const ids = t.get('input_ids')!;
          const [batch, seq] = ids.shape;
          const imageGrids = grids(t.get('image_grid_thw')?.data) ?? meta.image_grid_thw;
          const videoGrids = grids(t.get('video_grid_thw')?.data) ?? meta.video_grid_thw;
          expect(imageGrids).toEqual(meta.image_grid_thw);
          expect(videoGrids).toEqual(meta.video_grid_thw);

          const cfg = await loadModelConfig(join(root, 'checkpoint'));
          const options = ropeIndexOptions(cfg, meta.second_per_grid_ts);
          const got = getRopeIndex(
            rows(ids.data, ids.shape),
            rows(t.get('attention_mask')!.data, ids.shape),
            imageGrids,
            videoGrids,
            options,
          );

          const ref = t.get('position_ids')!;
          expect(ref.shape).toEqual([3, batch, seq]);
          const flat: number[] = [];
          for (let a = 0; a < 3; a++) for (let b = 0; b < batch; b++) flat.push(...got.positionIds[a][b]);
          expect(flat).toEqual(ref.data);
          expect(got.ropeDeltas).toEqual(t.get('rope_deltas')!.data);
          expect(got.ropeDeltas.map((d) => [d])).toEqual(meta.rope_deltas);

          // The first decoded token continues right after the prompt's largest position.
          for (let b = 0; b < batch; b++) {
            let max = -Infinity;
            for (let a = 0; a < 3; a++) max = Math.max(max, ...got.positionIds[a][b]);
            expect(decodePosition(seq, got.ropeDeltas[b])).toBe(max + 1);
          }
        });
      }
    });
  }
});

const VS = 151652;
const VE = 151653;
const IMG = 151655;
const VID = 151656;
const opts = (kind: RopeIndexOptions['kind'], extra: Partial<RopeIndexOptions> = {}): RopeIndexOptions => ({
  kind, spatialMergeSize: 2, imageTokenId: IMG, videoTokenId: VID, visionStartTokenId: VS, ...extra,
});

/** Positions of row `b` as [t, h, w] triples, for readable expectations. */
function triples(r: ReturnType<typeof getRopeIndex>, b = 0): number[][] {
  return Array.from(r.positionIds[0][b], (_, s) => [r.positionIds[0][b][s], r.positionIds[1][b][s], r.positionIds[2][b][s]]);
}
const text = (...ps: number[]) => ps.map((p) => [p, p, p]);

describe('getRopeIndex hand-made cases', () => {
  it('two images of different grids (Qwen2-VL)', () => {
    const ids = [[10, VS, IMG, IMG, IMG, IMG, VE, 11, VS, IMG, IMG, VE, 12]];
    const r = getRopeIndex(ids, null, [[1, 4, 4], [1, 2, 4]], null, opts('qwen2_vl'));
    expect(triples(r)).toEqual([
      ...text(0, 1),
      [2, 2, 2], [2, 2, 3], [2, 3, 2], [2, 3, 3],
      ...text(4, 5, 6),
      [7, 7, 7], [7, 7, 8],
      ...text(9, 10),
    ]);
    expect(r.ropeDeltas).toEqual([11 - 13]);
  });

  const videoThenImage = [[5, VS, VID, VID, VID, VID, VE, VS, IMG, VE]];

  it('video then image (Qwen2-VL: temporal index = grid step)', () => {
    const r = getRopeIndex(videoThenImage, null, [[1, 2, 2]], [[2, 2, 4]], opts('qwen2_vl'));
    expect(triples(r)).toEqual([...text(0, 1), [2, 2, 2], [2, 2, 3], [3, 2, 2], [3, 2, 3], ...text(4, 5), [6, 6, 6], ...text(7)]);
    expect(r.ropeDeltas).toEqual([-2]);
  });

  it('video then image (Qwen2.5-VL: grid step × seconds × tokens_per_second)', () => {
    const r = getRopeIndex(videoThenImage, null, [[1, 2, 2]], [[2, 2, 4]], opts('qwen2_5_vl', { tokensPerSecond: 2, secondPerGridTs: [1.0] }));
    expect(triples(r)).toEqual([...text(0, 1), [2, 2, 2], [2, 2, 3], [4, 2, 2], [4, 2, 3], ...text(5, 6), [7, 7, 7], ...text(8)]);
    expect(r.ropeDeltas).toEqual([-1]);
    // Absent second_per_grid_ts means 1 s per step.
    expect(getRopeIndex(videoThenImage, null, [[1, 2, 2]], [[2, 2, 4]], opts('qwen2_5_vl', { tokensPerSecond: 2 }))).toEqual(r);
    // transformers 4.57 casts second_per_grid_t to int64 first: 0.5 s per step collapses to 0, 2.5 to 2.
    const half = getRopeIndex(videoThenImage, null, [[1, 2, 2]], [[2, 2, 4]], opts('qwen2_5_vl', { tokensPerSecond: 2, secondPerGridTs: [0.5] }));
    expect(triples(half).slice(2, 6)).toEqual([[2, 2, 2], [2, 2, 3], [2, 2, 2], [2, 2, 3]]);
    const slow = getRopeIndex(videoThenImage, null, [[1, 2, 2]], [[2, 2, 4]], opts('qwen2_5_vl', { tokensPerSecond: 2, secondPerGridTs: [2.5] }));
    expect(triples(slow).slice(2, 6)).toEqual([[2, 2, 2], [2, 2, 3], [6, 2, 2], [6, 2, 3]]);
  });

  it('video then image (Qwen3-VL: one grid per frame group, timestamps are text)', () => {
    const ids = [[5, VS, VID, VID, VE, 6, VS, VID, VID, VE, VS, IMG, VE]];
    const r = getRopeIndex(ids, null, [[1, 2, 2]], [[2, 2, 4]], opts('qwen3_vl'));
    expect(triples(r)).toEqual([
      ...text(0, 1), [2, 2, 2], [2, 2, 3], ...text(4, 5, 6), [7, 7, 7], [7, 7, 8], ...text(9, 10), [11, 11, 11], ...text(12),
    ]);
    expect(r.ropeDeltas).toEqual([0]);
  });

  it('text only, with and without left padding', () => {
    const plain = getRopeIndex([[1, 2, 3, 4]], null, null, null, opts('qwen2_vl'));
    expect(triples(plain)).toEqual(text(0, 1, 2, 3));
    expect(plain.ropeDeltas).toEqual([0]);
    const padded = getRopeIndex([[0, 0, 1, 2, 3], [1, 2, 3, 4, 5]], [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], null, null, opts('qwen3_vl'));
    expect(triples(padded, 0)).toEqual(text(1, 1, 0, 1, 2));
    expect(triples(padded, 1)).toEqual(text(0, 1, 2, 3, 4));
    expect(padded.ropeDeltas).toEqual([-2, 0]);
  });

  it('batch with left padding: padding holds 1, images are consumed across rows in order', () => {
    const P = 151643;
    const ids = [
      [P, P, 10, VS, IMG, VE, 11],
      [10, VS, IMG, IMG, VE, 11, 12],
    ];
    const mask = [[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]];
    const r = getRopeIndex(ids, mask, [[1, 2, 2], [1, 2, 4]], null, opts('qwen2_vl'));
    expect(triples(r, 0)).toEqual([...text(1, 1, 0, 1), [2, 2, 2], ...text(3, 4)]);
    expect(triples(r, 1)).toEqual([...text(0, 1), [2, 2, 2], [2, 2, 3], ...text(4, 5, 6)]);
    expect(r.ropeDeltas).toEqual([5 - 7, 0]);
    expect(decodePosition(7, r.ropeDeltas[0])).toBe(5);
  });

  it('rows without vision tokens in a vision batch count on', () => {
    const r = getRopeIndex([[1, 2, 3], [VS, IMG, VE]], null, [[1, 2, 2]], null, opts('qwen2_vl'));
    expect(triples(r, 0)).toEqual(text(0, 1, 2));
    expect(triples(r, 1)).toEqual([...text(0), [1, 1, 1], ...text(2)]);
  });

  it('rejects inconsistent inputs with E_INPUT', () => {
    const bad = (f: () => unknown, re: RegExp) => {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(QwenVLError);
      expect((err as QwenVLError).code).toBe('E_INPUT');
      expect((err as QwenVLError).message).toMatch(re);
    };
    const o = opts('qwen2_vl');
    bad(() => getRopeIndex([[1, 2], [1]], null, null, null, o), /row 1 has 1 tokens/);
    bad(() => getRopeIndex([[1, 2]], [[1, 2]], null, null, o), /expected 0 or 1/);
    bad(() => getRopeIndex([[1, 2]], [[1, 1], [1, 1]], null, null, o), /2 rows for 1 rows/);
    bad(() => getRopeIndex([[VS, IMG, VE]], null, [], null, o), /more images than imageGridThw/);
    bad(() => getRopeIndex([[VS, IMG, VE]], null, [[1, 4, 4]], null, o), /fewer placeholder tokens/);
    bad(() => getRopeIndex([[VS, IMG, VE]], null, [[1, 2]], null, o), /must be \(t, h, w\)/);
    bad(() => getRopeIndex([[VS, IMG, VE]], null, [[1, 1, 2]], null, o), /smaller than one merged token/);
    bad(() => getRopeIndex([[1, VS]], null, [[1, 2, 2]], null, o), /ends with a vision_start/);
    bad(() => getRopeIndex([[0, 1]], [[0, 0]], [[1, 2, 2]], null, o), /no unpadded tokens/);
  });
});
