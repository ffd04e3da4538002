/**
 * M-RoPE position ids: the (temporal, height, width) position of every prompt token, as
 * transformers' `get_rope_index` of each family computes them (4.57), and the per-row delta that
 * positions decoded tokens afterwards.
 *
 * Text tokens get the same running index on all three axes. A run of vision placeholder tokens
 * (one image, or one video) is laid out on its merged grid: token (t, h, w) gets
 * (T(t), h, w) + the index the run starts at, and the text after it continues from the run's
 * largest position + 1. Padding positions (attention mask 0) hold 1.
 *
 * Family differences, all in the temporal index T(t) of videos:
 * - Qwen2-VL: T(t) = t.
 * - Qwen2.5-VL: T(t) = t × second_per_grid_t × tokens_per_second, where transformers 4.57 casts
 *   second_per_grid_t to an integer first (so 0.5 s per grid step becomes 0); images use 0.
 * - Qwen3-VL: each video is split into one grid per temporal step (the processor writes a text
 *   timestamp and its own vision_start/end around every frame group), so T is always 0.
 * @module
 */
import { inputError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { getFamilyImpl } from './registry.js';
import { publicCall } from '../validate.js';

/** Which family's get_rope_index to follow. */
export type RopeIndexKind = 'qwen2_vl' | 'qwen2_5_vl' | 'qwen3_vl';

/** (t, h, w) of one image or video in patches, as the processor reports it. */
export type GridThw = ArrayLike<number>;

/** Settings of {@link getRopeIndex}. */
export interface RopeIndexOptions {
  kind: RopeIndexKind;
  /** Patches merged per side into one token (`vision_config.spatial_merge_size`). */
  spatialMergeSize: number;
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
  /** Qwen2.5-VL: `vision_config.tokens_per_second`. */
  tokensPerSecond?: number;
  /** Qwen2.5-VL: seconds per temporal grid step of each video (temporal_patch_size / fps); 1 for any not given. */
  secondPerGridTs?: ArrayLike<number> | null;
}

/** Result of {@link getRopeIndex}. */
export interface RopeIndex {
  /** [axis (temporal, height, width)][row] → positions of the S tokens of that row. */
  positionIds: [Int32Array[], Int32Array[], Int32Array[]];
  /**
   * Per row: largest position + 1 − S (S = padded length). The token at cache position c
   * (counting padding) is at position c + delta on all three axes.
   */
  ropeDeltas: number[];
}

/** Position of a decoded token at cache position `cachePos` (padding included) on every axis. */
export function decodePosition(cachePos: number, ropeDelta: number): number {
  return publicCall('decodePosition', arguments, () => cachePos + ropeDelta);
}

/** {@link RopeIndexOptions} for a parsed checkpoint config. */
export function ropeIndexOptions(config: ModelConfig, secondPerGridTs?: ArrayLike<number> | null): RopeIndexOptions {
  return publicCall('ropeIndexOptions', arguments, () => ropeIndexOptionsImpl(config, secondPerGridTs));
}

/** {@link ropeIndexOptions} without the public guard, for internal callers: what it throws passes through unchanged. */
export function ropeIndexOptionsImpl(config: ModelConfig, secondPerGridTs?: ArrayLike<number> | null): RopeIndexOptions {
  const family = getFamilyImpl(config.family);
  if (family === undefined) throw inputError(`ropeIndexOptions: unknown family "${config.family}"`);
  return {
    kind: family.ropeIndex,
    spatialMergeSize: config.vision.spatialMergeSize,
    imageTokenId: config.tokens.imageTokenId,
    videoTokenId: config.tokens.videoTokenId,
    visionStartTokenId: config.tokens.visionStartTokenId,
    ...(config.vision.tokensPerSecond !== null ? { tokensPerSecond: config.vision.tokensPerSecond } : {}),
    ...(secondPerGridTs != null ? { secondPerGridTs } : {}),
  };
}

function checkGrids(name: string, grids: readonly GridThw[]): void {
  grids.forEach((g, i) => {
    if (g.length !== 3) throw inputError(`getRopeIndex: ${name}[${i}] must be (t, h, w), got ${g.length} values`);
    for (let k = 0; k < 3; k++) {
      if (!Number.isSafeInteger(g[k]) || g[k] < 1) {
        throw inputError(`getRopeIndex: ${name}[${i}] must hold positive integers, got [${Array.from(g).join(', ')}]`);
      }
    }
  });
}

/** Qwen3-VL positions every frame group of a video separately: (t, h, w) -> t × (1, h, w). */
function splitPerFrame(grids: readonly GridThw[]): GridThw[] {
  const out: GridThw[] = [];
  for (const g of grids) for (let t = 0; t < g[0]; t++) out.push([1, g[1], g[2]]);
  return out;
}

/** Temporal position offset of grid step `t` of a video (see the module notes). */
function temporalIndex(options: RopeIndexOptions, videoIndex: number): (t: number) => number {
  if (options.kind !== 'qwen2_5_vl') return (t) => t;
  const tps = options.tokensPerSecond ?? 4;
  const given = options.secondPerGridTs;
  const seconds = given != null && videoIndex < given.length ? given[videoIndex] : 1.0;
  // transformers 4.57 turns second_per_grid_t (a float32 value) into an int64 tensor: truncation.
  const step = Math.trunc(Math.fround(seconds));
  if (Number.isInteger(tps)) return (t) => t * step * tps;
  const tps32 = Math.fround(tps);
  return (t) => Math.trunc(Math.fround(t * step * tps32));
}

/**
 * Computes M-RoPE position ids and rope deltas for a batch of prompts, exactly as transformers'
 * get_rope_index of the family named by `options.kind`.
 *
 * @param inputIds      one array of token ids per row, all of the same length S (left padding allowed)
 * @param attentionMask per row, 1 for real tokens and 0 for padding; null means all ones
 * @param imageGridThw  (t, h, w) of every image in the batch, in placeholder order; null when none
 * @param videoGridThw  (t, h, w) of every video in the batch, in placeholder order; null when none
 * @throws QwenVLError E_INPUT when shapes disagree or the placeholders do not match the grids
 */
export function getRopeIndex(
  inputIds: readonly ArrayLike<number>[],
  attentionMask: readonly ArrayLike<number>[] | null | undefined,
  imageGridThw: readonly GridThw[] | null | undefined,
  videoGridThw: readonly GridThw[] | null | undefined,
  options: RopeIndexOptions,
): RopeIndex {
  return publicCall('getRopeIndex', arguments, () => getRopeIndexImpl(inputIds, attentionMask, imageGridThw, videoGridThw, options));
}

/** {@link getRopeIndex} without the public guard, for internal callers: what it throws passes through unchanged. */
export function getRopeIndexImpl(
  inputIds: readonly ArrayLike<number>[],
  attentionMask: readonly ArrayLike<number>[] | null | undefined,
  imageGridThw: readonly GridThw[] | null | undefined,
  videoGridThw: readonly GridThw[] | null | undefined,
  options: RopeIndexOptions,
): RopeIndex {
  const batch = inputIds.length;
  const seqLen = batch > 0 ? inputIds[0].length : 0;
  for (let b = 0; b < batch; b++) {
    if (inputIds[b].length !== seqLen) {
      throw inputError(`getRopeIndex: inputIds row ${b} has ${inputIds[b].length} tokens, row 0 has ${seqLen}`);
    }
  }
  if (attentionMask != null) {
    if (attentionMask.length !== batch) {
      throw inputError(`getRopeIndex: attentionMask has ${attentionMask.length} rows for ${batch} rows of inputIds`);
    }
    attentionMask.forEach((row, b) => {
      if (row.length !== seqLen) throw inputError(`getRopeIndex: attentionMask row ${b} has ${row.length} entries, expected ${seqLen}`);
      for (let s = 0; s < seqLen; s++) {
        if (row[s] !== 0 && row[s] !== 1) throw inputError(`getRopeIndex: attentionMask[${b}][${s}] is ${row[s]}, expected 0 or 1`);
      }
    });
  }
  if (!Number.isSafeInteger(options.spatialMergeSize) || options.spatialMergeSize < 1) {
    throw inputError(`getRopeIndex: spatialMergeSize must be a positive integer, got ${options.spatialMergeSize}`);
  }
  const axes = (): Int32Array[] => Array.from({ length: batch }, () => new Int32Array(seqLen));
  const positionIds: RopeIndex['positionIds'] = [axes(), axes(), axes()];
  const ropeDeltas: number[] = [];

  if (imageGridThw == null && videoGridThw == null) {
    // Text only: a running index over real tokens, 1 on padding.
    for (let b = 0; b < batch; b++) {
      let next = 0;
      let max = -Infinity;
      for (let s = 0; s < seqLen; s++) {
        const real = attentionMask == null || attentionMask[b][s] === 1;
        const p = real ? next++ : 1;
        positionIds[0][b][s] = p;
        positionIds[1][b][s] = p;
        positionIds[2][b][s] = p;
        max = Math.max(max, p);
      }
      ropeDeltas.push(attentionMask == null || seqLen === 0 ? 0 : max + 1 - seqLen);
    }
    return { positionIds, ropeDeltas };
  }

  const images = imageGridThw ?? [];
  let videos = videoGridThw ?? [];
  checkGrids('imageGridThw', images);
  checkGrids('videoGridThw', videos);
  if (options.kind === 'qwen3_vl') videos = splitPerFrame(videos);
  const merge = options.spatialMergeSize;
  const { imageTokenId, videoTokenId, visionStartTokenId } = options;
  let imageIndex = 0;
  let videoIndex = 0;

  for (let b = 0; b < batch; b++) {
    const row = inputIds[b];
    const realAt: number[] = [];
    for (let s = 0; s < seqLen; s++) if (attentionMask == null || attentionMask[b][s] === 1) realAt.push(s);
    const tokens = realAt.map((s) => row[s]);
    const n = tokens.length;
    if (n === 0) throw inputError(`getRopeIndex: row ${b} has no unpadded tokens`);

    // A vision run is announced by vision_start followed by an image or video placeholder.
    let imageRuns = 0;
    let videoRuns = 0;
    for (let j = 0; j < n; j++) {
      if (tokens[j] !== visionStartTokenId) continue;
      if (j + 1 >= n) throw inputError(`getRopeIndex: row ${b} ends with a vision_start token`);
      if (tokens[j + 1] === imageTokenId) imageRuns++;
      else if (tokens[j + 1] === videoTokenId) videoRuns++;
    }

    const t = new Int32Array(n);
    const h = new Int32Array(n);
    const w = new Int32Array(n);
    let filled = 0;
    let st = 0;
    let lastMax = -1; // largest position of the last block written (text or vision run)
    let remainImages = imageRuns;
    let remainVideos = videoRuns;
    const put = (pt: number, ph: number, pw: number) => {
      if (filled >= n) throw inputError(`getRopeIndex: row ${b} has fewer placeholder tokens than its image/video grids need`);
      t[filled] = pt;
      h[filled] = ph;
      w[filled] = pw;
      filled++;
    };
    for (let k = 0; k < imageRuns + videoRuns; k++) {
      const edImage = remainImages > 0 ? tokens.indexOf(imageTokenId, st) : -1;
      const edVideo = remainVideos > 0 ? tokens.indexOf(videoTokenId, st) : -1;
      if ((remainImages > 0 && edImage < 0) || (remainVideos > 0 && edVideo < 0)) {
        throw inputError(`getRopeIndex: row ${b}: a vision_start announces a placeholder that is not found after position ${st}`);
      }
      const isImage = edImage >= 0 && (edVideo < 0 || edImage < edVideo);
      let grid: GridThw;
      let tIndex: (t: number) => number;
      if (isImage) {
        if (imageIndex >= images.length) throw inputError(`getRopeIndex: row ${b} has more images than imageGridThw (${images.length})`);
        grid = images[imageIndex++];
        tIndex = options.kind === 'qwen2_5_vl' ? () => 0 : (x) => x;
        remainImages--;
      } else {
        if (videoIndex >= videos.length) throw inputError(`getRopeIndex: row ${b} has more videos than videoGridThw (${videos.length})`);
        tIndex = temporalIndex(options, videoIndex);
        grid = videos[videoIndex++];
        remainVideos--;
      }
      const ed = isImage ? edImage : edVideo;
      const gt = grid[0];
      const gh = Math.floor(grid[1] / merge);
      const gw = Math.floor(grid[2] / merge);
      if (gh < 1 || gw < 1) {
        throw inputError(`getRopeIndex: grid (${Array.from(grid).join(', ')}) is smaller than one merged token (merge ${merge})`);
      }
      const textStart = lastMax + 1;
      for (let j = st; j < ed; j++) {
        const p = textStart + (j - st);
        put(p, p, p);
      }
      const base = textStart + (ed - st);
      let runMax = -Infinity;
      for (let ti = 0; ti < gt; ti++) {
        const pt = tIndex(ti) + base;
        for (let hi = 0; hi < gh; hi++) {
          for (let wi = 0; wi < gw; wi++) {
            put(pt, base + hi, base + wi);
            runMax = Math.max(runMax, pt, base + hi, base + wi);
          }
        }
      }
      lastMax = runMax;
      st = ed + gt * gh * gw;
    }
    if (st < n) {
      const textStart = lastMax + 1;
      for (let j = st; j < n; j++) {
        const p = textStart + (j - st);
        put(p, p, p);
      }
    }
    if (filled !== n) {
      throw inputError(`getRopeIndex: row ${b} has ${n} tokens but its text and image/video grids account for ${filled}`);
    }
    let max = -Infinity;
    for (let j = 0; j < n; j++) {
      const s = realAt[j];
      positionIds[0][b][s] = t[j];
      positionIds[1][b][s] = h[j];
      positionIds[2][b][s] = w[j];
      max = Math.max(max, t[j], h[j], w[j]);
    }
    for (let s = 0; s < seqLen; s++) {
      if (attentionMask != null && attentionMask[b][s] !== 1) {
        positionIds[0][b][s] = 1;
        positionIds[1][b][s] = 1;
        positionIds[2][b][s] = 1;
      }
    }
    ropeDeltas.push(max + 1 - seqLen);
  }
  return { positionIds, ropeDeltas };
}
