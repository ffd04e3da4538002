/**
 * Video files through a system FFmpeg: `ffprobe` for the stream's size, frame rate and frame
 * count, `ffmpeg` for the frames. Decoding streams raw RGB through a pipe and asks FFmpeg's
 * `select` filter for the wanted frame numbers only, so a long video is never held in memory:
 * each selected frame is handed to a callback (which resizes it) as soon as it is complete.
 *
 * The tools are looked up as `QWENVL_FFMPEG` (the ffmpeg executable; `QWENVL_FFPROBE`, or an
 * `ffprobe` next to it, for the prober) or else on `PATH`. Without them, video files fail with
 * E_UNSUPPORTED (frame lists need no FFmpeg).
 *
 * Like the readers qwen-vl-utils uses (decord, torchvision, torchcodec), rotation metadata is
 * ignored (frames come as stored) and frame numbers count decoded frames from the start.
 * @module
 */
import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { basename, delimiter, dirname, extname, join, resolve } from 'node:path';
import { QwenVLError, inputError } from '../errors.js';

/** Paths of the FFmpeg executables in use. */
export interface FfmpegTools {
  ffmpeg: string;
  ffprobe: string;
}

/** What `ffprobe` says about a video's first video stream. */
export interface VideoProbe {
  width: number;
  height: number;
  /**
   * Frames in the stream: the header's count, else the packets counted (demuxing only), else
   * duration × fps. A file can hold fewer; decoding then delivers fewer (see decodeVideoFrames).
   */
  totalFrames: number;
  /** Average frame rate. */
  fps: number;
  /** Seconds, when known. */
  duration?: number;
}

const INSTALL_HINT =
  'install FFmpeg (Debian/Ubuntu: `apt-get install ffmpeg`; Fedora: `dnf install ffmpeg`; macOS: `brew install ffmpeg`; ' +
  'Windows: `winget install ffmpeg`) or set QWENVL_FFMPEG to the ffmpeg executable. ' +
  'Videos given as frame lists ({ frames, fps }) need no FFmpeg';

async function isExecutable(path: string): Promise<boolean> {
  try {
    const s = await stat(path);
    if (!s.isFile()) return false;
    if (process.platform !== 'win32') await access(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function onPath(name: string): Promise<string | undefined> {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d.length > 0);
  const exts = process.platform === 'win32' ? ['', ...(process.env.PATHEXT ?? '.EXE').split(';').map((e) => e.toLowerCase())] : [''];
  for (const dir of dirs) {
    for (const ext of exts) {
      const candidate = join(dir, name + ext);
      if (await isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

/**
 * Finds ffmpeg and ffprobe (see the module notes). Throws E_UNSUPPORTED, saying how to install
 * FFmpeg, when either is missing or `QWENVL_FFMPEG` / `QWENVL_FFPROBE` name something unusable.
 */
export async function findFfmpeg(): Promise<FfmpegTools> {
  const envFfmpeg = process.env.QWENVL_FFMPEG;
  const envFfprobe = process.env.QWENVL_FFPROBE;
  let ffmpeg: string | undefined;
  if (envFfmpeg) {
    if (!(await isExecutable(envFfmpeg))) {
      throw new QwenVLError('E_UNSUPPORTED', `video files need FFmpeg, but QWENVL_FFMPEG=${envFfmpeg} is not an executable file; ${INSTALL_HINT}`);
    }
    ffmpeg = envFfmpeg;
  } else {
    ffmpeg = await onPath('ffmpeg');
  }
  if (!ffmpeg) throw new QwenVLError('E_UNSUPPORTED', `video files need FFmpeg, but no ffmpeg was found on PATH; ${INSTALL_HINT}`);

  let ffprobe: string | undefined;
  if (envFfprobe) {
    if (!(await isExecutable(envFfprobe))) {
      throw new QwenVLError('E_UNSUPPORTED', `video files need ffprobe, but QWENVL_FFPROBE=${envFfprobe} is not an executable file; ${INSTALL_HINT}`);
    }
    ffprobe = envFfprobe;
  } else {
    if (envFfmpeg) {
      // ffprobe ships next to ffmpeg; keep the name's style (ffmpeg.exe -> ffprobe.exe).
      const sibling = join(dirname(envFfmpeg), basename(envFfmpeg).replace(/ffmpeg/i, 'ffprobe'));
      const named = sibling !== envFfmpeg ? sibling : join(dirname(envFfmpeg), 'ffprobe' + extname(envFfmpeg));
      if (await isExecutable(named)) ffprobe = named;
    }
    ffprobe ??= await onPath('ffprobe');
  }
  if (!ffprobe) throw new QwenVLError('E_UNSUPPORTED', `video files need ffprobe (part of FFmpeg), but none was found; ${INSTALL_HINT}`);
  return { ffmpeg, ffprobe };
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Keeps the last `limit` characters of a growing text (tool diagnostics). */
function tail(text: string, limit = 2000): string {
  return text.length > limit ? text.slice(text.length - limit) : text;
}

function lastLine(text: string): string {
  const lines = text.trim().split(/\r?\n/);
  return lines[lines.length - 1] ?? '';
}

function spawnError(tool: string, err: NodeJS.ErrnoException): QwenVLError {
  if (err.code === 'ENOENT' || err.code === 'EACCES') {
    return new QwenVLError('E_UNSUPPORTED', `cannot run ${tool} (${err.message}); ${INSTALL_HINT}`, { cause: err });
  }
  return new QwenVLError('E_NATIVE', `cannot run ${tool}: ${err.message}`, { cause: err });
}

function run(tool: string, args: string[], signal?: AbortSignal, stdoutLimit = 1 << 20): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    const onAbort = (): void => {
      child.kill('SIGKILL');
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      if (stdout.length < stdoutLimit) stdout += d;
    });
    child.stderr.on('data', (d: string) => {
      stderr = tail(stderr + d);
    });
    child.on('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(spawnError(tool, err));
    });
    child.on('close', (code) => {
      signal?.removeEventListener('abort', onAbort);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** `ffmpeg`'s URL for a local file: the `file:` protocol keeps a name with ':' or a leading '-' literal. */
function fileArg(path: string): string {
  return 'file:' + resolve(path);
}

function parseRate(v: unknown): number {
  if (typeof v !== 'string') return NaN;
  const m = /^(\d+(?:\.\d+)?)(?:\/(\d+(?:\.\d+)?))?$/.exec(v.trim());
  if (!m) return NaN;
  const num = Number(m[1]);
  const den = m[2] === undefined ? 1 : Number(m[2]);
  return den > 0 && num > 0 ? num / den : NaN;
}

function parseCount(v: unknown): number {
  const n = typeof v === 'string' ? Number(v) : typeof v === 'number' ? v : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : NaN;
}

async function ffprobeJson(tools: FfmpegTools, path: string, args: string[], signal?: AbortSignal): Promise<Record<string, unknown>> {
  if (signal?.aborted) throw abortedError(path);
  const r = await run(tools.ffprobe, ['-v', 'error', '-select_streams', 'v:0', ...args, '-of', 'json', fileArg(path)], signal);
  if (signal?.aborted) throw abortedError(path);
  if (r.code !== 0) {
    throw inputError(`video "${path}": cannot be decoded (ffprobe: ${lastLine(r.stderr) || `exit code ${r.code}`})`);
  }
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    throw new QwenVLError('E_NATIVE', `video "${path}": ffprobe printed no JSON`);
  }
}

/**
 * Reads the size, frame rate and frame count of a video's first video stream (nothing is
 * decoded). Throws E_INPUT when ffprobe cannot read the file or it has no video stream,
 * E_ABORTED on abort.
 */
export async function probeVideo(path: string, tools: FfmpegTools, options: { signal?: AbortSignal } = {}): Promise<VideoProbe> {
  const info = await ffprobeJson(tools, path, [
    '-show_entries',
    'stream=width,height,avg_frame_rate,r_frame_rate,nb_frames,duration:format=duration',
  ], options.signal);
  const streams = Array.isArray(info.streams) ? (info.streams as Record<string, unknown>[]) : [];
  const s = streams[0];
  if (!s) throw inputError(`video "${path}": has no video stream`);
  const width = Number(s.width), height = Number(s.height);
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    throw inputError(`video "${path}": cannot be decoded (no frame size in its video stream)`);
  }
  const format = (info.format ?? {}) as Record<string, unknown>;
  const durationNum = Number(s.duration ?? format.duration);
  const duration = Number.isFinite(durationNum) && durationNum > 0 ? durationNum : undefined;
  let totalFrames = parseCount(s.nb_frames);
  if (Number.isNaN(totalFrames)) {
    // Containers such as Matroska/WebM carry no frame count: count packets (demuxing only).
    const counted = await ffprobeJson(tools, path, ['-count_packets', '-show_entries', 'stream=nb_read_packets'], options.signal);
    const cs = Array.isArray(counted.streams) ? (counted.streams as Record<string, unknown>[])[0] : undefined;
    totalFrames = parseCount(cs?.nb_read_packets);
  }
  let fps = parseRate(s.avg_frame_rate);
  if (Number.isNaN(fps)) fps = parseRate(s.r_frame_rate);
  if (Number.isNaN(totalFrames) && duration !== undefined && fps > 0) {
    // No count anywhere (a raw elementary stream): duration × fps, as PyAV-based readers estimate it.
    totalFrames = parseCount(Math.round(duration * fps));
  }
  if (Number.isNaN(totalFrames)) throw inputError(`video "${path}": has no decodable frames`);
  if (Number.isNaN(fps) && duration !== undefined) fps = totalFrames / duration;
  if (!(fps > 0) || !Number.isFinite(fps)) throw inputError(`video "${path}": its frame rate is unknown`);
  return { width, height, totalFrames, fps, ...(duration !== undefined ? { duration } : {}) };
}

/**
 * Counts a video's frames by decoding its first video stream (`ffprobe -count_frames`): slow (the
 * whole stream is decoded, nothing is kept), for files whose metadata promised more frames than
 * decoding delivered. Killed on abort (E_ABORTED). Throws E_INPUT when ffprobe fails.
 */
export async function countVideoFrames(path: string, tools: FfmpegTools, options: { signal?: AbortSignal } = {}): Promise<number> {
  if (options.signal?.aborted) throw abortedError(path);
  const info = await ffprobeJson(tools, path, ['-count_frames', '-show_entries', 'stream=nb_read_frames'], options.signal);
  const s = Array.isArray(info.streams) ? (info.streams as Record<string, unknown>[])[0] : undefined;
  const n = parseCount(s?.nb_read_frames);
  return Number.isNaN(n) ? 0 : n;
}

/**
 * FFmpeg's `select` expression true exactly for the frame numbers `indices` (ascending, distinct),
 * as a binary search tree: `if(lt(n,m), <left half>, <right half>)` down to `eq(n,i)` leaves.
 *
 * Why a tree: FFmpeg's expression evaluator refuses deep expressions. Its parser has a
 * recursion budget of 100 (libavutil/eval.c), and current builds (e.g. Debian's 5.1.9, with the
 * fix "avutil/eval: Check depth of AVExpr") also refuse an AVExpr tree deeper than about 100
 * levels. A flat sum `eq(n,a)+eq(n,b)+...` is a left-deep tree, one level per term, so asking
 * for more than about 100 frames made FFmpeg fail at filter setup ("Error while parsing
 * expression", then "Error while processing the decoded data").
 * The tree is log2(count) levels deep and costs log2(count) comparisons per decoded frame.
 * Commas are escaped for the filtergraph parser.
 */
export function selectExpression(indices: readonly number[]): string {
  const build = (lo: number, hi: number): string => {
    if (hi - lo === 1) return `eq(n\\,${indices[lo]})`;
    const mid = (lo + hi) >>> 1;
    return `if(lt(n\\,${indices[mid]})\\,${build(lo, mid)}\\,${build(mid, hi)})`;
  };
  if (indices.length === 0) throw inputError('selectExpression: no frame numbers');
  return build(0, indices.length);
}

/**
 * Longest `select` expression put on one command line: Linux caps one argument at 128 KiB
 * (MAX_ARG_STRLEN), Windows a whole command line at 32 767 characters. Longer selections are
 * decoded in several passes, each a tree over a consecutive run of the wanted frames.
 */
const MAX_SELECT_CHARS = process.platform === 'win32' ? 24_000 : 100_000;

/** Splits ascending frame numbers into consecutive runs whose select expressions fit one command line. */
export function selectPasses(indices: readonly number[], maxChars = MAX_SELECT_CHARS): number[][] {
  const passes: number[][] = [];
  let current: number[] = [];
  let chars = 0;
  for (const i of indices) {
    // A leaf `eq(n\,i)` plus its share of an inner node `if(lt(n\,m)\,…\,…)`: an upper bound.
    const cost = 2 * String(i).length + 30;
    if (current.length > 0 && chars + cost > maxChars) {
      passes.push(current);
      current = [];
      chars = 0;
    }
    current.push(i);
    chars += cost;
  }
  if (current.length > 0) passes.push(current);
  return passes;
}

/** Options of {@link decodeVideoFrames}. */
export interface DecodeFramesOptions {
  /** Stops FFmpeg (the process is killed and reaped) and rejects with E_ABORTED. */
  signal?: AbortSignal;
  /** @internal Longest select expression per FFmpeg run (tests force several passes with it). */
  maxSelectChars?: number;
}

function abortedError(path: string): QwenVLError {
  return new QwenVLError('E_ABORTED', `video "${path}": decoding aborted`);
}

/**
 * Decodes the frames numbered `indices` (ascending, distinct; 0 = first decoded frame) as RGB24
 * at the probed size and calls `onFrame(rgb, k)` for the k-th of them, in order; the next frame
 * is read only after the returned promise settles. Frames are streamed: FFmpeg drops every frame
 * not wanted before converting it, and only the current frame is buffered here, so memory does
 * not depend on the video's length. FFmpeg is stopped once the last wanted frame arrives, when
 * `onFrame` throws and on abort; it is always reaped before this returns. Returns how many
 * frames were delivered (fewer than asked when the stream ends early). Throws E_INPUT when
 * FFmpeg fails on the file, E_ABORTED on abort.
 */
export async function decodeVideoFrames(
  path: string,
  tools: FfmpegTools,
  probe: Pick<VideoProbe, 'width' | 'height'>,
  indices: readonly number[],
  onFrame: (rgb: Uint8Array, k: number) => Promise<void> | void,
  options: DecodeFramesOptions = {},
): Promise<number> {
  for (let i = 0; i < indices.length; i++) {
    if (!Number.isSafeInteger(indices[i]) || indices[i] < 0 || (i > 0 && indices[i] <= indices[i - 1])) {
      throw inputError('decodeVideoFrames: indices must be ascending distinct non-negative integers');
    }
  }
  if (options.signal?.aborted) throw abortedError(path);
  let delivered = 0;
  for (const pass of selectPasses(indices, options.maxSelectChars)) {
    const offset = delivered;
    const got = await decodePass(path, tools, probe, pass, (rgb, k) => onFrame(rgb, offset + k), options.signal);
    delivered += got;
    if (got < pass.length) break; // the stream ended
  }
  return delivered;
}

async function decodePass(
  path: string,
  tools: FfmpegTools,
  probe: Pick<VideoProbe, 'width' | 'height'>,
  indices: readonly number[],
  onFrame: (rgb: Uint8Array, k: number) => Promise<void> | void,
  signal: AbortSignal | undefined,
): Promise<number> {
  const args = (sync: string[]): string[] => [
    '-nostdin',
    '-hide_banner',
    '-loglevel',
    'error',
    '-noautorotate',
    '-i',
    fileArg(path),
    '-map',
    '0:v:0',
    '-vf',
    `select='${selectExpression(indices)}'`,
    ...sync,
    // FFmpeg stops by itself after the last wanted frame.
    '-frames:v',
    String(indices.length),
    '-f',
    'rawvideo',
    '-pix_fmt',
    'rgb24',
    'pipe:1',
  ];
  try {
    return await decodeWith(path, tools.ffmpeg, args(['-fps_mode', 'passthrough']), probe, indices.length, onFrame, signal);
  } catch (err) {
    // FFmpeg before 5.1 spells the frame-rate mode -vsync.
    if (err instanceof FpsModeUnknown) {
      return decodeWith(path, tools.ffmpeg, args(['-vsync', 'passthrough']), probe, indices.length, onFrame, signal);
    }
    throw err;
  }
}

/** Thrown by an FFmpeg that predates `-fps_mode` (before 5.1). */
class FpsModeUnknown extends Error {}

async function decodeWith(
  path: string,
  ffmpeg: string,
  args: string[],
  probe: Pick<VideoProbe, 'width' | 'height'>,
  wanted: number,
  onFrame: (rgb: Uint8Array, k: number) => Promise<void> | void,
  signal: AbortSignal | undefined,
): Promise<number> {
  // An abort that fired before this run (between passes) sends no further event.
  if (signal?.aborted) throw abortedError(path);
  const frameBytes = probe.width * probe.height * 3;
  const child = spawn(ffmpeg, args, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr = tail(stderr + d);
  });
  let spawnFailure: QwenVLError | undefined;
  const closed = new Promise<number | null>((resolvePromise) => {
    child.on('error', (err) => {
      spawnFailure = spawnError(ffmpeg, err);
      resolvePromise(null);
    });
    child.on('close', (code) => resolvePromise(code));
  });
  let stoppedByUs = false;
  const stop = (): void => {
    stoppedByUs = true;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const onAbort = (): void => {
    stop();
    // Ends the read loop below even while FFmpeg is silent.
    child.stdout.destroy();
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  let delivered = 0;
  let frame = new Uint8Array(frameBytes);
  let filled = 0;
  try {
    try {
      for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
        let offset = 0;
        while (offset < chunk.length && delivered < wanted) {
          const n = Math.min(frameBytes - filled, chunk.length - offset);
          frame.set(chunk.subarray(offset, offset + n), filled);
          filled += n;
          offset += n;
          if (filled === frameBytes) {
            const done = frame;
            frame = new Uint8Array(frameBytes);
            filled = 0;
            await onFrame(done, delivered);
            delivered++;
            if (signal?.aborted) break;
          }
        }
        if (delivered >= wanted || signal?.aborted) break;
      }
    } catch (err) {
      if (!signal?.aborted) {
        stop();
        await closed;
        throw err;
      }
    }
    if (delivered >= wanted || signal?.aborted) stop();
    const code = await closed;
    if (signal?.aborted) throw abortedError(path);
    if (spawnFailure) throw spawnFailure;
    if (!stoppedByUs && code !== 0) {
      if (delivered === 0 && /Unrecognized option 'fps_mode'/.test(stderr)) throw new FpsModeUnknown();
      throw inputError(`video "${path}": cannot be decoded (ffmpeg: ${lastLine(stderr) || `exit code ${code}`})`);
    }
    if (!stoppedByUs && filled !== 0) {
      throw inputError(`video "${path}": ffmpeg returned a partial frame (${filled} of ${frameBytes} bytes); the frame size changed mid-stream?`);
    }
    return delivered;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // Never leave FFmpeg running or unreaped, whatever happened above.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await closed;
    }
  }
}
