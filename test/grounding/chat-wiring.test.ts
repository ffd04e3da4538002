// chat() fills ChatResult.grounding: the reply of each row over THAT row's images, with the
// sizes the processor really used (per-image pixel budgets included). The fixture checkpoints
// have random weights, so their replies hold no boxes: the reply is replaced here, at the one
// call chat() makes (chatGrounding), by a fake one, while everything around it stays real.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as wiring from '../../lib/grounding/chat.js';
import { loadModel, smartResize, type Model } from '../../lib/index.js';
import { checkpointDir, fixtureDir } from '../helpers/fixtures.js';

vi.mock('../../lib/grounding/chat.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../lib/grounding/chat.js')>();
  return { ...real, chatGrounding: vi.fn(real.chatGrounding) };
});

const real = await vi.importActual<typeof import('../../lib/grounding/chat.js')>('../../lib/grounding/chat.js');
const chatGrounding = vi.mocked(wiring.chatGrounding);

const STRIPES = join(fixtureDir('qwen2.5-vl'), 'inputs/stripes_300x200.png'); // 300x200
const NOISE = join(fixtureDir('qwen2-vl'), 'inputs/noise_120x90.png'); // 120x90
/** A raw 333x517 image (awkward on both sides). */
const RAW = { data: new Uint8Array(333 * 517 * 3).fill(90), width: 333, height: 517 };

/** Two conversations: the same stripes image under two budgets, plus other images. */
const conversations = [
  [{ role: 'user', content: [
    { type: 'image', image: STRIPES },
    { type: 'image', image: RAW, maxPixels: 50_176 },
    { type: 'text', text: 'Find the stripes.' },
  ] }],
  [{ role: 'user', content: [
    { type: 'image', image: STRIPES, max_pixels: 12_544 },
    { type: 'image', image: NOISE, minPixels: 100_000 },
    { type: 'text', text: 'Find the stripes.' },
  ] }],
];

describe.each([
  ['qwen2.5-vl', 'resized'],
  ['qwen2-vl', 'relative'],
] as const)('%s: chat() grounding over the prepared images', (family, kind) => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(checkpointDir(family));
  });
  afterAll(() => model?.dispose());

  it('prepare() records each image\'s original and resized size, and its row', async () => {
    const p = await model.prepare(conversations);
    const f = model.processor.config.patchSize * model.processor.config.mergeSize;
    const min = model.processor.config.minPixels, max = model.processor.config.maxPixels;
    const sized = (w: number, h: number, o: { minPixels?: number; maxPixels?: number } = {}) => {
      const [rh, rw] = smartResize(h, w, { factor: f, minPixels: o.minPixels ?? min, maxPixels: o.maxPixels ?? max });
      return { originalWidth: w, originalHeight: h, resizedWidth: rw, resizedHeight: rh };
    };
    expect(p.imageSizes).toEqual([sized(300, 200), sized(333, 517, { maxPixels: 50_176 }), sized(300, 200, { maxPixels: 12_544 }), sized(120, 90, { minPixels: 100_000 })]);
    expect(p.imageRows).toEqual([0, 0, 1, 1]);
    // The grid the model runs on says the same.
    p.imageGridThw.forEach(([, h, w], i) => expect([w * model.processor.config.patchSize, h * model.processor.config.patchSize]).toEqual([p.imageSizes[i].resizedWidth, p.imageSizes[i].resizedHeight]));
    expect(wiring.rowImages(p, 1)).toEqual(p.imageSizes.slice(2));
  });

  it('a fake reply in place of each row\'s: boxes on the right images, in original pixels', async () => {
    const p = await model.prepare(conversations);
    // The stripes box [30, 40, 150, 120] of the 300x200 original, and a point on the second image.
    const reply = (row: number): string => {
      const [a, b] = wiring.rowImages(p, row);
      if (kind === 'relative') {
        return `<|object_ref_start|>stripes<|object_ref_end|><|box_start|>(100,200),(500,600)<|box_end|> and <|box_start|>(500,500)<|box_end|>`;
      }
      const r = (v: number, img: typeof a, axis: 0 | 1) => Math.round(axis === 0 ? (v * img.resizedWidth) / img.originalWidth : (v * img.resizedHeight) / img.originalHeight);
      return JSON.stringify([
        { bbox_2d: [r(30, a, 0), r(40, a, 1), r(150, a, 0), r(120, a, 1)], label: 'stripes' },
        { point_2d: [r(b.originalWidth / 2, b, 0), r(b.originalHeight / 2, b, 1)], image: 2 },
      ]);
    };
    const seen: number[] = [];
    chatGrounding.mockImplementation((fam, tokenizer, prepared, row) => {
      seen.push(row);
      expect(fam).toBe(family);
      expect(prepared.imageSizes).toEqual(p.imageSizes);
      // What chat() hands over for a real reply: the generated ids and the visible text.
      const ids = tokenizer.encode(reply(row));
      return real.chatGrounding(fam, tokenizer, prepared, row, ids, tokenizer.decode(ids, { skipSpecialTokens: true }));
    });
    try {
      const results = await model.chat(conversations, { doSample: false, maxTokens: 2 });
      expect(seen.sort()).toEqual([0, 1]);
      for (const [row, r] of results.entries()) {
        const [a, b] = wiring.rowImages(p, row);
        const g = r.grounding!;
        expect(g).toHaveLength(2);
        expect(g[0].label).toBe('stripes');
        expect(g[0].image).toBe(0);
        expect(g[1].image).toBe(kind === 'relative' ? 0 : 1);
        // Exact on the 0–1000 grid here; within half a resized pixel per axis for Qwen2.5-VL.
        const tol = kind === 'relative' ? [1e-9, 1e-9] : [0.5 * (a.originalWidth / a.resizedWidth), 0.5 * (a.originalHeight / a.resizedHeight)];
        const want = [30, 40, 150, 120];
        g[0].box!.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(tol[i % 2] + 1e-9));
        const target = kind === 'relative' ? a : b;
        expect(g[1].point![0]).toBeCloseTo(target.originalWidth / 2, 0);
      }
    } finally {
      chatGrounding.mockImplementation(real.chatGrounding);
    }
  });

  it('the real random-weight reply has no boxes: no grounding key', async () => {
    const r = await model.chat(conversations[0], { doSample: false, maxTokens: 3 });
    expect(chatGrounding).toHaveBeenCalled();
    expect(r).not.toHaveProperty('grounding');
  });
});
