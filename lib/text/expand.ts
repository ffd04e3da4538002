/**
 * Placeholder expansion, done on the prompt text exactly as the Qwen-VL processors of transformers do it
 * (Qwen2VLProcessor / Qwen2_5_VLProcessor / Qwen3VLProcessor `__call__`, 4.57) before tokenizing:
 *
 * - images: across the batch rows in order, each `<|image_pad|>` is replaced (first occurrence first) by
 *   `grid_t·grid_h·grid_w / merge²` copies of itself, the image index running on from row to row;
 * - videos (Qwen2-VL, Qwen2.5-VL): the same with `<|video_pad|>` and the video grids;
 * - videos (Qwen3-VL): each video becomes, per temporal patch group t,
 *   `<{timestamp_t:.1f} seconds><|vision_start|>` + `grid_h·grid_w / merge²` × `<|video_pad|>` + `<|vision_end|>`,
 *   replacing the first `<|vision_start|><|video_pad|><|vision_end|>` of the row (or, when the row has no such
 *   triple, its first bare `<|video_pad|>`).
 *
 * Expansion happens on text (not ids) because the timestamps are ordinary text that tokenizes together with its
 * neighbours. Like transformers, an intermediate `<|placeholder|>` marker is used, so a literal
 * `<|placeholder|>` in a prompt turns into a pad token too.
 * @module
 */
import { inputError } from '../errors.js';
import { publicCall } from '../validate.js';

/** A (t, h, w) patch grid, as `image_grid_thw` / `video_grid_thw` rows. */
export type PatchGrid = readonly [number, number, number] | readonly number[];

/** How a family expands video placeholders. */
export type VideoExpansionStyle = 'qwen2' | 'qwen3';

/** Inputs of {@link expandVisionPlaceholders}. */
export interface ExpandOptions {
  /** Patch grids of all images of the batch, in placeholder order. */
  imageGridThw?: readonly PatchGrid[];
  /** Patch grids of all videos of the batch, in placeholder order. */
  videoGridThw?: readonly PatchGrid[];
  /** Spatial merge size of the image processor (2 for every Qwen-VL checkpoint). */
  mergeSize?: number;
  /** Spatial merge size of the video processor; defaults to `mergeSize`. */
  videoMergeSize?: number;
  /** 'qwen3' inserts per-group timestamps (Qwen3-VL); 'qwen2' (default) repeats the pad token only. */
  videoStyle?: VideoExpansionStyle;
  /**
   * Qwen3-VL: for each video, the time in seconds of each temporal patch group (see {@link qwen3VideoTimestamps});
   * at least `grid_t` values per video.
   */
  videoTimestamps?: readonly (readonly number[])[];
  /** Token strings, when a checkpoint renames them. */
  tokens?: Partial<{ image: string; video: string; visionStart: string; visionEnd: string }>;
}

const PLACEHOLDER = '<|placeholder|>';

function checkGrid(grid: PatchGrid, what: string, merge: number): [number, number, number] {
  if (!Array.isArray(grid) || grid.length !== 3 || !grid.every((v) => Number.isInteger(v) && v > 0)) {
    throw inputError(`${what}: expected three positive integers (t, h, w), got ${JSON.stringify(grid)}`);
  }
  const [t, h, w] = grid as number[];
  if ((t * h * w) % (merge * merge) !== 0 || (h * w) % (merge * merge) !== 0) {
    throw inputError(`${what}: h·w = ${h * w} is not a multiple of merge² = ${merge * merge}`);
  }
  return [t, h, w];
}

/** Non-overlapping occurrences of `needle` in `text`. @internal */
export function countOf(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** `str.replace(old, new, 1)` of Python. */
function replaceFirst(text: string, needle: string, replacement: string): string {
  const i = text.indexOf(needle);
  return i === -1 ? text : text.slice(0, i) + replacement + text.slice(i + needle.length);
}

/**
 * Python's `f"{x:.1f}"`: the exact binary value rounded to one decimal, ties to even. (`Number#toFixed`
 * rounds exact ties away from zero: 0.25 -> "0.3" where Python gives "0.2".)
 */
export function formatFixed1(x: number): string {
  return publicCall('formatFixed1', arguments, () => formatFixed1Impl(x));
}

/** {@link formatFixed1} without the public guard, for internal callers: what it throws passes through unchanged. */
function formatFixed1Impl(x: number): string {
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : x < 0 ? '-inf' : 'nan';
  const neg = x < 0 || Object.is(x, -0);
  const a = Math.abs(x);
  // A double is exactly halfway between two tenths only when 4·a is an odd integer (a = k/4, k odd):
  // a tenth-boundary tie needs a denominator of 20 and only its factor 4 survives in binary.
  const q = a * 4;
  let body: string;
  if (a < 1e15 && Number.isInteger(q) && q % 2 === 1) {
    let tenths = Math.floor(a * 10); // exact: a*10 = 2.5*q, and q odd gives a .5 fraction
    if (tenths % 2 === 1) tenths += 1;
    body = `${Math.floor(tenths / 10)}.${tenths % 10}`;
  } else {
    body = a.toFixed(1);
  }
  return neg ? `-${body}` : body;
}

/**
 * Timestamps of a Qwen3-VL video's temporal patch groups (Qwen3VLProcessor._calculate_timestamps): the frame
 * indices are padded to a multiple of `groupSize` by repeating the last one, converted to seconds
 * (`index / fps`), and each group gets the mean of its first and last frame time.
 * @param frameIndices indices of the sampled frames in the source video (0..n-1 for pre-sampled frames)
 * @param fps frame rate of the source video (transformers falls back to 24 when unknown)
 * @param groupSize frames per temporal patch (2; transformers 4.57 passes the video processor's merge_size here,
 *   later versions its temporal_patch_size, both 2 in every released checkpoint)
 */
export function qwen3VideoTimestamps(frameIndices: readonly number[], fps = 24, groupSize = 2): number[] {
  return publicCall('qwen3VideoTimestamps', arguments, () => qwen3VideoTimestampsImpl(frameIndices, fps, groupSize));
}

/** {@link qwen3VideoTimestamps} without the public guard, for internal callers: what it throws passes through unchanged. */
export function qwen3VideoTimestampsImpl(frameIndices: readonly number[], fps = 24, groupSize = 2): number[] {
  if (!(fps > 0)) throw inputError(`video fps must be positive, got ${fps}`);
  if (!Number.isInteger(groupSize) || groupSize < 1) throw inputError(`groupSize must be a positive integer, got ${groupSize}`);
  if (frameIndices.length === 0) throw inputError('video has no frames');
  const idx = [...frameIndices];
  while (idx.length % groupSize !== 0) idx.push(idx[idx.length - 1]);
  const times = idx.map((i) => i / fps);
  const out: number[] = [];
  for (let i = 0; i < times.length; i += groupSize) out.push((times[i] + times[i + groupSize - 1]) / 2);
  return out;
}

/**
 * Expands `<|image_pad|>` / `<|video_pad|>` placeholders in rendered prompts (one string per batch row) into
 * the number of tokens the vision tower produces. Throws E_INPUT when the prompts hold a different number of
 * placeholders than there are grids.
 */
export function expandVisionPlaceholders(prompts: readonly string[], options: ExpandOptions = {}): string[] {
  return publicCall('expandVisionPlaceholders', arguments, () => expandVisionPlaceholdersImpl(prompts, options));
}

/** {@link expandVisionPlaceholders} without the public guard, for internal callers: what it throws passes through unchanged. */
export function expandVisionPlaceholdersImpl(prompts: readonly string[], options: ExpandOptions = {}): string[] {
  const image = options.tokens?.image ?? '<|image_pad|>';
  const video = options.tokens?.video ?? '<|video_pad|>';
  const vStart = options.tokens?.visionStart ?? '<|vision_start|>';
  const vEnd = options.tokens?.visionEnd ?? '<|vision_end|>';
  const merge = options.mergeSize ?? 2;
  const vMerge = options.videoMergeSize ?? merge;
  for (const [m, name] of [[merge, 'mergeSize'], [vMerge, 'videoMergeSize']] as const) {
    if (!Number.isInteger(m) || m < 1) throw inputError(`${name} must be a positive integer, got ${m}`);
  }
  const text = prompts.map((p, i) => {
    if (typeof p !== 'string') throw inputError(`prompts[${i}] must be a string`);
    return p;
  });

  const images = options.imageGridThw ?? [];
  const nImagePh = text.reduce((n, t) => n + countOf(t, image), 0);
  if (nImagePh !== images.length) {
    throw inputError(`the prompts hold ${nImagePh} ${image} placeholder(s) but ${images.length} image grid(s) were given`);
  }
  const videos = options.videoGridThw ?? [];
  const nVideoPh = text.reduce((n, t) => n + countOf(t, video), 0);
  if (nVideoPh !== videos.length) {
    throw inputError(`the prompts hold ${nVideoPh} ${video} placeholder(s) but ${videos.length} video grid(s) were given`);
  }

  // transformers runs this block only when images were passed; same for videos below.
  if (options.imageGridThw !== undefined) {
    let index = 0;
    for (let i = 0; i < text.length; i++) {
      while (text[i].includes(image)) {
        const [t, h, w] = checkGrid(images[index], `imageGridThw[${index}]`, merge);
        text[i] = replaceFirst(text[i], image, PLACEHOLDER.repeat((t * h * w) / (merge * merge)));
        index++;
      }
      text[i] = text[i].replaceAll(PLACEHOLDER, image);
    }
  }

  if (options.videoGridThw !== undefined) {
    const style = options.videoStyle ?? 'qwen2';
    let index = 0;
    for (let i = 0; i < text.length; i++) {
      while (text[i].includes(video)) {
        const [t, h, w] = checkGrid(videos[index], `videoGridThw[${index}]`, vMerge);
        if (style === 'qwen2') {
          text[i] = replaceFirst(text[i], video, PLACEHOLDER.repeat((t * h * w) / (vMerge * vMerge)));
        } else {
          const stamps = options.videoTimestamps?.[index];
          if (!stamps || stamps.length < t) {
            throw inputError(`videoTimestamps[${index}] must hold at least ${t} timestamps (one per temporal patch group)`);
          }
          const frame = vStart + PLACEHOLDER.repeat((h * w) / (vMerge * vMerge)) + vEnd;
          let expanded = '';
          for (let g = 0; g < t; g++) expanded += `<${formatFixed1Impl(stamps[g])} seconds>` + frame;
          const triple = vStart + video + vEnd;
          text[i] = text[i].includes(triple) ? replaceFirst(text[i], triple, expanded) : replaceFirst(text[i], video, expanded);
        }
        index++;
      }
      text[i] = text[i].replaceAll(PLACEHOLDER, video);
    }
  }
  return text;
}
