/**
 * Fixture access for the text tests: every case of every fixture folder (test/fixtures, plus
 * ../shared/fixtures when present; see test/helpers/fixtures.ts), plus a tiny reader for the int64
 * tensors (input_ids, attention_mask) of a case's tensors.safetensors.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureCaseRefs, fixtureFolders, folderOf } from '../helpers/fixtures.js';

export interface CaseMeta {
  name: string;
  conversations: Record<string, unknown>[][];
  images: string[];
  videos: { frames: string[]; fps: number }[];
  prompt_texts: string[];
  expanded_prompt_texts: string[];
  input_ids: number[][];
  input_tokens: string[][];
  batch_size: number;
  seq_len: number;
  padding_side: string;
  image_grid_thw: number[][] | null;
  video_grid_thw: number[][] | null;
  generated_ids: number[][];
  generated_text: string[];
  generated_text_with_special: string[];
}

export interface FixtureCase {
  family: string;
  checkpoint: string;
  name: string;
  dir: string;
  meta: CaseMeta;
}

/** Fixture folders that have a checkpoint and cases. */
export function fixtureFamilies(): string[] {
  return fixtureFolders().map((f) => f.family);
}

/** The checkpoint folder of a family's fixture folder. */
export function checkpointOf(family: string): string {
  return join(folderOf(family), 'checkpoint');
}

export function fixtureCases(family: string): FixtureCase[] {
  return fixtureCaseRefs(family).map((c) => ({
    family,
    checkpoint: join(c.root, 'checkpoint'),
    name: c.name,
    dir: c.dir,
    meta: JSON.parse(readFileSync(join(c.dir, 'meta.json'), 'utf8')) as CaseMeta,
  }));
}

export function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

/** Reads one int64 tensor of a safetensors file as rows of numbers ([B, S] -> number[B][S]). */
export function readInt64Rows(file: string, name: string): number[][] {
  const buf = readFileSync(file);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const info = header[name];
  if (!info) throw new Error(`${file}: no tensor ${name}`);
  if (info.dtype !== 'I64' || info.shape.length !== 2) throw new Error(`${file}: ${name} is not a 2-D int64 tensor`);
  const [rows, cols] = info.shape;
  const base = 8 + headerLen + info.data_offsets[0];
  if (info.data_offsets[1] - info.data_offsets[0] !== rows * cols * 8) throw new Error(`${file}: ${name}: size mismatch`);
  return Array.from({ length: rows }, (_, r) =>
    Array.from({ length: cols }, (_, c) => Number(view.getBigInt64(base + (r * cols + c) * 8, true))),
  );
}

/** Video placeholder style of a checkpoint, from config.json's model_type. */
export function isQwen3(checkpoint: string): boolean {
  const cfg = readJson(join(checkpoint, 'config.json'));
  return typeof cfg.model_type === 'string' && cfg.model_type.startsWith('qwen3');
}

/** merge_size of the image (and video) processor configs. */
export function mergeSizes(checkpoint: string): { image: number; video: number } {
  const img = readJson(join(checkpoint, 'preprocessor_config.json'));
  const vidFile = join(checkpoint, 'video_preprocessor_config.json');
  const vid = existsSync(vidFile) ? readJson(vidFile) : img;
  return { image: Number(img.merge_size ?? 2), video: Number(vid.merge_size ?? img.merge_size ?? 2) };
}
