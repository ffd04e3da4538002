// Qwen3-VL (and its MoE): JSON on a 0–1000 grid over the image, whatever the processor's resize.
import { describe, expect, it } from 'vitest';
import { parseGrounding } from '../../lib/index.js';
import { BUDGETS, SIZES, boxIn, imageUnder, toRelative } from './helpers.js';

describe.each(['qwen3-vl', 'qwen3-vl-moe', 'qwen3_vl'])('Qwen3-VL grounding (0–1000 relative) as %s', (family) => {
  it.each(SIZES)('a box of a %ix%i image: the same original box under every budget', (w, h) => {
    const truth = boxIn(w, h);
    for (const budget of BUDGETS) {
      const img = imageUnder(w, h, budget, 32);
      const rel = toRelative(truth, img);
      const r = parseGrounding(`[{"bbox_2d": [${rel.join(', ')}], "label": "thing"}]`, { family, images: [img] });
      expect(r.warnings).toEqual([]);
      // Integers on the 1000 grid: off by at most half a grid step of the original.
      const tol = [0.5 * (w / 1000), 0.5 * (h / 1000)];
      r.items[0].box!.forEach((v, i) => expect(Math.abs(v - truth[i])).toBeLessThanOrEqual(tol[i % 2] + 1e-9));
    }
  });

  it('divides by 1000, not 999: 1000 is the far edge, 500 the middle', () => {
    const images = [{ originalWidth: 333, originalHeight: 517 }]; // no resized size needed
    const r = parseGrounding('[{"bbox_2d": [0, 0, 1000, 1000]}, {"point_2d": [500, 500]}]', { family, images });
    expect(r.items).toEqual([
      { box: [0, 0, 333, 517], image: 0 },
      { point: [166.5, 258.5], image: 0 },
    ]);
  });

  it('fenced, with prose, text_content labels (text spotting), truncated, swapped', () => {
    const images = [{ originalWidth: 1000, originalHeight: 37 }];
    const reply = 'The text in the image:\n```json\n[\n\t{"bbox_2d": [600, 900, 100, 100], "text_content": "HELLO"},\n\t{"bbox_2d": [700, 0, 800, 1000], "text_content": "W';
    const r = parseGrounding(reply, { family, images });
    expect(r.items).toEqual([{ label: 'HELLO', box: [100, 3.7, 600, 33.3], image: 0 }]);
    expect(r.items[0].box![3]).toBeCloseTo(33.3, 12);
    expect(r.warnings).toEqual([expect.stringMatching(/cut off/)]);
  });

  it('several images: per-image lists, keys naming images, or index fields; the first image otherwise, with a warning', () => {
    const images = [{ originalWidth: 333, originalHeight: 517 }, { originalWidth: 1000, originalHeight: 37 }];
    const lists = parseGrounding('[[{"point_2d": [1000, 1000], "label": "a"}], [{"point_2d": [1000, 1000], "label": "b"}]]', { family, images });
    expect(lists.items).toEqual([{ label: 'a', point: [333, 517], image: 0 }, { label: 'b', point: [1000, 37], image: 1 }]);
    // With one image, nested lists are just nesting.
    const one = parseGrounding('[[{"point_2d": [0, 0]}], [{"point_2d": [10, 10]}]]', { family, images: images.slice(0, 1) });
    expect(one.items.map((i) => i.image)).toEqual([0, 0]);
    expect(one.warnings).toEqual([]);
    const keyed = parseGrounding('{"Image 2": [{"point_2d": [0, 1000]}], "image 1": {"point_2d": [0, 0]}}', { family, images });
    expect(keyed.items.map((i) => i.image)).toEqual([1, 0]);
    const unnamed = parseGrounding('[{"point_2d": [0, 0]}, {"point_2d": [1, 1], "image_index": 1}, {"point_2d": [2, 2]}]', { family, images });
    expect(unnamed.items.map((i) => i.image)).toEqual([0, 1, 0]);
    expect(unnamed.warnings).toEqual([expect.stringMatching(/does not say which of the 2 images/)]);
    const bad = parseGrounding('[{"point_2d": [0, 0], "image": 0}, {"point_2d": [0, 0], "image_index": -1}, {"point_2d": [0, 0], "image": "the left one"}]', { family, images });
    expect(bad.items).toEqual([]);
    expect(bad.warnings).toHaveLength(3);
  });

  it('a single image needs no index; an object with both a box and a point keeps both', () => {
    const images = [{ originalWidth: 200, originalHeight: 100 }];
    const r = parseGrounding('{"bbox_2d": [0, 0, 500, 500], "point_2d": [250, 250], "label": "cup"}', { family, images });
    expect(r.items).toEqual([{ label: 'cup', box: [0, 0, 100, 50], point: [50, 25], image: 0 }]);
  });
});
