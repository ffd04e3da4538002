import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { QwenVLError } from '../../lib/errors.js';
import { decodeImage, patchifyFrames, resizeRgb } from '../../lib/processor/image.js';
import { decodeVideoFrames, findFfmpeg, probeVideo } from '../../lib/processor/ffmpeg.js';
import { processVideo } from '../../lib/processor/video.js';
import { loadVideoProcessorConfig, parseVideoProcessorConfig, type VideoProcessorConfig } from '../../lib/processor/video-config.js';
import { expandVisionPlaceholders } from '../../lib/text/expand.js';
import { checkpointDir, fixtureCaseRefs, fixtureDir } from '../helpers/fixtures.js';
import { readSafetensors } from '../helpers/read-safetensors.js';

const QWEN3 = fixtureDir('qwen3-vl');
const CASE = join(QWEN3, 'cases', 'video_8f');
const HAVE_FIXTURE = existsSync(join(CASE, 'meta.json'));

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return e instanceof QwenVLError ? e.code : `not a QwenVLError: ${String(e)}`;
  }
  return 'resolved';
}

async function messageOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  return '';
}

function maxAbsDiff(a: Float32Array, b: ArrayLike<number>): number {
  let m = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Runs `fn` with environment variables set (undefined deletes), restoring them afterwards. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Config

describe('video processor config', () => {
  it('Qwen3-VL: video_preprocessor_config.json, bounds over the clip, fast flavor, fps 2', async () => {
    if (!HAVE_FIXTURE) return;
    const cfg = await loadVideoProcessorConfig(join(QWEN3, 'checkpoint'));
    expect(cfg).toMatchObject({
      kind: 'qwen3',
      patchSize: 16,
      mergeSize: 2,
      temporalPatchSize: 2,
      minPixels: 4096,
      maxPixels: 25165824,
      imageMean: [0.5, 0.5, 0.5],
      flavor: 'fast',
      fps: 2,
      minFrames: 4,
      maxFrames: 768,
    });
  });

  it('Qwen2/2.5-VL: falls back to preprocessor_config.json (min/max_pixels), still fast', async () => {
    const dir = checkpointDir('qwen2.5-vl');
    if (!existsSync(dir)) return;
    const cfg = await loadVideoProcessorConfig(dir);
    expect(cfg).toMatchObject({ kind: 'qwen2', patchSize: 14, minPixels: 3136, maxPixels: 12845056, flavor: 'fast' });
    expect(cfg.fps).toBeUndefined();
  });

  it('class defaults when the file is silent, and a forced kind', () => {
    const q2 = parseVideoProcessorConfig({});
    expect(q2).toMatchObject({ kind: 'qwen2', patchSize: 14, minPixels: 128 * 28 * 28, maxPixels: 28 * 28 * 768 });
    const q3 = parseVideoProcessorConfig({ min_pixels: 5 }, 'x.json', 'qwen3');
    expect(q3).toMatchObject({ kind: 'qwen3', patchSize: 16, minPixels: 128 * 32 * 32, maxPixels: 32 * 32 * 768, imageStd: [0.5, 0.5, 0.5] });
    expect(() => parseVideoProcessorConfig({ min_frames: 9, max_frames: 4 })).toThrow(/min_frames/);
    expect(() => parseVideoProcessorConfig([])).toThrow(QwenVLError);
  });
});

// ---------------------------------------------------------------------------------------------
// Frame lists against the reference fixture

describe.skipIf(!HAVE_FIXTURE)('frame lists: qwen3-vl/video_8f equals transformers', () => {
  let cfg: VideoProcessorConfig;
  let meta: { videos: { frames: string[]; fps: number }[]; prompt_texts: string[]; expanded_prompt_texts: string[] };
  let refPv: { shape: number[]; data: number[] };
  let refGrid: number[];
  let paths: string[];

  beforeAll(async () => {
    cfg = await loadVideoProcessorConfig(join(QWEN3, 'checkpoint'));
    meta = JSON.parse(readFileSync(join(CASE, 'meta.json'), 'utf8'));
    const ref = readSafetensors(join(CASE, 'tensors.safetensors'), ['pixel_values_videos', 'video_grid_thw']);
    refPv = ref.get('pixel_values_videos')!;
    refGrid = ref.get('video_grid_thw')!.data;
    paths = meta.videos[0].frames.map((p) => join(QWEN3, p));
  });

  it('pixel_values_videos and video_grid_thw are exact', async () => {
    const got = await processVideo({ frames: paths, fps: meta.videos[0].fps }, cfg);
    expect(got.gridThw).toEqual(refGrid);
    expect(got.shape).toEqual(refPv.shape);
    const err = maxAbsDiff(got.pixelValues, refPv.data);
    console.log(`qwen3-vl/video_8f: max |pixel_values_videos - reference| = ${err}`);
    expect(err).toBe(0);
    expect(got.frameIndices).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(got.size).toEqual([96, 128]);
    expect(got.fps).toBe(2);
    expect(got.secondPerGridT).toBe(1);
  });

  it('timestamps expand the prompt exactly as the processor did', async () => {
    const got = await processVideo({ frames: paths, fps: meta.videos[0].fps }, cfg);
    expect(got.timestamps).toEqual([0.25, 1.25, 2.25, 3.25]);
    const expanded = expandVisionPlaceholders(meta.prompt_texts, {
      videoGridThw: [got.gridThw],
      videoStyle: 'qwen3',
      videoTimestamps: [got.timestamps],
      mergeSize: cfg.mergeSize,
    });
    expect(expanded).toEqual(meta.expanded_prompt_texts);
  });

  it('every frame form gives the same result (Buffer, Uint8Array, sharp, raw pixels, file: URL)', async () => {
    const ref = await processVideo({ frames: paths, fps: 2 }, cfg);
    const buffers = paths.map((p) => readFileSync(p));
    const raws = await Promise.all(paths.map((p) => decodeImage(p)));
    const forms = [
      buffers,
      buffers.map((b) => new Uint8Array(b)),
      paths.map((p) => sharp(p)),
      raws.map((r) => ({ data: r.data, width: r.width, height: r.height })),
      paths.map((p) => pathToFileURL(p)),
    ];
    for (const frames of forms) {
      const got = await processVideo({ frames, fps: 2 }, cfg);
      expect(maxAbsDiff(got.pixelValues, ref.pixelValues)).toBe(0);
      expect(got.gridThw).toEqual(ref.gridThw);
    }
  });

  it('an odd frame count is padded by repeating the last frame', async () => {
    const seven = await processVideo({ frames: paths.slice(0, 7), fps: 2 }, cfg);
    const eight = await processVideo({ frames: [...paths.slice(0, 7), paths[6]], fps: 2 }, cfg);
    expect(seven.gridThw).toEqual([4, 6, 8]);
    expect(maxAbsDiff(seven.pixelValues, eight.pixelValues)).toBe(0);
    expect(seven.frameIndices).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(seven.timestamps).toEqual([0.25, 1.25, 2.25, 3]); // last group: frames 6 and 6
  });

  it('Qwen2/2.5-VL frames: per-frame smart_resize with the processor bounds, second_per_grid_t = 2 / fps', async () => {
    const dir = checkpointDir('qwen2.5-vl');
    if (!existsSync(dir)) return;
    const q2 = await loadVideoProcessorConfig(dir);
    const got = await processVideo({ frames: paths.slice(0, 4), fps: 4 }, q2);
    expect(got.size).toEqual([84, 140]); // smart_resize(96, 128, 28)
    expect(got.gridThw).toEqual([2, 6, 10]);
    expect(got.shape).toEqual([120, 3 * 2 * 14 * 14]);
    expect(got.secondPerGridT).toBe(0.5);
    // Same numbers as resizing and patchifying by hand with the fast (torch) arithmetic.
    const frames = await Promise.all(paths.slice(0, 4).map(async (p) => (await resizeRgb(await decodeImage(p), 140, 84, 'fast')).data));
    const byHand = await patchifyFrames(frames, 140, 84, q2, 'fast');
    expect(maxAbsDiff(got.pixelValues, byHand.pixelValues)).toBe(0);
  });

  it("pipeline 'qwen-vl-utils' on frames: fetch_image sizing, even padding, per-frame video budget", async () => {
    const got = await processVideo({ frames: paths.slice(0, 3), fps: 2 }, cfg, { pipeline: 'qwen-vl-utils' });
    expect(got.frameIndices).toEqual([0, 1, 2, 3]);
    expect(got.size).toEqual([320, 448]); // 96x128 raised to the 128-token minimum of a video frame
    expect(got.gridThw).toEqual([2, 20, 28]);
    const small = await processVideo({ frames: paths.slice(0, 2), fps: 2 }, cfg, { pipeline: 'qwen-vl-utils', minPixels: 4096 });
    expect(small.size).toEqual([96, 128]);
  });

  it('rejects bad frame lists with E_INPUT, naming the frame', async () => {
    expect(await codeOf(processVideo({ frames: [], fps: 2 }, cfg))).toBe('E_INPUT');
    expect(await codeOf(processVideo({ frames: paths, fps: 0 }, cfg))).toBe('E_INPUT');
    expect(await codeOf(processVideo({ frames: paths, fps: 2 }, cfg, { nframes: 4 }))).toBe('E_INPUT');
    expect(await codeOf(processVideo({ frames: paths, fps: 2 }, cfg, { totalPixels: 1e6 }))).toBe('E_INPUT');
    expect(await messageOf(processVideo({ frames: [paths[0], '/nonexistent.png'], fps: 2 }, cfg))).toMatch(/frames\[1\]/);
    const other = join(QWEN3, 'inputs', 'gradient_224x224.png');
    expect(await messageOf(processVideo({ frames: [paths[0], other], fps: 2 }, cfg))).toMatch(/frames\[1\] is 224x224/);
    expect(await codeOf(processVideo({ frames: [paths[0]], fps: 2 }, cfg))).toBe('E_INPUT'); // Qwen3: one frame < temporal patch
    expect(await codeOf(processVideo(42 as never, cfg))).toBe('E_INPUT');
    expect(await codeOf(processVideo({ frames: paths, fps: 2 }, {} as never))).toBe('E_INPUT');
  });
});

// ---------------------------------------------------------------------------------------------
// Every video case of the fixtures (in-repo and, when present, ../shared/fixtures) through processVideo

const videoCaseRefs = fixtureCaseRefs().filter((c) => (JSON.parse(readFileSync(join(c.dir, 'meta.json'), 'utf8')).videos ?? []).length > 0);

describe('every fixture video case: pixel_values_videos and video_grid_thw equal transformers', () => {
  it('has video cases', () => expect(videoCaseRefs.length).toBeGreaterThan(0));

  it.each(videoCaseRefs.map((c) => [`${c.family}/${c.name}`, c] as const))('%s', async (_label, c) => {
    const meta = JSON.parse(readFileSync(join(c.dir, 'meta.json'), 'utf8')) as { videos: ({ frames: string[]; fps?: number } | string)[] };
    const cfg = await loadVideoProcessorConfig(join(c.root, 'checkpoint'));
    const pixels: number[] = [];
    const grids: number[] = [];
    for (const v of meta.videos) {
      const got = await processVideo(
        typeof v === 'string' ? join(c.root, v) : { frames: v.frames.map((f) => join(c.root, f)), ...(v.fps !== undefined ? { fps: v.fps } : {}) },
        cfg,
      );
      for (const x of got.pixelValues) pixels.push(x);
      grids.push(...got.gridThw);
    }
    const ref = readSafetensors(join(c.dir, 'tensors.safetensors'), ['pixel_values_videos', 'video_grid_thw']);
    expect(grids).toEqual(ref.get('video_grid_thw')!.data);
    expect(maxAbsDiff(Float32Array.from(pixels), ref.get('pixel_values_videos')!.data)).toBeLessThanOrEqual(1e-5);
  });
});

// ---------------------------------------------------------------------------------------------
// Video files through FFmpeg

describe('finding FFmpeg', () => {
  it('QWENVL_FFMPEG naming nothing -> E_UNSUPPORTED with an install hint', async () => {
    await withEnv({ QWENVL_FFMPEG: '/nonexistent/ffmpeg' }, async () => {
      expect(await codeOf(findFfmpeg())).toBe('E_UNSUPPORTED');
      expect(await messageOf(findFfmpeg())).toMatch(/apt-get install ffmpeg/);
    });
  });

  it('no ffmpeg on PATH -> E_UNSUPPORTED from processVideo on a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qwenvl-noff-'));
    const file = join(dir, 'v.mp4');
    writeFileSync(file, Buffer.alloc(100, 1));
    try {
      await withEnv({ QWENVL_FFMPEG: undefined, QWENVL_FFPROBE: undefined, PATH: dir }, async () => {
        expect(await codeOf(processVideo(file, parseVideoProcessorConfig({}, 'x', 'qwen3')))).toBe('E_UNSUPPORTED');
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('missing or remote video files -> E_INPUT before FFmpeg is needed', async () => {
    const cfg = parseVideoProcessorConfig({}, 'x', 'qwen3');
    await withEnv({ QWENVL_FFMPEG: '/nonexistent/ffmpeg' }, async () => {
      expect(await codeOf(processVideo('/nonexistent/video.mp4', cfg))).toBe('E_INPUT');
      expect(await codeOf(processVideo('https://example.com/v.mp4', cfg))).toBe('E_INPUT');
    });
  });
});

const HAVE_FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0 && spawnSync('ffprobe', ['-version']).status === 0;
if (!HAVE_FFMPEG) {
  console.warn('video.test.ts: no ffmpeg/ffprobe on PATH, the video-file tests are skipped (CI: apt-get install -y ffmpeg)');
}

describe.skipIf(!HAVE_FFMPEG)('video files through FFmpeg (skipped without ffmpeg/ffprobe on PATH; CI: apt-get install -y ffmpeg)', () => {
  let dir: string;
  let mkv: string; // lossless FFV1 in Matroska: no frame count in the header
  let mp4: string; // MPEG-4 part 2 in MP4: frame count in the header
  let raw: Buffer; // every frame of mkv, decoded in one go
  const W = 160, H = 120, FRAME = W * H * 3;
  let q3: VideoProcessorConfig;
  let q2: VideoProcessorConfig;

  const make = (name: string, args: string[]): string => {
    const out = join(dir, name);
    const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc=size=${W}x${H}:rate=10`, ...args, out]);
    if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr}`);
    return out;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'qwenvl-video-'));
    mkv = make('clip.mkv', ['-t', '3', '-c:v', 'ffv1']);
    mp4 = make('clip.mp4', ['-t', '3', '-c:v', 'mpeg4', '-q:v', '2']);
    const r = spawnSync('ffmpeg', ['-v', 'error', '-i', mkv, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { maxBuffer: 1 << 26 });
    raw = r.stdout;
    q3 = parseVideoProcessorConfig({ video_processor_type: 'Qwen3VLVideoProcessor', size: { shortest_edge: 4096, longest_edge: 25165824 } });
    q2 = parseVideoProcessorConfig({ processor_class: 'Qwen2_5_VLProcessor', min_pixels: 3136, max_pixels: 12845056 });
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const frameAt = (i: number): Uint8Array => new Uint8Array(raw.subarray(i * FRAME, (i + 1) * FRAME));

  it('probes size, rate and frame count (header or counted packets)', async () => {
    const tools = await findFfmpeg();
    expect(raw.length).toBe(30 * FRAME);
    expect(await probeVideo(mkv, tools)).toMatchObject({ width: W, height: H, totalFrames: 30, fps: 10 });
    expect(await probeVideo(mp4, tools)).toMatchObject({ width: W, height: H, totalFrames: 30, fps: 10 });
  });

  it('decodes exactly the selected frames, stopping after the last', async () => {
    const tools = await findFfmpeg();
    const got: Uint8Array[] = [];
    const n = await decodeVideoFrames(mkv, tools, { width: W, height: H }, [0, 7, 8, 29], (f) => {
      got.push(f);
    });
    expect(n).toBe(4);
    [0, 7, 8, 29].forEach((idx, k) => expect(Buffer.compare(Buffer.from(got[k]), Buffer.from(frameAt(idx)))).toBe(0));
    // Past the end: delivers what exists.
    expect(await decodeVideoFrames(mkv, tools, { width: W, height: H }, [28, 40], () => {})).toBe(1);
  });

  it("qwen-vl-utils pipeline (default): smart_nframes indices, fetch_video size, timestamps", async () => {
    const got = await processVideo(mkv, q3);
    expect(got.frameIndices).toEqual([0, 6, 12, 17, 23, 29]); // 3 s at 2 fps, linspace(0, 29, 6)
    expect(got.videoFps).toBe(10);
    expect(got.fps).toBeCloseTo(2, 12);
    expect(got.secondPerGridT).toBeCloseTo(1, 12);
    expect(got.size).toEqual([320, 448]);
    expect(got.gridThw).toEqual([3, 20, 28]);
    expect(got.timestamps.map((t) => Math.round(t * 100) / 100)).toEqual([0.3, 1.45, 2.6]);
    // The same frames decoded in one go, resized and patchified by hand.
    const frames = await Promise.all(got.frameIndices.map(async (i) => (await resizeRgb({ data: frameAt(i), width: W, height: H }, 448, 320, 'fast')).data));
    const byHand = await patchifyFrames(frames, 448, 320, q3, 'fast');
    expect(maxAbsDiff(got.pixelValues, byHand.pixelValues)).toBe(0);
  });

  it('qwen-vl-utils options: nframes, fps, clip range, pixel budgets', async () => {
    expect((await processVideo(mkv, q3, { nframes: 4 })).frameIndices).toEqual([0, 10, 19, 29]);
    expect((await processVideo(mkv, q3, { fps: 4 })).frameIndices.length).toBe(12);
    expect((await processVideo(mkv, q3, { videoStart: 1, videoEnd: 2 })).frameIndices).toEqual([10, 13, 17, 20]);
    const sized = await processVideo(mkv, q3, { resizedHeight: 120, resizedWidth: 160 });
    expect(sized.size).toEqual([128, 160]);
    expect((await processVideo(mkv, q3, { minPixels: 4096, maxPixels: 64 * 64 })).size).toEqual([32, 64]);
    const mp4Got = await processVideo(mp4, q3, { nframes: 4 });
    expect(mp4Got.frameIndices).toEqual([0, 10, 19, 29]);
    expect(mp4Got.gridThw).toEqual([2, 20, 28]);
  });

  it("pipeline 'processor': the family processor's sample_frames and sizing", async () => {
    const a = await processVideo(mkv, q3, { pipeline: 'processor' });
    expect(a.frameIndices).toEqual([0, 6, 12, 17, 23, 29]);
    expect(a.size).toEqual([128, 160]); // Qwen3 smart_resize over 6 × 120 × 160
    const b = await processVideo(mkv, q2, { pipeline: 'processor' });
    expect(b.frameIndices).toEqual([0, 5, 10, 15, 20, 25]);
    expect(b.size).toEqual([112, 168]);
    expect(b.gridThw).toEqual([3, 8, 12]);
    expect(b.secondPerGridT).toBe(1);
    const c = await processVideo(mkv, q2, { pipeline: 'processor', fps: 5 });
    expect(c.frameIndices.length).toBe(14);
    expect(c.secondPerGridT).toBe(0.4);
    expect(await codeOf(processVideo(mkv, q2, { pipeline: 'processor', videoStart: 1 }))).toBe('E_INPUT');
  });

  it('undecodable and too-short videos -> E_INPUT', async () => {
    const bad = join(dir, 'bad.mp4');
    writeFileSync(bad, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) & 0xff)));
    expect(await codeOf(processVideo(bad, q3))).toBe('E_INPUT');
    expect(await messageOf(processVideo(bad, q3))).toMatch(/bad\.mp4.*cannot be decoded/);
    const one = make('one.mkv', ['-frames:v', '1', '-c:v', 'ffv1']);
    expect(await codeOf(processVideo(one, q3))).toBe('E_INPUT');
    expect(await codeOf(processVideo(dir, q3))).toBe('E_INPUT'); // a directory
    expect(await codeOf(processVideo(mkv, q3, { nframes: 40 }))).toBe('E_INPUT');
    expect(await codeOf(processVideo(mkv, q3, { maxInputPixels: 100 }))).toBe('E_INPUT');
  });
});
