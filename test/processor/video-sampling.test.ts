import { describe, it, expect } from 'vitest';
import { QwenVLError } from '../../lib/errors.js';
import {
  numpyLinspace,
  qwen3VideoSmartResize,
  qwenVlUtilsFrameSize,
  qwenVlUtilsSmartResize,
  qwenVlUtilsVideoSize,
  sampleFramesQwen2Processor,
  sampleFramesQwen3Processor,
  sampleFramesQwenVlUtils,
  smartNframes,
  torchArangeF32Int,
  torchLinspaceF32,
  videoFrameRange,
} from '../../lib/processor/video-sampling.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return e instanceof QwenVLError ? e.code : `not a QwenVLError: ${String(e)}`;
  }
  return 'returned';
}

describe('smartNframes (qwen-vl-utils smart_nframes)', () => {
  it('samples total / videoFps × fps frames (fps defaults to 2)', () => {
    expect(smartNframes({}, 300, 30)).toBe(20);
    expect(smartNframes({ fps: 1 }, 300, 30)).toBe(10);
    expect(smartNframes({ fps: 0.5 }, 3000, 25)).toBe(60);
  });

  it('floors to a multiple of 2', () => {
    expect(smartNframes({}, 35, 10)).toBe(6); // 7 -> 6
    expect(smartNframes({ fps: 3 }, 50, 10)).toBe(14); // 15 -> 14
  });

  it('clamps to minFrames (default 4, rounded up to even) and maxFrames (default min(768, total), rounded down)', () => {
    expect(smartNframes({}, 30, 30)).toBe(4); // 2 -> min 4
    expect(smartNframes({ minFrames: 5 }, 30, 30)).toBe(6); // ceil to even
    expect(smartNframes({}, 30000, 30)).toBe(768); // 2000 -> max 768
    expect(smartNframes({ maxFrames: 101 }, 30000, 30)).toBe(100);
    expect(smartNframes({ fps: 30 }, 25, 10)).toBe(24); // 75 -> floor(min(768, 25)) = 24
    expect(smartNframes({}, 3, 30)).toBe(2); // min 4 but the video has 3 frames: max floor(3) = 2
  });

  it('nframes is rounded to an even count (half to even) and used as is', () => {
    expect(smartNframes({ nframes: 8 }, 100, 30)).toBe(8);
    expect(smartNframes({ nframes: 7 }, 100, 30)).toBe(8); // round(3.5) = 4
    expect(smartNframes({ nframes: 5 }, 100, 30)).toBe(4); // round(2.5) = 2
    expect(smartNframes({ nframes: 100 }, 100, 30)).toBe(100);
  });

  it('rejects counts outside [2, total] and contradictory options with E_INPUT', () => {
    expect(codeOf(() => smartNframes({ nframes: 102 }, 100, 30))).toBe('E_INPUT');
    expect(codeOf(() => smartNframes({ nframes: 1 }, 100, 30))).toBe('E_INPUT'); // rounds to 0
    expect(codeOf(() => smartNframes({}, 1, 30))).toBe('E_INPUT'); // a 1-frame video
    expect(codeOf(() => smartNframes({ fps: 2, nframes: 4 }, 100, 30))).toBe('E_INPUT');
    expect(codeOf(() => smartNframes({ fps: -1 }, 100, 30))).toBe('E_INPUT');
    expect(codeOf(() => smartNframes({ nframes: 2.5 }, 100, 30))).toBe('E_INPUT');
    expect(codeOf(() => smartNframes({}, 100, 0))).toBe('E_INPUT');
    try {
      smartNframes({ nframes: 102 }, 100, 30);
    } catch (e) {
      expect((e as Error).message).toMatch(/\[2, 100\].*102/);
    }
  });
});

describe('frame indices', () => {
  it('videoFrameRange follows calculate_video_frame_range', () => {
    expect(videoFrameRange(300, 30)).toEqual({ start: 0, end: 299, count: 300 });
    expect(videoFrameRange(300, 30, 1, 2)).toEqual({ start: 30, end: 60, count: 31 });
    expect(videoFrameRange(300, 30, 1.01)).toEqual({ start: 31, end: 299, count: 269 });
    expect(videoFrameRange(300, 30, undefined, 100)).toEqual({ start: 0, end: 299, count: 300 }); // clamped
    expect(codeOf(() => videoFrameRange(300, 30, 5, 4))).toBe('E_INPUT');
  });

  it('sampleFramesQwenVlUtils: linspace over the clip, rounded, and the sample fps', () => {
    const s = sampleFramesQwenVlUtils(300, 30);
    expect(s.indices.length).toBe(20);
    const exact = Array.from({ length: 20 }, (_, i) => Math.round((i * 299) / 19));
    expect(s.indices).toEqual(exact);
    expect(s.sampleFps).toBeCloseTo(2, 12);
    expect(sampleFramesQwenVlUtils(30, 10).indices).toEqual([0, 6, 12, 17, 23, 29]);
    expect(sampleFramesQwenVlUtils(30, 10, { videoStart: 1, videoEnd: 2 }).indices).toEqual([10, 13, 17, 20]);
  });

  it('torchLinspaceF32 is float32, exact at both ends, and monotone', () => {
    for (const [a, b, n] of [[0, 299, 20], [0, 99999, 768], [17, 1000, 33], [0, 1, 2]] as const) {
      const v = torchLinspaceF32(a, b, n);
      expect(v.length).toBe(n);
      expect(v[0]).toBe(a);
      expect(v[n - 1]).toBe(b);
      const bad = v.filter(
        (x, i) =>
          x !== Math.fround(x) ||
          !(Math.abs(x - (a + ((b - a) * i) / (n - 1))) < Math.max(1e-3, b * 1e-6)) ||
          (i > 0 && !(x > v[i - 1])),
      );
      expect(bad).toEqual([]);
    }
    expect(torchLinspaceF32(5, 9, 1)).toEqual([5]);
    expect(torchLinspaceF32(0, 9, 3)).toEqual([0, 4.5, 9]);
  });

  it('numpyLinspace and torchArangeF32Int', () => {
    expect(numpyLinspace(0, 7, 4).map(Math.round)).toEqual([0, 2, 5, 7]);
    expect(numpyLinspace(0, 7, 1)).toEqual([0]);
    expect(torchArangeF32Int(300, 15)).toEqual(Array.from({ length: 20 }, (_, i) => 15 * i));
    expect(torchArangeF32Int(300, 37.5)).toEqual([0, 37, 75, 112, 150, 187, 225, 262]);
  });

  it('Qwen3VLVideoProcessor.sample_frames: int(total / fps × 2) clamped, np.linspace, fps falls back to 24', () => {
    expect(sampleFramesQwen3Processor(8, undefined)).toEqual([0, 2, 5, 7]); // int(8/24*2) = 0 -> 4
    expect(sampleFramesQwen3Processor(8, 2)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(sampleFramesQwen3Processor(30, 10)).toEqual([0, 6, 12, 17, 23, 29]);
    expect(sampleFramesQwen3Processor(35, 10)).toEqual([0, 6, 11, 17, 23, 28, 34]); // 7 frames: no rounding to 2
    expect(sampleFramesQwen3Processor(100, 10, { nframes: 3 })).toEqual([0, 50, 99]); // 49.5 -> 50 (half to even)
    expect(sampleFramesQwen3Processor(3000, 10, { maxFrames: 16 }).length).toBe(16);
  });

  it('Qwen2VLVideoProcessor.sample_frames: counts floored to the temporal patch size, arange(...).int()', () => {
    expect(sampleFramesQwen2Processor(300, 30)).toEqual(Array.from({ length: 20 }, (_, i) => 15 * i));
    expect(sampleFramesQwen2Processor(300, 30, { nframes: 7 })).toEqual([0, 37, 75, 112, 150, 187, 225, 262]);
    expect(sampleFramesQwen2Processor(30, 10)).toEqual([0, 5, 10, 15, 20, 25]);
    expect(codeOf(() => sampleFramesQwen2Processor(10, 10, { nframes: 12 }))).toBe('E_INPUT');
    expect(codeOf(() => sampleFramesQwen2Processor(1, 10))).toBe('E_INPUT'); // floors to 0 frames
  });
});

describe('per-frame pixel budgets', () => {
  it('qwen-vl-utils fetch_video: 128..768 tokens per frame, the total budget shared by the frames', () => {
    // factor 28: per-frame max min(768·784, 0.9·128000·784 / n × 2)
    expect(qwenVlUtilsVideoSize(1080, 1920, 20, 14)).toEqual([560, 1008]);
    expect(qwenVlUtilsVideoSize(1080, 1920, 768, 14)).toEqual([336, 644]);
    expect(qwenVlUtilsVideoSize(1080, 1920, 20, 14, { maxPixels: 200000 })).toEqual([308, 588]);
    expect(qwenVlUtilsVideoSize(1080, 1920, 20, 16, { totalPixels: 2_000_000 })).toEqual([320, 576]);
    // Small frames are scaled up to the 128-token minimum.
    expect(qwenVlUtilsVideoSize(120, 160, 6, 16)).toEqual([320, 448]);
    expect(qwenVlUtilsVideoSize(96, 128, 4, 16, { minPixels: 4096 })).toEqual([96, 128]);
    // An explicit size is only rounded to the factor (image bounds).
    expect(qwenVlUtilsVideoSize(1080, 1920, 20, 14, { resizedHeight: 300, resizedWidth: 500 })).toEqual([308, 504]);
    expect(codeOf(() => qwenVlUtilsVideoSize(1080, 1920, 20, 14, { resizedHeight: 300 }))).toBe('E_INPUT');
    expect(codeOf(() => qwenVlUtilsVideoSize(1080, 1920, 20, 14, { minPixels: -5 }))).toBe('E_INPUT');
  });

  it('qwen-vl-utils smart_resize and fetch_image bounds for frame lists', () => {
    expect(qwenVlUtilsSmartResize(10, 10, 28)).toEqual([56, 56]); // min 4 tokens
    expect(qwenVlUtilsFrameSize(96, 128, 16)).toEqual([96, 128]);
    expect(codeOf(() => qwenVlUtilsSmartResize(1, 500, 28))).toBe('E_INPUT'); // ratio > 200
    expect(codeOf(() => qwenVlUtilsSmartResize(100, 100, 28, 1000, 10))).toBe('E_INPUT');
  });

  it('Qwen3-VL processor smart_resize bounds frames × height × width', () => {
    const opts = { temporalFactor: 2, factor: 32, minPixels: 4096, maxPixels: 25165824 };
    expect(qwen3VideoSmartResize(8, 96, 128, opts)).toEqual([96, 128]);
    // 768 frames of 1080p must share 25165824 pixels: ~32768 pixels per frame.
    const [h, w] = qwen3VideoSmartResize(768, 1080, 1920, opts);
    expect(h % 32).toBe(0);
    expect(w % 32).toBe(0);
    expect(768 * h * w).toBeLessThanOrEqual(25165824);
    expect([h, w]).toEqual([128, 224]);
    expect(qwen3VideoSmartResize(4, 40, 40, { ...opts, minPixels: 128 * 32 * 32 })).toEqual([192, 192]);
    expect(codeOf(() => qwen3VideoSmartResize(1, 96, 128, opts))).toBe('E_INPUT');
    expect(codeOf(() => qwen3VideoSmartResize(4, 20, 128, opts))).toBe('E_INPUT');
  });
});
