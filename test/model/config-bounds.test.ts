// A checkpoint's numbers are bounded before anything is sized by them: a huge value in any field of
// config.json, generation_config.json or the processor configs is a typed E_MODEL_FORMAT naming
// the file, the field and the bound, at once (not a heap exhausted by an array of 2**31 layers).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QwenVLError } from '../../lib/errors.js';
import { parseGenerationConfig, parseModelConfig } from '../../lib/model/config.js';
import { parseImageProcessorConfig } from '../../lib/processor/config.js';
import { parseVideoProcessorConfig } from '../../lib/processor/video-config.js';
import { MODEL_CONFIGS, REPO_FIXTURES } from '../helpers/fixtures.js';

const FIXTURES = REPO_FIXTURES;

type Json = Record<string, unknown>;

/** Every config.json at hand: the fixtures' and the official ones (quantized ones aside). */
const configs: [string, Json][] = [
  ...readdirSync(FIXTURES)
    .map((f) => join(FIXTURES, f, 'checkpoint', 'config.json'))
    .filter((p) => existsSync(p)),
  ...readdirSync(MODEL_CONFIGS).flatMap((d) =>
    existsSync(join(MODEL_CONFIGS, d)) && !d.endsWith('.md')
      ? readdirSync(join(MODEL_CONFIGS, d)).filter((f) => /^config(\.\w+)?\.json$/.test(f)).map((f) => join(MODEL_CONFIGS, d, f))
      : [],
  ),
]
  .map((p): [string, Json] => [p, JSON.parse(readFileSync(p, 'utf8')) as Json])
  .filter(([, j]) => j.quantization_config === undefined);

/**
 * Fields no qwenvl code reads (training settings, a duplicate of patch_size), and sliding_window,
 * read only with use_sliding_window (false in every released config; tested on its own below).
 */
const UNREAD = new Set(['attention_dropout', 'initializer_range', 'spatial_patch_size', 'sliding_window']);
/** Real-valued fields (JSON may spell 1000000.0 as an integer): made huge as 1e300. */
const REAL = new Set(['rope_theta', 'rms_norm_eps', 'mlp_ratio', 'tokens_per_second']);

/** Dotted paths of every number (and list of numbers) in a JSON object. */
function numericPaths(obj: Json, prefix = ''): string[] {
  return Object.entries(obj).flatMap(([k, v]) => {
    const path = prefix === '' ? k : `${prefix}.${k}`;
    if (typeof v === 'number') return [path];
    if (Array.isArray(v) && v.length > 0 && v.every((e) => typeof e === 'number')) return [path];
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return numericPaths(v as Json, path);
    return [];
  });
}

/** A deep copy of `obj` with the number(s) at `path` replaced by a huge value of the same kind. */
function withHuge(obj: Json, path: string): Json {
  const copy = structuredClone(obj);
  const keys = path.split('.');
  const parent = keys.slice(0, -1).reduce((o, k) => o[k] as Json, copy);
  const last = keys[keys.length - 1];
  const huge = (v: number) => (Number.isInteger(v) && !REAL.has(last) ? 2 ** 31 : 1e300);
  const v = parent[last];
  parent[last] = Array.isArray(v) ? (v as number[]).map(huge) : huge(v as number);
  return copy;
}

function formatError(fn: () => unknown): QwenVLError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(QwenVLError);
    expect((e as QwenVLError).code).toBe('E_MODEL_FORMAT');
    return e as QwenVLError;
  }
  throw new Error('expected an E_MODEL_FORMAT error, but the config was accepted');
}

describe('config.json: every number is bounded', () => {
  it.each(configs.map(([p, j]) => [p.slice(REPO_FIXTURES.length + 1), p, j] as const))('%s', (_name, file, json) => {
    const start = performance.now();
    const paths = numericPaths(json);
    expect(paths).toContain(paths.find((p) => p.endsWith('num_hidden_layers')));
    for (const path of paths) {
      const leaf = path.replace(/^(text_config|vision_config)\./, '');
      if (UNREAD.has(leaf) || UNREAD.has(path)) {
        expect(() => parseModelConfig(withHuge(json, path), file), path).not.toThrow();
        continue;
      }
      const err = formatError(() => parseModelConfig(withHuge(json, path), file));
      // The message names the file and the field (a token id may be refused as outside the vocabulary).
      expect(err.message, path).toContain(file);
      expect(err.message, path).toContain(`field "${path}"`);
      expect(err.message, path).toMatch(/over the limit of \d+|outside the vocabulary/);
    }
    expect(performance.now() - start).toBeLessThan(2000);
  });

  it('a decoder of 2**31 layers is refused before any per-layer array exists', () => {
    for (const [file, json] of configs) {
      const key = json.text_config ? 'text_config.num_hidden_layers' : 'num_hidden_layers';
      const start = performance.now();
      const err = formatError(() => parseModelConfig(withHuge(json, key), file));
      expect(err.message).toContain(`field "${key}": 2147483648 is over the limit of 1024`);
      expect(performance.now() - start).toBeLessThan(100);
    }
  });

  it('products that size one allocation are bounded too', () => {
    const [file, json] = configs.find(([, j]) => j.model_type === 'qwen2_vl')!;
    const big = structuredClone(json);
    Object.assign(big, { vocab_size: 2 ** 22, hidden_size: 65536 });
    (big.vision_config as Json).hidden_size = 65536;
    expect(formatError(() => parseModelConfig(big, file)).message).toMatch(
      /field "vocab_size": the embedding table \(vocab_size × hidden_size\) = 274877906944 is over the limit of 17179869184/,
    );
    const patch = structuredClone(json);
    Object.assign(patch.vision_config as Json, { patch_size: 1024, temporal_patch_size: 64 });
    expect(formatError(() => parseModelConfig(patch, file)).message).toContain('field "vision_config.patch_size": a vision patch');
    const merge = structuredClone(json);
    Object.assign(merge.vision_config as Json, { spatial_merge_size: 64, embed_dim: 65536, num_heads: 64 });
    expect(formatError(() => parseModelConfig(merge, file)).message).toContain('field "vision_config.spatial_merge_size": the merger input');
  });

  it('sliding_window is bounded where it is used', () => {
    const [file, json] = configs.find(([, j]) => j.model_type === 'qwen2_vl')!;
    const big = { ...structuredClone(json), use_sliding_window: true, sliding_window: 2 ** 31 };
    expect(formatError(() => parseModelConfig(big, file)).message).toContain('field "sliding_window": 2147483648 is over the limit of 16777216');
  });

  it('long lists are refused', () => {
    const [file, json] = configs.find(([, j]) => j.model_type === 'qwen2_vl')!;
    const big = structuredClone(json);
    (big.rope_scaling as Json).mrope_section = new Array(100000).fill(1);
    expect(formatError(() => parseModelConfig(big, file)).message).toContain('field "rope_scaling.mrope_section": 100000 entries are over the limit of 4096');
  });
});

describe('generation_config.json: every number is bounded', () => {
  const file = join(FIXTURES, 'qwen2-vl', 'checkpoint', 'generation_config.json');
  it.each([
    ['top_k', 2 ** 31],
    ['max_new_tokens', 2 ** 31],
    ['max_length', 2 ** 31],
    ['temperature', 1e300],
    ['repetition_penalty', 1e300],
    ['eos_token_id', 2 ** 31],
    ['eos_token_id', [1, 2 ** 31]],
    ['pad_token_id', 2 ** 31],
    ['bos_token_id', 2 ** 31],
  ])('%s: %s', (key, value) => {
    const err = formatError(() => parseGenerationConfig({ [key]: value }, file));
    expect(err.message).toContain(`${file}: field "${key}": `);
    expect(err.message).toMatch(/over the limit of \d+/);
  });
});

describe('processor configs: every number is bounded', () => {
  const file = 'preprocessor_config.json';
  it.each([
    [{ patch_size: 2 ** 31 }, '"patch_size" must be an integer from 1 to 1024'],
    [{ merge_size: 2 ** 31 }, '"merge_size" must be an integer from 1 to 64'],
    [{ temporal_patch_size: 2 ** 31 }, '"temporal_patch_size" must be an integer from 1 to 64'],
    [{ min_pixels: 2 ** 40, max_pixels: 2 ** 41 }, '"min_pixels" must be an integer from 0 to 16777216'],
    [{ max_pixels: 2 ** 40 }, '"max_pixels" must be an integer from 1 to 268435456'],
    [{ size: { shortest_edge: 2 ** 40, longest_edge: 2 ** 41 } }, '"size.shortest_edge" must be an integer from 1 to 16777216'],
    [{ size: { shortest_edge: 3136, longest_edge: 2 ** 41 } }, '"size.longest_edge" must be an integer from 1 to 268435456'],
    [{ patch_size: 1024, temporal_patch_size: 64 }, 'one patch holds 3 × temporal_patch_size × patch_size² = 201326592 values'],
  ])('image %j', (json, message) => {
    expect(formatError(() => parseImageProcessorConfig(json, file)).message).toContain(message);
    expect(formatError(() => parseVideoProcessorConfig(json, file, 'qwen2')).message).toContain(message);
  });

  it.each([
    [{ fps: 1e300 }, '"fps" must be a positive number up to 1000'],
    [{ max_frames: 2 ** 31 }, '"max_frames" must be a positive number up to 65536'],
    [{ min_frames: 2 ** 31 }, '"min_frames" must be a positive number up to 65536'],
  ])('video %j', (json, message) => {
    expect(formatError(() => parseVideoProcessorConfig(json, 'video_preprocessor_config.json', 'qwen3')).message).toContain(message);
  });
});
