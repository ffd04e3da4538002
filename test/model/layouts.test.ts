// The layout suite: every family, scaled down from its published config.json, written by the test
// in every official checkpoint layout (tied and untied lm_head, legacy `model.layers`/`visual.`
// and newer `model.language_model`/`model.visual` keys, one file or shards with an index, bf16 /
// f16 / f32 on disk). The same weights must give the same logits and greedy tokens in every
// layout; an lm_head with other values must change them; the published AWQ configs load their
// quantized tensors (official-quant.test.ts checks every quantized layout against its dequantized twin).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, QwenVLError } from '../../lib/index.js';
import {
  officialTensors,
  randomWeights,
  scaleConfig,
  scaleSections,
  scaleIndexes,
  writeByteLevelFiles,
  writeLayout,
  type DiskDtype,
  type Family,
  type LayoutOptions,
} from '../helpers/layout-checkpoint.js';
import { randomFloats } from '../helpers/safetensors-writer.js';
import { awqQuantize } from '../helpers/official-quant.js';
import { MODEL_CONFIGS, REPO_FIXTURES } from '../helpers/fixtures.js';
import { greedyAnswer } from '../helpers/greedy-answer.js';

const CONFIGS = MODEL_CONFIGS;
const FIX = REPO_FIXTURES;
const work = mkdtempSync(join(tmpdir(), 'qwenvl-layouts-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const fixtureDir: Record<Family, string> = {
  qwen2_vl: 'qwen2-vl',
  qwen2_5_vl: 'qwen2.5-vl',
  qwen3_vl: 'qwen3-vl',
  qwen3_vl_moe: 'qwen3-vl-moe',
};
const json = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;

interface Base {
  family: Family;
  /** Where the published config comes from. */
  source: string;
  config: Record<string, unknown>;
  dtype: DiskDtype;
}

// One published config per family (model-configs has none for Qwen3-VL-MoE: its fixture config,
// made from the published structure, stands in). Each family is written in a different dtype.
const BASES: Base[] = [
  { family: 'qwen2_vl', source: 'Qwen2-VL-2B-Instruct', config: json(join(CONFIGS, 'Qwen__Qwen2-VL-2B-Instruct/config.reconstructed.json')), dtype: 'BF16' },
  { family: 'qwen2_5_vl', source: 'Qwen2.5-VL-7B-Instruct', config: json(join(CONFIGS, 'Qwen__Qwen2.5-VL-7B-Instruct/config.json')), dtype: 'F16' },
  { family: 'qwen3_vl', source: 'Qwen3-VL-4B-Instruct', config: json(join(CONFIGS, 'Qwen__Qwen3-VL-4B-Instruct/config.partial.json')), dtype: 'F32' },
  { family: 'qwen3_vl_moe', source: 'fixture', config: json(join(FIX, 'qwen3-vl-moe/checkpoint/config.json')), dtype: 'BF16' },
];
const AWQ = ['Qwen__Qwen2.5-VL-7B-Instruct-AWQ', 'Qwen__Qwen2.5-VL-32B-Instruct-AWQ'];

let count = 0;
// Each family's tokenizer, template and processor files; tokenizer.json cut to its byte-level
// symbols and added tokens (same special ids) so that the many loads stay fast.
const files = new Map<Family, string>();
async function write(base: Base, config: Record<string, unknown>, weights: ReturnType<typeof randomWeights>, opts: LayoutOptions) {
  if (!files.has(base.family)) {
    const dir = join(work, `files-${base.family}`);
    writeByteLevelFiles(join(FIX, fixtureDir[base.family], 'checkpoint'), dir);
    files.set(base.family, dir);
  }
  const dir = join(work, `${base.family}-${count++}`);
  await writeLayout(dir, config, weights, files.get(base.family)!, opts);
  return dir;
}

describe('the generator writes the official tensor names', () => {
  it.each(Object.keys(fixtureDir) as Family[])('%s: names and shapes equal the fixture checkpoint (made by transformers)', (family) => {
    const dir = join(FIX, fixtureDir[family]);
    const manifest = json(join(dir, 'manifest.json')).checkpoint_tensors as Record<string, [number[], string]>;
    const want = new Map(Object.entries(manifest).map(([k, [shape]]) => [k.replace(/^model\.language_model\./, 'model.').replace(/^model\.visual\./, 'visual.'), shape]));
    const got = officialTensors(family, json(join(dir, 'checkpoint/config.json')));
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want));
  });

  it('scales mrope sections and block indexes in proportion', () => {
    expect(scaleSections([16, 24, 24], 8)).toEqual([2, 3, 3]);
    expect(scaleSections([24, 20, 20], 8)).toEqual([3, 3, 2]);
    expect(scaleIndexes([7, 15, 23, 31], 32, 8)).toEqual([1, 3, 5, 7]);
    expect(scaleIndexes([5, 11, 17], 24, 4)).toEqual([0, 1, 2]);
  });
});

describe.each(BASES)('$family (scaled from $source, $dtype on disk)', (base) => {
  const config = scaleConfig(base.family, base.config);
  const weights = randomWeights(officialTensors(base.family, config), 7);
  const embed = weights.get('model.embed_tokens.weight')!.values;

  it('every layout of the same weights gives identical logits and tokens; another lm_head changes them', async () => {
    let reference: { tokens: number[]; logits: Float32Array } | undefined;
    const seen: string[] = [];
    for (const untied of [false, true]) {
      for (const prefixes of ['legacy', 'new'] as const) {
        for (const sharded of [false, true]) {
          const what = `${untied ? 'untied' : 'tied'} ${prefixes} ${sharded ? 'sharded' : 'single'}`;
          const dir = await write(base, config, weights, { prefixes, sharded, dtype: base.dtype, ...(untied ? { lmHead: Float32Array.from(embed) } : {}) });
          const got = await greedyAnswer(dir);
          rmSync(dir, { recursive: true, force: true });
          seen.push(what);
          if (!reference) {
            reference = got;
            expect(got.tokens.length, what).toBeGreaterThan(0);
            expect(got.logits.every(Number.isFinite), what).toBe(true);
            continue;
          }
          expect(got.tokens, what).toEqual(reference.tokens);
          expect(Buffer.from(got.logits.buffer).equals(Buffer.from(reference.logits.buffer)), `${what}: logits differ`).toBe(true);
        }
      }
    }
    expect(seen).toHaveLength(8);
    const other = randomFloats(embed.length, 99).map((x) => x * 0.6);
    const dir = await write(base, config, weights, { prefixes: 'new', sharded: true, dtype: base.dtype, lmHead: other });
    const changed = await greedyAnswer(dir);
    rmSync(dir, { recursive: true, force: true });
    let diff = 0;
    for (let i = 0; i < changed.logits.length; i++) diff = Math.max(diff, Math.abs(changed.logits[i] - reference!.logits[i]));
    expect(diff).toBeGreaterThan(0.1);
  }, 60_000);
});

describe('an untied config whose checkpoint has no lm_head', () => {
  it('E_MODEL_FORMAT naming lm_head.weight and the index file', async () => {
    const base = BASES[1];
    const config = scaleConfig(base.family, base.config);
    const weights = randomWeights(officialTensors(base.family, config), 1);
    const dir = await write(base, config, weights, { prefixes: 'new', sharded: true, dtype: 'BF16' });
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, tie_word_embeddings: false }));
    const err = await loadModel(dir).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(QwenVLError);
    expect((err as QwenVLError).code).toBe('E_MODEL_FORMAT');
    expect((err as QwenVLError).message).toMatch(/model\.safetensors\.index\.json: .*tie_word_embeddings false .* no lm_head\.weight tensor/);
  });
});

describe.each(AWQ)('%s', (name) => {
  const published = json(join(CONFIGS, name, 'config.json'));
  const config = scaleConfig('qwen2_5_vl', published);
  const shapes = officialTensors('qwen2_5_vl', config);
  const base: Base = { family: 'qwen2_5_vl', source: name, config, dtype: 'BF16' };

  it('with its quantization_config: loads its AWQ tensors and answers', async () => {
    // AWQ's own tensors (gemm packing: 8 int4 per int32) for the text projections; vision unquantized.
    const q = (config.quantization_config ??= {}) as Record<string, unknown>;
    const group = 16;
    q.group_size = group;
    const plain = new Map([...shapes].filter(([n]) => !/^model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.weight$/.test(n)));
    const extra: LayoutOptions['extra'] = {};
    for (const [n, [out, inp]] of shapes) {
      if (plain.has(n)) continue;
      const p = n.replace(/\.weight$/, '');
      const t = awqQuantize(randomFloats(out * inp, out + inp).map((x) => x * 0.3), out, inp, group);
      extra[`${p}.qweight`] = { dtype: 'I32', shape: [inp, out / 8], data: t.qweight };
      extra[`${p}.qzeros`] = { dtype: 'I32', shape: [inp / group, out / 8], data: t.qzeros };
      extra[`${p}.scales`] = { dtype: 'F16', shape: [inp / group, out], data: t.scales };
    }
    const untied = published.tie_word_embeddings === false;
    const weights = randomWeights(plain, 3);
    const dir = await write(base, config, weights, {
      prefixes: 'legacy', sharded: true, dtype: 'F16', extra,
      ...(untied ? { lmHead: weights.get('model.embed_tokens.weight')!.values } : {}),
    });
    const got = await greedyAnswer(dir);
    expect(got.tokens.length).toBeGreaterThan(0);
    expect(got.logits.every(Number.isFinite)).toBe(true);
  }, 30_000);

  it('its architecture without quantization loads and answers', async () => {
    const plainConfig = structuredClone(config);
    delete plainConfig.quantization_config;
    const weights = randomWeights(shapes, 5);
    const untied = published.tie_word_embeddings === false;
    const dir = await write(base, plainConfig, weights, {
      prefixes: 'new', sharded: false, dtype: 'BF16',
      ...(untied ? { lmHead: randomFloats(weights.get('model.embed_tokens.weight')!.values.length, 11) } : {}),
    });
    const got = await greedyAnswer(dir);
    expect(got.tokens.length).toBeGreaterThan(0);
  }, 30_000);
});
