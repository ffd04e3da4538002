/**
 * The conformance tool: runs every case of a reference fixture folder (checkpoint/, inputs/,
 * cases/<name>/{meta.json,tensors.safetensors}) through this build and compares each stage.
 * @module
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QwenVLError, formatError, inputError } from '../errors.js';
import { openSafetensorsImpl, type SafetensorsCheckpoint } from '../io/safetensors.js';
import { getFamilyImpl } from '../families/registry.js';
import { loadModel } from '../model/load.js';
import type { Model } from '../model/model.js';
import type { ChatMessage } from '../text/chat-template.js';
import { compareExact, compareFloat, type StageResult } from './compare.js';
import { publicCallAsync } from '../validate.js';

export type { StageResult } from './compare.js';

/** Tolerances: integer stages are exact; these are for the float stages. */
export interface ConformanceTolerances {
  /** pixel_values, max abs. Default 1e-5. */
  pixels: number;
  /** Hidden states and logits: max abs ≤ this × max |ref|. Default 1e-4. */
  relative: number;
}

/** Options of {@link runConformance}. */
export interface ConformanceOptions {
  /** Only cases whose name is listed. */
  cases?: readonly string[];
  tolerances?: Partial<ConformanceTolerances>;
  /** Called with each result as it is computed. */
  onResult?: (r: StageResult) => void;
}

interface CaseMeta {
  name: string;
  conversations: ChatMessage[][];
  images: string[];
  videos: ({ frames: string[]; fps?: number } | string)[];
  generated_ids: number[][];
  generation: { max_new_tokens: number; eos_token_id: number[] | number; repetition_penalty?: number };
}

/** Fills the fixture's source-less image and video parts with its input files, in order. */
function withInputs(meta: CaseMeta, root: string): ChatMessage[][] {
  const images = meta.images ?? [], videos = meta.videos ?? [];
  let i = 0, v = 0;
  return meta.conversations.map((conv) =>
    conv.map((msg) => {
      if (!Array.isArray(msg.content)) return msg;
      return {
        ...msg,
        content: msg.content.map((part) => {
          if (part.type === 'image') {
            if (i >= images.length) throw formatError('meta.json', 'more image parts than images');
            return { ...part, image: join(root, images[i++]) };
          }
          if (part.type === 'video') {
            if (v >= videos.length) throw formatError('meta.json', 'more video parts than videos');
            const src = videos[v++];
            if (typeof src === 'string') return { ...part, video: join(root, src) };
            return { ...part, video: src.frames.map((f) => join(root, f)), ...(src.fps !== undefined ? { fps: src.fps } : {}) };
          }
          return part;
        }),
      };
    }),
  );
}

function f32(ck: SafetensorsCheckpoint, name: string): Float32Array | null {
  return ck.tensors.has(name) ? ck.get(name).toFloat32() : null;
}
function ints(ck: SafetensorsCheckpoint, name: string): number[] | null {
  if (!ck.tensors.has(name)) return null;
  const t = ck.get(name);
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

async function runCase(model: Model, root: string, dir: string, tol: ConformanceTolerances, emit: (r: StageResult) => void): Promise<void> {
  const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as CaseMeta;
  const name = meta.name;
  const ref = await openSafetensorsImpl(join(dir, 'tensors.safetensors'));
  try {
    const conversations = withInputs(meta, root);
    const p = await model.prepare(conversations);
    const B = p.batchSize, S = p.seqLength, H = model.config.text.hiddenSize;
    emit(compareExact(name, 'input_ids', p.inputIds, ints(ref, 'input_ids')!));
    emit(compareExact(name, 'attention_mask', p.attentionMask, ints(ref, 'attention_mask')!));
    const refGrid = ints(ref, 'image_grid_thw');
    if (refGrid) emit(compareExact(name, 'image_grid_thw', p.imageGridThw.flat(), refGrid));
    const refVideoGrid = ints(ref, 'video_grid_thw');
    if (refVideoGrid) emit(compareExact(name, 'video_grid_thw', p.videoGridThw.flat(), refVideoGrid));
    emit(compareExact(name, 'position_ids', p.positionIds, ints(ref, 'position_ids')!));
    emit(compareExact(name, 'rope_deltas', p.ropeDeltas, ints(ref, 'rope_deltas')!));
    const refPixels = f32(ref, 'pixel_values');
    if (refPixels) emit(compareFloat(name, 'pixel_values', p.pixelValues ?? new Float32Array(), refPixels, 'abs', tol.pixels));
    const refVideoPixels = f32(ref, 'pixel_values_videos');
    if (refVideoPixels) {
      emit(compareFloat(name, 'pixel_values_videos', p.pixelValuesVideos ?? new Float32Array(), refVideoPixels, 'abs', tol.pixels));
    }

    const { stages, logits } = await model.trace(p);
    // Only real tokens are compared: what padded positions hold depends on how a reference masks them.
    const realRows: number[] = [];
    for (let i = 0; i < B * S; i++) if (p.attentionMask[i]) realRows.push(i);
    // Vision stages carry the reference's names: {image,video}_vision_patch_embed, ..._block_k,
    // {image,video}_embeds, deepstack_{image,video}_embeds.i.
    const pairs: [string, string, boolean][] = [];
    for (const kind of ['image', 'video']) {
      const names = [`${kind}_vision_patch_embed`];
      for (let k = 0; ref.tensors.has(`${kind}_vision_block_${k}`); k++) names.push(`${kind}_vision_block_${k}`);
      names.push(`${kind}_embeds`);
      for (let i = 0; ref.tensors.has(`deepstack_${kind}_embeds.${i}`); i++) names.push(`deepstack_${kind}_embeds.${i}`);
      for (const n of names) pairs.push([n, n, false]);
    }
    pairs.push(['text_embeds', 'text_embeds', true]);
    for (let l = 0; ref.tensors.has(`layer_input.${l}`); l++) pairs.push([`layer_input.${l}`, `layer_input.${l}`, true]);
    // The reference's final_hidden is transformers' last hidden_states entry, normed or not by family.
    const normed = getFamilyImpl(model.config.family)?.lastHiddenIsNormed ?? true;
    pairs.push([normed ? 'final_hidden' : 'last_layer_output', 'final_hidden', true]);
    for (const [ours, refName, perToken] of pairs) {
      const r = f32(ref, refName);
      if (!r) continue;
      const o = stages.get(ours);
      const data = o ? o.toFloat32() : new Float32Array();
      emit(compareFloat(name, refName, data, r, 'rel', tol.relative, perToken ? H : r.length, perToken ? realRows : null));
    }
    const V = logits.shape[1];
    const all = logits.data as Float32Array;
    const last = new Float32Array(B * V);
    for (let b = 0; b < B; b++) last.set(all.subarray((b * S + S - 1) * V, (b * S + S) * V), b * V);
    emit(compareFloat(name, 'logits_last', last, f32(ref, 'logits_last')!, 'rel', tol.relative));
    const topIds = ints(ref, 'logits_topk_ids');
    const topVals = f32(ref, 'logits_topk_values');
    if (topIds && topVals) {
      const k = topIds.length / (B * S);
      const picked = new Float32Array(topVals.length);
      for (let i = 0; i < B * S; i++) for (let j = 0; j < k; j++) picked[i * k + j] = all[i * V + topIds[i * k + j]];
      emit(compareFloat(name, 'logits_topk_values', picked, topVals, 'rel', tol.relative, k, realRows));
    }

    const eos = ([] as number[]).concat(meta.generation.eos_token_id ?? []);
    const results = await model.chat(conversations, {
      doSample: false,
      maxTokens: meta.generation.max_new_tokens,
      repetitionPenalty: meta.generation.repetition_penalty ?? 1,
      ...(eos.length > 0 ? { eosTokenIds: eos } : {}),
    });
    const refIds = ints(ref, 'generated_ids')!;
    const steps = refIds.length / B;
    for (let b = 0; b < B; b++) {
      const want = refIds.slice(b * steps, (b + 1) * steps);
      const eosAt = want.findIndex((t) => eos.includes(t));
      const expected = eosAt >= 0 ? want.slice(0, eosAt + 1) : want;
      emit(compareExact(name, `generated_ids[${b}]`, results[b].tokens, expected));
    }
  } finally {
    ref.dispose();
  }
}

/**
 * The case names of a fixture folder (the sub-folders of `<dir>/cases`), sorted.
 * @throws QwenVLError E_INPUT when the folder cannot be read or holds no case.
 */
export function listConformanceCases(dir: string): Promise<string[]> {
  return publicCallAsync('listConformanceCases', arguments, () => listConformanceCasesImpl(dir));
}

/** {@link listConformanceCases} without the public guard, for internal callers: what it throws passes through unchanged. */
export async function listConformanceCasesImpl(dir: string): Promise<string[]> {
  const casesDir = join(dir, 'cases');
  let entries;
  try {
    entries = await readdir(casesDir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new QwenVLError('E_INPUT', `${casesDir}: ${code === 'ENOENT' ? 'not found' : `cannot be read (${code ?? String(e)})`}; a fixture folder holds checkpoint/ and cases/<name>/`, { cause: e });
  }
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  if (names.length === 0) throw inputError(`${casesDir}: no cases`);
  return names;
}

/**
 * Runs every case of a fixture folder and returns one result per case and stage. A stage
 * fails when it misses its tolerance; integer stages (ids, grids, positions, generated
 * tokens) must match exactly.
 * @throws QwenVLError E_INPUT when `options.cases` names a case the folder does not have.
 */
export function runConformance(dir: string, options: ConformanceOptions = {}): Promise<StageResult[]> {
  return publicCallAsync('runConformance', arguments, () => runConformanceImpl(dir, options));
}

/** {@link runConformance} without the public guard, for internal callers: what it throws passes through unchanged. */
export async function runConformanceImpl(dir: string, options: ConformanceOptions = {}): Promise<StageResult[]> {
  const tol: ConformanceTolerances = { pixels: 1e-5, relative: 1e-4, ...options.tolerances };
  const results: StageResult[] = [];
  const emit = (r: StageResult) => {
    results.push(r);
    options.onResult?.(r);
  };
  const known = await listConformanceCasesImpl(dir);
  const unknown = (options.cases ?? []).filter((c) => !known.includes(c));
  if (unknown.length > 0) throw inputError(`unknown conformance case(s) ${unknown.join(', ')} (known: ${known.join(', ')})`);
  const names = options.cases ? known.filter((c) => options.cases!.includes(c)) : known;
  const model = await loadModel(join(dir, 'checkpoint'));
  try {
    for (const c of names) {
      try {
        await runCase(model, dir, join(dir, 'cases', c), tol, emit);
      } catch (err) {
        emit({ case: c, stage: 'run', kind: 'exact', maxAbs: Infinity, maxRel: Infinity, tolerance: 0, passed: false, note: (err as Error).message });
      }
    }
  } finally {
    model.dispose();
  }
  return results;
}
