/**
 * Limits a video is checked against before its frames are decoded, so that a long video or a
 * long frame list is refused from its metadata rather than after the work: the number of
 * frames, the vision tokens they would give, and abort.
 * @module
 */
import { QwenVLError, inputError } from '../errors.js';
import type { VideoProcessorConfig } from './video-config.js';

/**
 * Default `maxVideoFrames` of processVideo: qwen-vl-utils' `FPS_MAX_FRAMES`, the most
 * frames its default sampling ever takes from a video.
 */
export const DEFAULT_MAX_VIDEO_FRAMES = 768;

/** The options these checks read (a subset of processVideo's). */
export interface VideoLimitOptions {
  maxVideoFrames?: number;
  maxVisualTokens?: number;
  signal?: AbortSignal;
}

/** Validates the limit options; returns the frame limit and the token limit (Infinity when unset). */
export function checkLimits(options: VideoLimitOptions): { maxFrames: number; maxTokens: number } {
  const maxFrames = options.maxVideoFrames ?? DEFAULT_MAX_VIDEO_FRAMES;
  if (typeof maxFrames !== 'number' || !Number.isSafeInteger(maxFrames) || maxFrames < 1) {
    throw inputError(`video maxVideoFrames must be a positive integer, got ${String(maxFrames)}`);
  }
  const maxTokens = options.maxVisualTokens ?? Infinity;
  if (typeof maxTokens !== 'number' || Number.isNaN(maxTokens) || maxTokens < 0) {
    throw inputError(`video maxVisualTokens must be a non-negative number, got ${String(maxTokens)}`);
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw inputError('video signal must be an AbortSignal');
  }
  return { maxFrames, maxTokens };
}

/** Throws E_INPUT when `n` frames are over the limit. */
export function checkFrameCount(n: number, maxFrames: number, where: string, hint: string): void {
  if (n > maxFrames) {
    throw inputError(`${where}: ${n} frames exceed the limit of ${maxFrames} (maxVideoFrames); ${hint}; refused before decoding`);
  }
}

/** Vision tokens (after merging) of `frames` frames of `size`: what the video will cost the prompt. */
export function videoTokens(frames: number, size: [number, number], config: VideoProcessorConfig): number {
  const t = Math.ceil(frames / config.temporalPatchSize);
  return (t * (size[0] / config.patchSize) * (size[1] / config.patchSize)) / (config.mergeSize * config.mergeSize);
}

/** Throws E_INPUT when the frames would give more vision tokens than `maxTokens`. */
export function checkTokens(frames: number, size: [number, number], config: VideoProcessorConfig, maxTokens: number, where: string): void {
  const tokens = videoTokens(frames, size, config);
  if (tokens > maxTokens) {
    throw inputError(
      `${where}: ${frames} frames of ${size[1]}x${size[0]} would give ${tokens} vision tokens, over the budget of ` +
        `${maxTokens}; lower fps, maxFrames or maxPixels, or raise the budget (LoadOptions.maxVisualTokens); refused before decoding`,
    );
  }
}

/** Throws E_ABORTED once the signal has fired. */
export function checkAborted(signal: AbortSignal | undefined, where: string): void {
  if (signal?.aborted) throw new QwenVLError('E_ABORTED', `${where}: aborted`);
}
