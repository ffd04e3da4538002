// Qwen2.5-VL: JSON in pixels of the RESIZED image; mapped back per axis and per image.
import { describe, expect, it } from 'vitest';
import { parseGrounding, QwenVLError } from '../../lib/index.js';
import { BUDGETS, SIZES, boxIn, imageUnder, toResized } from './helpers.js';

const family = 'qwen2.5-vl';

describe('Qwen2.5-VL grounding (resized-image pixels)', () => {
  it.each(SIZES)('a box of a %ix%i image comes back in original pixels under every pixel budget', (w, h) => {
    const truth = boxIn(w, h);
    const seen = new Set<string>();
    for (const budget of BUDGETS) {
      const img = imageUnder(w, h, budget);
      seen.add(`${img.resizedWidth}x${img.resizedHeight}`);
      const [x1, y1, x2, y2] = toResized(truth, img);
      const reply = `\`\`\`json\n[\n  {"bbox_2d": [${x1}, ${y1}, ${x2}, ${y2}], "label": "thing"}\n]\n\`\`\``;
      const r = parseGrounding(reply, { family, images: [img] });
      expect(r.warnings).toEqual([]);
      expect(r.items).toHaveLength(1);
      const { box, label, image } = r.items[0];
      expect(label).toBe('thing');
      expect(image).toBe(0);
      // The model's integer pixels of the resized image are off by at most half a resized pixel.
      const tol = [0.5 * (w / img.resizedWidth), 0.5 * (h / img.resizedHeight)];
      box!.forEach((v, i) => expect(Math.abs(v - truth[i])).toBeLessThanOrEqual(tol[i % 2] + 1e-9));
    }
    // The budgets really gave different resized sizes (except for images too small to shrink).
    if (w * h > 200_704) expect(seen.size).toBeGreaterThan(1);
  });

  it('scales each axis by its own ratio (a 1000x37 strip resized to 1008x28)', () => {
    const img = imageUnder(1000, 37, BUDGETS[0]);
    expect([img.resizedWidth, img.resizedHeight]).toEqual([1008, 28]);
    const r = parseGrounding('{"bbox_2d": [504, 14, 1008, 28]}', { family, images: [img] });
    expect(r.items[0].box).toEqual([500, 18.5, 1000, 37]);
  });

  it('points, swapped corners, prose around, and corners past the edge (clamped, with a warning)', () => {
    const img = imageUnder(333, 517, BUDGETS[0]); // 336x504
    const reply = 'Here you go: [{"point_2d": [168, 252], "label": "centre"}, {"bbox_2d": [300, 400, 30, 40], "label": "swapped"}, ' +
      '{"bbox_2d": [-10, 0, 400, 600]}] Hope that helps!';
    const r = parseGrounding(reply, { family, images: [img] });
    expect(r.items.map((i) => i.label)).toEqual(['centre', 'swapped', undefined]);
    expect(r.items[0].point![0]).toBeCloseTo(166.5, 9);
    expect(r.items[0].point![1]).toBeCloseTo(258.5, 9);
    const [x1, y1, x2, y2] = r.items[1].box!;
    expect(x1).toBeCloseTo((30 * 333) / 336, 9);
    expect(y1).toBeCloseTo((40 * 517) / 504, 9);
    expect(x2).toBeCloseTo((300 * 333) / 336, 9);
    expect(y2).toBeCloseTo((400 * 517) / 504, 9);
    expect(r.items[2].box).toEqual([0, 0, 333, 517]);
    expect(r.warnings).toEqual([expect.stringMatching(/clamped/)]);
  });

  it('a reply cut off mid-list keeps its complete objects', () => {
    const img = imageUnder(333, 517, BUDGETS[0]);
    const reply = '```json\n[\n  {"bbox_2d": [10, 20, 30, 40], "label": "a"},\n  {"bbox_2d": [50, 60, 70, 80], "label": "b"},\n  {"bbox_2d": [90, 100, 1';
    const r = parseGrounding(reply, { family, images: [img] });
    expect(r.items.map((i) => i.label)).toEqual(['a', 'b']);
    expect(r.warnings).toEqual([expect.stringMatching(/cut off/)]);
    // Cut inside the label string of the last one: still left out (not complete).
    const r2 = parseGrounding('[{"bbox_2d": [10, 20, 30, 40], "label": "a"}, {"bbox_2d": [50, 60, 70, 80], "label": "b', { family, images: [img] });
    expect(r2.items.map((i) => i.label)).toEqual(['a']);
  });

  it('several images: the index each item names, under a different budget per image', () => {
    const a = imageUnder(333, 517, BUDGETS[0]);
    const b = imageUnder(4001, 2999, BUDGETS[2]);
    const ta = boxIn(333, 517), tb = boxIn(4001, 2999);
    const reply = JSON.stringify([
      { bbox_2d: toResized(tb, b), label: 'in b', image_index: 1 },
      { bbox_2d: toResized(ta, a), label: 'in a', image: 1 },
      { point_2d: [5, 5], label: 'b again', picture: 'Picture 2' },
      { bbox_2d: [1, 1, 2, 2], image: 3 },
    ]);
    const r = parseGrounding(reply, { family, images: [a, b] });
    expect(r.items.map((i) => [i.label, i.image])).toEqual([['in b', 1], ['in a', 0], ['b again', 1]]);
    expect(r.items[0].box![2]).toBeCloseTo(tb[2], -1);
    expect(r.items[1].box![2]).toBeCloseTo(ta[2], 0);
    expect(r.warnings).toEqual([expect.stringMatching(/image 2 named, but the request has 2/)]);
  });

  it('needs the resized sizes, and checks its options (E_INPUT), but never throws on a reply', () => {
    const bad = (f: () => unknown, re: RegExp) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(QwenVLError);
        expect((e as QwenVLError).code).toBe('E_INPUT');
        expect((e as Error).message).toMatch(re);
        return;
      }
      throw new Error('did not throw');
    };
    bad(() => parseGrounding('[]', { family, images: [{ originalWidth: 10, originalHeight: 10 }] }), /resizedWidth/);
    bad(() => parseGrounding('[]', { family: 'llava', images: [] }), /family/);
    bad(() => parseGrounding('[]', undefined as never), /required/);
    bad(() => parseGrounding(42 as never, { family, images: [] }), /reply/);
    bad(() => parseGrounding('[]', { family, images: [{ originalWidth: -1, originalHeight: 2, resizedWidth: 28, resizedHeight: 28 }] }), /originalWidth/);
    const img = imageUnder(333, 517, BUDGETS[0]);
    for (const garbage of ['', '{', '[[[[[[', '{"bbox_2d": "x"}', '{"bbox_2d": [1, 2, 3]}', '{"point_2d": [NaN, 1]}', '}}]]{{[[', '\u0000\uffff"\\', '[{"bbox_2d": [5, 5, 5, 9]}]']) {
      const r = parseGrounding(garbage, { family, images: [img] });
      expect(r.items).toEqual([]);
    }
    expect(parseGrounding('{"bbox_2d": [1, 2, 3]}', { family, images: [img] }).warnings).toEqual([expect.stringMatching(/not four numbers/)]);
    expect(parseGrounding('[{"bbox_2d": [5, 5, 5, 9]}]', { family, images: [img] }).warnings).toEqual([expect.stringMatching(/no area/)]);
    // Boxes without an image to place them on.
    expect(parseGrounding('{"bbox_2d": [1, 2, 3, 4]}', { family, images: [] })).toEqual({ items: [], warnings: [expect.stringMatching(/no image/)] });
  });
});
