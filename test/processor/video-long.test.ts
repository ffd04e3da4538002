/**
 * Long videos (issue 7, item 2) and video budgets checked before decoding (item 10): more than 100
 * sampled frames, a generated 1-hour video through processVideo and the CLI, memory that does
 * not grow with the video's length, truncated files, abort and error paths that leave no FFmpeg
 * behind. The videos are generated here with FFmpeg's lavfi test source at low resolution and
 * frame rate, so they encode in seconds.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QwenVLError } from '../../lib/errors.js';
import { countVideoFrames, decodeVideoFrames, findFfmpeg, probeVideo, selectExpression, selectPasses } from '../../lib/processor/ffmpeg.js';
import { processVideo } from '../../lib/processor/video.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { parseVideoProcessorConfig, type VideoProcessorConfig } from '../../lib/processor/video-config.js';
import { sampleFramesQwen2Processor, sampleFramesQwenVlUtils } from '../../lib/processor/video-sampling.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const tsx = join(repo, 'node_modules', '.bin', 'tsx');
const QWEN3_CKPT = checkpointDir('qwen3-vl');

const HAVE_FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0 && spawnSync('ffprobe', ['-version']).status === 0;
if (!HAVE_FFMPEG) console.warn('video-long.test.ts: no ffmpeg/ffprobe on PATH, skipped (CI: apt-get install -y ffmpeg)');

async function errorOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e instanceof QwenVLError ? { code: e.code, message: e.message } : { code: `not a QwenVLError: ${String(e)}`, message: '' };
  }
  return { code: 'resolved', message: '' };
}

/** True while a process with this id exists (running or an unreaped zombie). */
function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!HAVE_FFMPEG)('long videos through FFmpeg', () => {
  let dir: string;
  let long: string; // 1 hour, 160x120 at 1 fps: 3600 frames
  let twoMin: string; // 2 minutes, 160x120 at 1 fps: 120 frames
  let lossless: string; // 2 minutes, 64x48 at 2 fps, FFV1 in Matroska (no frame count in the header)
  let raw: Buffer; // every frame of `lossless`
  let wrapper: string; // an ffmpeg that writes its pid to `marks` before running the real one
  let marks: string;
  let q3: VideoProcessorConfig;
  let q2: VideoProcessorConfig;
  const small = { minPixels: 4096, maxPixels: 4096 }; // frames resized to 32x64: cheap to keep

  const gen = (name: string, src: string, args: string[]): string => {
    const out = join(dir, name);
    const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', src, ...args, out]);
    if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr}`);
    return out;
  };
  const ffmpegRuns = (): number[] => (existsSync(marks) ? readFileSync(marks, 'utf8').trim().split('\n').filter(Boolean).map(Number) : []);
  const withWrapper = async <T>(fn: () => Promise<T>): Promise<T> => {
    const saved = [process.env.QWENVL_FFMPEG, process.env.QWENVL_FFPROBE];
    process.env.QWENVL_FFMPEG = wrapper;
    process.env.QWENVL_FFPROBE = (await findFfmpeg()).ffprobe;
    rmSync(marks, { force: true });
    try {
      return await fn();
    } finally {
      if (saved[0] === undefined) delete process.env.QWENVL_FFMPEG;
      else process.env.QWENVL_FFMPEG = saved[0];
      if (saved[1] === undefined) delete process.env.QWENVL_FFPROBE;
      else process.env.QWENVL_FFPROBE = saved[1];
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qwenvl-long-video-'));
    long = gen('long.mp4', 'testsrc=size=160x120:rate=1', ['-t', '3600', '-c:v', 'mpeg4', '-g', '600']);
    twoMin = gen('two-min.mp4', 'testsrc=size=160x120:rate=1', ['-t', '120', '-c:v', 'mpeg4', '-g', '600']);
    lossless = gen('lossless.mkv', 'testsrc=size=64x48:rate=2', ['-t', '120', '-c:v', 'ffv1']);
    raw = spawnSync('ffmpeg', ['-v', 'error', '-i', lossless, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { maxBuffer: 1 << 26 }).stdout;
    const real = (await findFfmpeg()).ffmpeg;
    marks = join(dir, 'ffmpeg-runs');
    wrapper = join(dir, 'ffmpeg-wrapper.sh');
    writeFileSync(wrapper, `#!/bin/sh\necho $$ >> '${marks}'\nexec '${real}' "$@"\n`);
    chmodSync(wrapper, 0o755);
    q3 = parseVideoProcessorConfig({ video_processor_type: 'Qwen3VLVideoProcessor', size: { shortest_edge: 4096, longest_edge: 25165824 } });
    q2 = parseVideoProcessorConfig({ processor_class: 'Qwen2_5_VLProcessor', min_pixels: 3136, max_pixels: 12845056 });
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('selects frames with an expression of logarithmic depth', () => {
    expect(selectExpression([7])).toBe('eq(n\\,7)');
    expect(selectExpression([1, 5, 9])).toBe('if(lt(n\\,5)\\,eq(n\\,1)\\,if(lt(n\\,9)\\,eq(n\\,5)\\,eq(n\\,9)))');
    const many = Array.from({ length: 3000 }, (_, i) => i * 3);
    const depth = (e: string): number => {
      let d = 0, m = 0;
      for (const c of e) {
        if (c === '(') m = Math.max(m, ++d);
        else if (c === ')') d--;
      }
      return m;
    };
    expect(depth(selectExpression(many))).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(many.length)) + 2);
    // Each pass fits one command line; together they keep every index, in order.
    const passes = selectPasses(many, 20_000);
    expect(passes.length).toBeGreaterThan(1);
    expect(passes.flat()).toEqual(many);
    for (const p of passes) expect(selectExpression(p).length).toBeLessThanOrEqual(20_000);
  });

  it('decodes more than 100 selected frames exactly, in one FFmpeg pass or several', async () => {
    const tools = await findFfmpeg();
    const FRAME = 64 * 48 * 3;
    expect(raw.length).toBe(240 * FRAME);
    expect(await probeVideo(lossless, tools)).toMatchObject({ totalFrames: 240, fps: 2 });
    const wanted = Array.from({ length: 240 }, (_, i) => i).filter((i) => i % 3 !== 1); // 160 frames
    for (const maxSelectChars of [undefined, 1500]) {
      if (maxSelectChars) expect(selectPasses(wanted, maxSelectChars).length).toBeGreaterThan(2);
      const got: Uint8Array[] = [];
      const n = await decodeVideoFrames(lossless, tools, { width: 64, height: 48 }, wanted, (f) => {
        got.push(f);
      }, maxSelectChars ? { maxSelectChars } : {});
      expect(n).toBe(wanted.length);
      wanted.forEach((idx, k) => expect(Buffer.compare(Buffer.from(got[k]), raw.subarray(idx * FRAME, (idx + 1) * FRAME))).toBe(0));
    }
  });

  it('a 1-hour video: the reference sampling (768 of 3600 frames), both pipelines', async () => {
    const utils = await processVideo(long, q3, small);
    expect(utils.frameIndices).toEqual(sampleFramesQwenVlUtils(3600, 1).indices);
    expect(utils.frameIndices.length).toBe(768);
    expect(new Set(utils.frameIndices).size).toBe(768);
    expect(utils.gridThw).toEqual([384, 2, 4]);
    expect(utils.videoFps).toBe(1);
    const proc = await processVideo(long, q2, { pipeline: 'processor', ...small });
    expect(proc.frameIndices).toEqual(sampleFramesQwen2Processor(3600, 1, { fps: 2, minFrames: 4, maxFrames: 768 }));
    expect(proc.gridThw[0]).toBe(384);
  });

  it('memory does not grow with the length: 2 minutes and 1 hour peak alike', () => {
    const peak = (file: string): { frames: number; maxRssBytes: number } => {
      const r = spawnSync(tsx, [join(repo, 'test', 'helpers', 'video-peak-rss.ts'), file, JSON.stringify({ maxFrames: 120, ...small })], {
        cwd: repo,
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { frames: number; maxRssBytes: number };
    };
    const short = peak(twoMin);
    const hour = peak(long);
    expect(short.frames).toBe(120);
    expect(hour.frames).toBe(120);
    // 30× the frames in the file; holding them decoded would take 3600 × 57.6 kB = 207 MB more.
    expect(hour.maxRssBytes - short.maxRssBytes).toBeLessThan(64 * 2 ** 20);
  });

  it('budgets are checked from the metadata before FFmpeg decodes anything', async () => {
    await withWrapper(async () => {
      // A pinned sampling of an hour (2 fps: 768 frames of 448x320) is over a 16384-token budget.
      const over = await errorOf(processVideo(long, q3, { fps: 2, maxVisualTokens: 16384 }));
      expect(over.code).toBe('E_INPUT');
      expect(over.message).toMatch(/768 frames of 448x320 would give 53760 vision tokens, over the budget of 16384.*refused before decoding/);
      // Not even two frames fit a 10-token budget: refused too, whatever the sampling.
      expect(await errorOf(processVideo(long, q3, { maxVisualTokens: 10 }))).toMatchObject({
        code: 'E_INPUT',
        message: expect.stringMatching(/over the budget of 10.*refused before decoding/),
      });
      expect(await errorOf(processVideo(long, q3, { maxInputPixels: 160 * 120 - 1 }))).toMatchObject({
        code: 'E_INPUT',
        message: expect.stringMatching(/160x120 exceed the limit of 19199 pixels \(maxInputPixels\); refused before decoding/),
      });
      expect(await errorOf(processVideo(long, q3, { nframes: 800, ...small }))).toMatchObject({
        code: 'E_INPUT',
        message: expect.stringMatching(/800 frames exceed the limit of 768 \(maxVideoFrames\)/),
      });
      expect(await errorOf(processVideo(long, q3, { maxVideoFrames: 0 }))).toMatchObject({ code: 'E_INPUT' });
      expect(ffmpegRuns()).toEqual([]);
      // Within the limits the same wrapper decodes.
      const ok = await processVideo(long, q3, { nframes: 800, maxVideoFrames: 800, maxVisualTokens: 3200, ...small });
      expect(ok.frameIndices.length).toBe(800);
      expect(ffmpegRuns().length).toBe(1);
    });
  });

  it('the default sampling of a video too long for the budgets keeps the most frames that fit, over its whole length', async () => {
    const tokens = (v: { gridThw: [number, number, number] }) => (v.gridThw[0] * v.gridThw[1] * v.gridThw[2]) / 4;
    const fitted = await processVideo(long, q3, { maxVisualTokens: 16384 });
    expect(tokens(fitted)).toBeLessThanOrEqual(16384);
    // The largest count that fits: two more frames (one temporal patch) would be over.
    const perPatch = (fitted.gridThw[1] * fitted.gridThw[2]) / 4;
    expect(tokens(fitted) + perPatch).toBeGreaterThan(16384);
    const idx = fitted.frameIndices;
    expect(idx[0]).toBe(0);
    expect(idx[idx.length - 1]).toBeGreaterThan(3500); // spread to the end of the hour
    // Frame limit alone: the default sampling keeps maxVideoFrames frames.
    const capped = await processVideo(long, q3, { maxVideoFrames: 40, ...small });
    expect(capped.frameIndices.length).toBe(40);
    expect(capped.frameIndices[39]).toBeGreaterThan(3500);
  });

  it('frame lists: too many frames refused before any is decoded, the token budget after the first', async () => {
    const missing = join(dir, 'no-such-frame.png');
    const tooMany = await errorOf(processVideo({ frames: Array(769).fill(missing) }, q3));
    expect(tooMany.code).toBe('E_INPUT');
    expect(tooMany.message).toMatch(/769 frames exceed the limit of 768 \(maxVideoFrames\)/);
    const frame = { data: new Uint8Array(64 * 48 * 3), width: 64, height: 48 };
    const budget = await errorOf(processVideo({ frames: [frame, missing] }, q3, { maxVisualTokens: 1 }));
    expect(budget.message).toMatch(/vision tokens, over the budget of 1/);
    // Without the budget the second frame is what fails.
    expect((await errorOf(processVideo({ frames: [frame, missing] }, q3))).message).toMatch(/frames\[1\]/);
  });

  it('a file shorter than its header says: sampled from the frames it really has', async () => {
    const full = gen('faststart.mp4', 'testsrc=size=64x48:rate=2', ['-t', '120', '-c:v', 'mpeg4', '-g', '20', '-movflags', '+faststart']);
    const cut = join(dir, 'truncated.mp4');
    const bytes = readFileSync(full);
    writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const tools = await findFfmpeg();
    expect((await probeVideo(cut, tools)).totalFrames).toBe(240); // the header still says 240
    const real = await countVideoFrames(cut, tools);
    expect(real).toBeGreaterThan(50);
    expect(real).toBeLessThan(200);
    const got = await processVideo(cut, q3, small);
    expect(got.frameIndices).toEqual(sampleFramesQwenVlUtils(real, 2).indices);
    expect(new Set(got.frameIndices).size).toBe(got.frameIndices.length); // no repeated tail
  });

  it('variable frame rate: frames are numbered as decoded, none duplicated or dropped to a constant rate', async () => {
    // 1 frame per 0.5 s, then 10 per second; the stream header still says 10 fps.
    const vfr = gen('vfr.mkv', 'testsrc=size=64x48:rate=10', ['-t', '20', '-vf', "setpts='if(lt(N\\,60)\\,N*0.5\\,30+(N-60)*0.1)/TB'", '-fps_mode', 'passthrough', '-c:v', 'ffv1']);
    const all = spawnSync('ffmpeg', ['-v', 'error', '-i', vfr, '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { maxBuffer: 1 << 26 }).stdout;
    const FRAME = 64 * 48 * 3;
    const tools = await findFfmpeg();
    const probe = await probeVideo(vfr, tools);
    expect(probe.totalFrames).toBe(all.length / FRAME); // counted packets: every stored frame once
    const wanted = [0, 1, 17, probe.totalFrames - 1];
    const got: Uint8Array[] = [];
    await decodeVideoFrames(vfr, tools, probe, wanted, (f) => {
      got.push(f);
    });
    wanted.forEach((idx, k) => expect(Buffer.compare(Buffer.from(got[k]), all.subarray(idx * FRAME, (idx + 1) * FRAME))).toBe(0));
    expect((await processVideo(vfr, q3, small)).frameIndices).toEqual(sampleFramesQwenVlUtils(probe.totalFrames, probe.fps).indices);
  });

  it('abort and callback errors stop FFmpeg and reap it', async () => {
    const tools = { ...(await findFfmpeg()), ffmpeg: wrapper };
    const wanted = Array.from({ length: 700 }, (_, i) => i * 5);
    // Abort from inside the first frame's callback.
    const ac = new AbortController();
    rmSync(marks, { force: true });
    const aborted = await errorOf(decodeVideoFrames(long, tools, { width: 160, height: 120 }, wanted, () => ac.abort(), { signal: ac.signal }));
    expect(aborted.code).toBe('E_ABORTED');
    // A callback that throws: its error comes back.
    const boom = new Error('consumer failed');
    let thrown: unknown;
    try {
      await decodeVideoFrames(long, tools, { width: 160, height: 120 }, wanted, () => {
        throw boom;
      });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBe(boom);
    // Aborted while FFmpeg is still seeking the first wanted frame (late in the file).
    const late = new AbortController();
    const pending = errorOf(decodeVideoFrames(long, tools, { width: 160, height: 120 }, [3590], () => {}, { signal: late.signal }));
    setTimeout(() => late.abort(), 50);
    expect((await pending).code).toBe('E_ABORTED');
    const pids = ffmpegRuns();
    expect(pids.length).toBe(3);
    for (const pid of pids) expect(exists(pid), `ffmpeg ${pid} still exists`).toBe(false);
    // processVideo: an aborted signal stops it before FFmpeg starts; a later abort kills FFmpeg.
    await withWrapper(async () => {
      const done = new AbortController();
      done.abort();
      expect((await errorOf(processVideo(long, q3, { signal: done.signal }))).code).toBe('E_ABORTED');
      expect(ffmpegRuns()).toEqual([]);
      const later = new AbortController();
      const running = errorOf(processVideo(long, q3, { signal: later.signal, ...small }));
      const started = Date.now();
      while (ffmpegRuns().length === 0 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 5));
      later.abort();
      expect((await running).code).toBe('E_ABORTED');
      const [pid] = ffmpegRuns();
      expect(exists(pid), `ffmpeg ${pid} still exists`).toBe(false);
    });
  });

  it('a flood on FFmpeg stderr is drained and only its tail reported', async () => {
    const real = (await findFfmpeg()).ffmpeg;
    const flood = (name: string, then: string): string => {
      const path = join(dir, name);
      // 19 MB of diagnostics before FFmpeg starts: an unread pipe would block it forever.
      writeFileSync(path, `#!/bin/sh\nyes 'damaged macroblock, concealing errors' | head -n 500000 >&2\n${then}\n`);
      chmodSync(path, 0o755);
      return path;
    };
    const tools = await findFfmpeg();
    const noisy = { ...tools, ffmpeg: flood('noisy-ffmpeg.sh', `exec '${real}' "$@"`) };
    expect(await decodeVideoFrames(lossless, noisy, { width: 64, height: 48 }, [0, 239], () => {})).toBe(2);
    const failing = { ...tools, ffmpeg: flood('failing-ffmpeg.sh', "echo 'the last word' >&2; exit 3") };
    const err = await errorOf(decodeVideoFrames(lossless, failing, { width: 64, height: 48 }, [0], () => {}));
    expect(err.code).toBe('E_INPUT');
    expect(err.message).toMatch(/cannot be decoded \(ffmpeg: the last word\)/);
    expect(err.message.length).toBeLessThan(500);
  });

  it.skipIf(!existsSync(join(QWEN3_CKPT, 'config.json')))('qwenvl chat --video with a 1-hour video answers', () => {
    expect(statSync(long).size).toBeGreaterThan(0);
    const chat = (extra: string[]) =>
      spawnSync(tsx, ['lib/cli/main.ts', 'chat', '--model', QWEN3_CKPT, '--video', long, ...extra, '--max-tokens', '2', 'What happens in this video?'], {
        cwd: repo,
        encoding: 'utf8',
      });
    const r = chat(['--video-max-frames', '16']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(1);
    // At the default sampling an hour keeps what the default vision budget allows.
    const fitted = chat([]);
    expect(fitted.status, fitted.stderr).toBe(0);
    expect(fitted.stdout.length).toBeGreaterThan(1);
    // A pinned sampling over the budget: a typed refusal, not a crash.
    const refused = chat(['--video-fps', '2']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/E_INPUT: .*vision tokens, over the budget of 16384.*refused before decoding/);
  });
});
