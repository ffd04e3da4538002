import { describe, it, expect } from 'vitest';
import { pyRound, smartResize } from '../../lib/processor/smart-resize.js';
import { parseImageProcessorConfig, DEFAULT_IMAGE_PROCESSOR_CONFIG } from '../../lib/processor/config.js';
import { QwenVLError } from '../../lib/errors.js';

// Expected values computed with transformers' smart_resize (Python 3, float64, round half even).
const CASES: [number, number, number, number, number, [number, number]][] = [
  [90, 120, 28, 3136, 12845056, [84, 112]],
  [200, 300, 28, 3136, 12845056, [196, 308]],
  [224, 224, 32, 65536, 16777216, [256, 256]], // min_pixels pushes it up
  [70, 98, 28, 3136, 12845056, [56, 112]], // 2.5 -> 2 and 3.5 -> 4: ties to even
  [126, 182, 28, 3136, 12845056, [112, 168]], // 4.5 -> 4, 6.5 -> 6
  [3000, 4000, 28, 3136, 1003520, [840, 1148]], // max_pixels pulls it down
  [4032, 3024, 32, 65536, 16777216, [4032, 3008]],
  [10, 10, 28, 3136, 1003520, [56, 56]],
  [5, 1000, 28, 3136, 1003520, [28, 812]],
  [1, 200, 28, 3136, 1003520, [28, 812]], // aspect exactly 200 is allowed
  [1080, 1920, 28, 3136, 1003520, [728, 1316]],
  [37, 5000, 32, 65536, 16777216, [32, 4992]],
];

describe('smartResize', () => {
  it.each(CASES)('%i x %i (factor %i, [%i, %i])', (h, w, factor, minPixels, maxPixels, want) => {
    expect(smartResize(h, w, { factor, minPixels, maxPixels })).toEqual(want);
  });

  it('rejects an aspect ratio above 200 with E_INPUT', () => {
    const call = () => smartResize(1, 201, { factor: 28, minPixels: 3136, maxPixels: 1003520 });
    expect(call).toThrow(QwenVLError);
    expect(call).toThrow(/aspect ratio must be smaller than 200/);
    try {
      call();
    } catch (e) {
      expect((e as QwenVLError).code).toBe('E_INPUT');
    }
  });

  it('rejects non-integer or empty sizes', () => {
    expect(() => smartResize(0, 10, { factor: 28, minPixels: 1, maxPixels: 100 })).toThrow(/height/);
    expect(() => smartResize(10.5, 10, { factor: 28, minPixels: 1, maxPixels: 100 })).toThrow(/height/);
    expect(() => smartResize(10, 10, { factor: 0, minPixels: 1, maxPixels: 100 })).toThrow(/factor/);
  });

  it('rejects bounds that leave no size', () => {
    expect(() => smartResize(5, 5, { factor: 28, minPixels: 0, maxPixels: 100000 })).toThrow(/no resized size/);
  });

  it('keeps results multiples of factor and within bounds on a sweep', () => {
    for (let h = 20; h < 2000; h += 97) {
      for (let w = 20; w < 2000; w += 89) {
        const [rh, rw] = smartResize(h, w, { factor: 28, minPixels: 3136, maxPixels: 401408 });
        expect(rh % 28).toBe(0);
        expect(rw % 28).toBe(0);
        expect(rh * rw).toBeLessThanOrEqual(401408);
        expect(rh * rw).toBeGreaterThanOrEqual(3136);
      }
    }
  });
});

describe('pyRound', () => {
  it('rounds half to even like Python', () => {
    expect([0.5, 1.5, 2.5, 3.5, 4.5, 2.4999, 2.5001, 7, 0].map(pyRound)).toEqual([0, 2, 2, 4, 4, 2, 3, 7, 0]);
  });
});

describe('parseImageProcessorConfig', () => {
  it('reads the Qwen2-VL style (min_pixels/max_pixels, slow)', () => {
    const c = parseImageProcessorConfig({
      min_pixels: 3136,
      max_pixels: 12845056,
      patch_size: 14,
      temporal_patch_size: 2,
      merge_size: 2,
      image_mean: [0.48145466, 0.4578275, 0.40821073],
      image_std: [0.26862954, 0.26130258, 0.27577711],
      image_processor_type: 'Qwen2VLImageProcessor',
    });
    expect(c).toMatchObject({ minPixels: 3136, maxPixels: 12845056, patchSize: 14, flavor: 'slow' });
  });

  it('reads the Qwen3-VL style (size edges, Fast)', () => {
    const c = parseImageProcessorConfig({
      size: { longest_edge: 16777216, shortest_edge: 65536 },
      patch_size: 16,
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.5, 0.5, 0.5],
      image_processor_type: 'Qwen2VLImageProcessorFast',
    });
    expect(c).toMatchObject({ minPixels: 65536, maxPixels: 16777216, patchSize: 16, mergeSize: 2, flavor: 'fast' });
    expect(c.imageMean).toEqual([0.5, 0.5, 0.5]);
  });

  it('lets min_pixels/max_pixels override size', () => {
    const c = parseImageProcessorConfig({ size: { shortest_edge: 10, longest_edge: 20000 }, max_pixels: 5000 });
    expect([c.minPixels, c.maxPixels]).toEqual([10, 5000]);
  });

  it('defaults to transformers defaults', () => {
    expect(parseImageProcessorConfig({})).toEqual(DEFAULT_IMAGE_PROCESSOR_CONFIG);
  });

  it('rejects malformed fields and non-bicubic resampling', () => {
    const code = (json: unknown) => {
      try {
        parseImageProcessorConfig(json);
      } catch (e) {
        return (e as QwenVLError).code;
      }
      return 'none';
    };
    expect(code({ patch_size: 0 })).toBe('E_MODEL_FORMAT');
    expect(code({ image_mean: [1, 2] })).toBe('E_MODEL_FORMAT');
    expect(code({ size: { shortest_edge: 'x', longest_edge: 2 } })).toBe('E_MODEL_FORMAT');
    expect(code({ min_pixels: 100, max_pixels: 10 })).toBe('E_MODEL_FORMAT');
    expect(code({ image_std: [1, 0, 1] })).toBe('E_MODEL_FORMAT');
    expect(code({ resample: 2 })).toBe('E_UNSUPPORTED');
    expect(code([])).toBe('E_MODEL_FORMAT');
  });
});
