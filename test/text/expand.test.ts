import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { QwenVLError } from '../../lib/errors.js';
import { ChatTemplate, type ChatMessage } from '../../lib/text/chat-template.js';
import { expandVisionPlaceholders, formatFixed1, qwen3VideoTimestamps } from '../../lib/text/expand.js';
import { batchRow, encodeBatch, padBatch } from '../../lib/text/batch.js';
import { QwenTokenizer } from '../../lib/text/tokenizer.js';
import { checkpointOf, fixtureCases, fixtureFamilies, isQwen3, mergeSizes, readInt64Rows, type FixtureCase } from './fixture-data.js';

const families = fixtureFamilies();
const tokenizers = new Map<string, QwenTokenizer>();

beforeAll(async () => {
  for (const f of families) tokenizers.set(f, await QwenTokenizer.load(checkpointOf(f)));
});

/** Renders, expands, tokenizes and pads a fixture case the way the processor did. */
async function pipeline(c: FixtureCase) {
  const tok = tokenizers.get(c.family)!;
  const template = await ChatTemplate.fromDirectory(c.checkpoint, tok.specialTokensMap);
  const prompts = template.renderBatch(c.meta.conversations as unknown as ChatMessage[][], { addGenerationPrompt: true });
  const merge = mergeSizes(c.checkpoint);
  const qwen3 = isQwen3(c.checkpoint);
  const expanded = expandVisionPlaceholders(prompts, {
    imageGridThw: c.meta.image_grid_thw ?? undefined,
    videoGridThw: c.meta.video_grid_thw ?? undefined,
    mergeSize: merge.image,
    videoMergeSize: merge.video,
    videoStyle: qwen3 ? 'qwen3' : 'qwen2',
    // the fixtures pass pre-sampled frames with metadata: frame indices 0..n-1 at the video's fps
    videoTimestamps: c.meta.videos.map((v) =>
      qwen3VideoTimestamps(
        v.frames.map((_, i) => i),
        v.fps,
        merge.video,
      ),
    ),
  });
  const batch = encodeBatch(tok, expanded, { side: c.meta.padding_side === 'right' ? 'right' : 'left' });
  return { tok, prompts, expanded, batch };
}

describe('fixtures: chat template -> expansion -> ids -> padded batch equals the processor output', () => {
  it('has fixtures', () => expect(families.length).toBeGreaterThan(0));
  for (const family of families) {
    describe(family, () => {
      for (const c of fixtureCases(family)) {
        it(c.name, async () => {
          const { tok, prompts, expanded, batch } = await pipeline(c);
          expect(prompts).toEqual(c.meta.prompt_texts);
          const pad = tok.idToToken(tok.specialIds.pad!)!;
          expanded.forEach((text, b) => {
            const padCount = batch.seqLength - batch.lengths[b];
            const leftPad = c.meta.padding_side === 'right' ? '' : pad.repeat(padCount);
            const rightPad = c.meta.padding_side === 'right' ? pad.repeat(padCount) : '';
            expect(leftPad + text + rightPad).toBe(c.meta.expanded_prompt_texts[b]);
          });
          expect(batch.batchSize).toBe(c.meta.batch_size);
          expect(batch.seqLength).toBe(c.meta.seq_len);
          const rows = Array.from({ length: batch.batchSize }, (_, b) => Array.from(batchRow(batch, b)));
          expect(rows).toEqual(c.meta.input_ids);
          const tensors = join(c.dir, 'tensors.safetensors');
          expect(rows).toEqual(readInt64Rows(tensors, 'input_ids'));
          const mask = Array.from({ length: batch.batchSize }, (_, b) =>
            Array.from(batch.attentionMask.subarray(b * batch.seqLength, (b + 1) * batch.seqLength)),
          );
          expect(mask).toEqual(readInt64Rows(tensors, 'attention_mask'));
          // number of vision tokens = sum of t*h*w / merge^2
          const merge = mergeSizes(c.checkpoint);
          const count = (id: number) => rows.flat().filter((x) => x === id).length;
          const want = (grids: number[][] | null, m: number) => (grids ?? []).reduce((n, [t, h, w]) => n + (t * h * w) / (m * m), 0);
          expect(count(tok.specialIds.imagePad!)).toBe(want(c.meta.image_grid_thw, merge.image));
          expect(count(tok.specialIds.videoPad!)).toBe(want(c.meta.video_grid_thw, merge.video));
        });
      }
    });
  }
});

describe('placeholder expansion', () => {
  const V = '<|vision_start|>';
  const E = '<|vision_end|>';
  const I = '<|image_pad|>';
  const D = '<|video_pad|>';

  it('consumes image grids in order across batch rows', () => {
    const out = expandVisionPlaceholders([`a${V}${I}${E}b${V}${I}${E}`, `c${V}${I}${E}`], {
      imageGridThw: [
        [1, 2, 2],
        [1, 4, 2],
        [1, 2, 6],
      ],
    });
    expect(out).toEqual([`a${V}${I}${E}b${V}${I.repeat(2)}${E}`, `c${V}${I.repeat(3)}${E}`]);
  });

  it('Qwen2-style video: t*h*w/merge² pads', () => {
    const out = expandVisionPlaceholders([`${V}${D}${E}x`], { videoGridThw: [[3, 4, 4]] });
    expect(out).toEqual([`${V}${D.repeat(12)}${E}x`]);
  });

  it('Qwen3-style video: timestamps before each temporal group', () => {
    const out = expandVisionPlaceholders([`u${V}${D}${E}q`], {
      videoGridThw: [[3, 2, 4]],
      videoStyle: 'qwen3',
      videoTimestamps: [[0.25, 1.25, 2.75]],
    });
    const frame = `${V}${D.repeat(2)}${E}`;
    expect(out).toEqual([`u<0.2 seconds>${frame}<1.2 seconds>${frame}<2.8 seconds>${frame}q`]);
    // a bare pad token (no vision_start/end around it) is replaced the same way
    const bare = expandVisionPlaceholders([`u${D}q`], { videoGridThw: [[1, 2, 2]], videoStyle: 'qwen3', videoTimestamps: [[0]] });
    expect(bare).toEqual([`u<0.0 seconds>${V}${D}${E}q`]);
  });

  it('rejects placeholder/grid count mismatches and bad grids', () => {
    const expectInput = (f: () => unknown, re: RegExp) => {
      try {
        f();
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(QwenVLError);
        expect((e as QwenVLError).code).toBe('E_INPUT');
        expect((e as QwenVLError).message).toMatch(re);
      }
    };
    expectInput(() => expandVisionPlaceholders([`${I}${I}`], { imageGridThw: [[1, 2, 2]] }), /2 <\|image_pad\|> placeholder/);
    expectInput(() => expandVisionPlaceholders([`x`], { videoGridThw: [[1, 2, 2]] }), /0 <\|video_pad\|>/);
    expectInput(() => expandVisionPlaceholders([I], { imageGridThw: [[1, 3, 3]] }), /multiple of merge/);
    expectInput(() => expandVisionPlaceholders([I], { imageGridThw: [[1, 2]] }), /three positive integers/);
    expectInput(
      () => expandVisionPlaceholders([D], { videoGridThw: [[2, 2, 2]], videoStyle: 'qwen3', videoTimestamps: [[0]] }),
      /at least 2 timestamps/,
    );
  });

  it('formats timestamps like Python f"{x:.1f}" (ties to even on the exact binary value)', () => {
    const cases: [number, string][] = [
      [0.25, '0.2'], [0.75, '0.8'], [1.25, '1.2'], [0.05, '0.1'], [0.15, '0.1'], [0.35, '0.3'], [0.45, '0.5'],
      [2.5, '2.5'], [1e-20, '0.0'], [-0.25, '-0.2'], [-0, '-0.0'], [0.95, '0.9'], [9.95, '9.9'], [1 / 3, '0.3'],
      [12345.25, '12345.2'], [12345.75, '12345.8'], [0.125, '0.1'], [3.05, '3.0'], [0, '0.0'],
    ];
    for (const [x, s] of cases) expect(formatFixed1(x), String(x)).toBe(s);
  });

  it('timestamps: mean of first and last frame time of each group, last frame repeated to fill', () => {
    expect(qwen3VideoTimestamps([0, 1, 2, 3, 4, 5, 6, 7], 2)).toEqual([0.25, 1.25, 2.25, 3.25]);
    expect(qwen3VideoTimestamps([0, 4, 8], 24)).toEqual([(0 + 4 / 24) / 2, 8 / 24]);
    expect(qwen3VideoTimestamps([0, 1, 2, 3], 1, 4)).toEqual([1.5]);
    expect(() => qwen3VideoTimestamps([], 2)).toThrow(QwenVLError);
  });
});

describe('batching', () => {
  it('pads left or right with the attention mask', () => {
    const left = padBatch([[1, 2, 3], [4]], { padId: 0 });
    expect(Array.from(left.inputIds)).toEqual([1, 2, 3, 0, 0, 4]);
    expect(Array.from(left.attentionMask)).toEqual([1, 1, 1, 0, 0, 1]);
    expect(left.lengths).toEqual([3, 1]);
    const right = padBatch([[1, 2, 3], [4]], { padId: 9, side: 'right', minLength: 4 });
    expect(Array.from(right.inputIds)).toEqual([1, 2, 3, 9, 4, 9, 9, 9]);
    expect(Array.from(right.attentionMask)).toEqual([1, 1, 1, 0, 1, 0, 0, 0]);
    expect(() => padBatch([], { padId: 0 })).toThrow(QwenVLError);
    expect(() => padBatch([[1.5]], { padId: 0 })).toThrow(/not a token id/);
    expect(() => batchRow(left, 2)).toThrow(QwenVLError);
  });
});
