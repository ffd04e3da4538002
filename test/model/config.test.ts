import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { QwenVLError } from '../../lib/errors.js';
import {
  loadGenerationDefaults,
  loadModelConfig,
  parseGenerationConfig,
  parseModelConfig,
  supportedModelTypes,
  type ModelConfig,
} from '../../lib/model/config.js';
import { MODEL_CONFIGS, fixtureFolders, folderOf } from '../helpers/fixtures.js';

const fixtureFamilies = fixtureFolders().map((f) => f.family);

/** Settings the fixture README states in its "Structural settings" list. */
function readmeSettings(family: string) {
  const readme = readFileSync(join(folderOf(family), 'README.md'), 'utf8');
  const textLine = readme.split('\n').find((l) => l.startsWith('- text:'))!;
  const num = (re: RegExp) => Number(textLine.match(re)![1]);
  const visionLine = readme.split('\n').find((l) => l.startsWith('- vision:'))!;
  const moeLine = readme.split('\n').find((l) => l.startsWith('- MoE:'));
  return {
    hidden: num(/hidden_size (\d+)/),
    layers: num(/layers (\d+)/),
    heads: num(/ heads (\d+)/),
    kvHeads: num(/kv heads (\d+)/),
    headDim: num(/head_dim (\d+)/),
    vocab: num(/vocab (\d+)/),
    tie: /tie_word_embeddings True/.test(textLine),
    ropeTheta: num(/rope_theta ([\d.]+)/),
    mropeSection: JSON.parse(textLine.match(/"mrope_section": (\[[^\]]*\])/)![1]) as number[],
    vision: JSON.parse(visionLine.slice('- vision: '.length)) as Record<string, unknown>,
    moe: moeLine
      ? {
          numExperts: Number(moeLine.match(/num_experts (\d+)/)![1]),
          topK: Number(moeLine.match(/num_experts_per_tok (\d+)/)![1]),
          moeInter: Number(moeLine.match(/moe_intermediate_size (\d+)/)![1]),
        }
      : undefined,
  };
}

type Shapes = Record<string, [number[], string]>;

/** The checkpoint's tensor shapes, looked up by name suffix (key prefixes differ by family). */
function shapesOf(family: string) {
  const manifest = JSON.parse(readFileSync(join(folderOf(family), 'manifest.json'), 'utf8')) as { checkpoint_tensors: Shapes };
  const names = Object.keys(manifest.checkpoint_tensors);
  const get = (suffix: string): number[] | undefined => {
    const hit = names.find((n) => n === suffix || n.endsWith(`.${suffix}`));
    return hit === undefined ? undefined : manifest.checkpoint_tensors[hit][0];
  };
  const count = (re: RegExp) => new Set(names.map((n) => n.match(re)?.[1]).filter((x) => x !== undefined)).size;
  return { names, get, count };
}

describe('fixture checkpoints: config.json', () => {
  it('finds the four fixture families', () => {
    expect(fixtureFamilies.sort()).toEqual(expect.arrayContaining(['qwen2-vl', 'qwen2.5-vl', 'qwen3-vl', 'qwen3-vl-moe']));
  });

  for (const family of fixtureFamilies) {
    describe(family, () => {
      let cfg: ModelConfig;
      it('parses and matches the README structural settings', async () => {
        cfg = await loadModelConfig(join(folderOf(family), 'checkpoint'));
        const s = readmeSettings(family);
        expect(cfg.family).toBe(family);
        expect(cfg.text.hiddenSize).toBe(s.hidden);
        expect(cfg.text.layers).toBe(s.layers);
        expect(cfg.text.heads).toBe(s.heads);
        expect(cfg.text.kvHeads).toBe(s.kvHeads);
        expect(cfg.text.headDim).toBe(s.headDim);
        expect(cfg.text.vocabSize).toBe(s.vocab);
        expect(cfg.text.tieWordEmbeddings).toBe(s.tie);
        expect(cfg.text.ropeTheta).toBe(s.ropeTheta);
        expect(cfg.text.mropeSection).toEqual(s.mropeSection);
        expect(cfg.text.ropeType).toBe('default');
        const v = s.vision;
        expect(cfg.vision.depth).toBe(v.depth);
        expect(cfg.vision.heads).toBe(v.num_heads);
        expect(cfg.vision.patchSize).toBe(v.patch_size);
        expect(cfg.vision.temporalPatchSize).toBe(v.temporal_patch_size);
        expect(cfg.vision.spatialMergeSize).toBe(v.spatial_merge_size);
        expect(cfg.vision.inChannels).toBe(v.in_channels ?? v.in_chans);
        if (family === 'qwen2-vl') {
          expect(cfg.vision.hiddenSize).toBe(v.embed_dim);
          expect(cfg.vision.outHiddenSize).toBe(v.hidden_size);
          expect(cfg.vision.intermediateSize).toBe((v.embed_dim as number) * (v.mlp_ratio as number));
          expect(cfg.vision.hiddenAct).toBe('quick_gelu'); // not in the file: the class default
        } else {
          expect(cfg.vision.hiddenSize).toBe(v.hidden_size);
          expect(cfg.vision.outHiddenSize).toBe(v.out_hidden_size);
          expect(cfg.vision.intermediateSize).toBe(v.intermediate_size);
          expect(cfg.vision.hiddenAct).toBe(v.hidden_act);
        }
        if (family === 'qwen2.5-vl') {
          expect(cfg.vision.windowSize).toBe(v.window_size);
          expect(cfg.vision.fullattBlockIndexes).toEqual(v.fullatt_block_indexes);
          expect(cfg.vision.tokensPerSecond).toBe(v.tokens_per_second);
        }
        if (family.startsWith('qwen3')) {
          expect(cfg.layout).toBe('nested');
          expect(cfg.text.mropeInterleaved).toBe(true);
          expect(cfg.text.qkNorm).toBe(true);
          expect(cfg.text.qkvBias).toBe(false);
          expect(cfg.vision.deepstackVisualIndexes).toEqual(v.deepstack_visual_indexes);
          expect(cfg.vision.numPositionEmbeddings).toBe(v.num_position_embeddings);
        } else {
          expect(cfg.layout).toBe('flat');
          expect(cfg.text.mropeInterleaved).toBe(false);
          expect(cfg.text.qkNorm).toBe(false);
          expect(cfg.text.qkvBias).toBe(true);
        }
        if (s.moe) {
          expect(cfg.text.moe).toBeDefined();
          expect(cfg.text.moe!.numExperts).toBe(s.moe.numExperts);
          expect(cfg.text.moe!.topK).toBe(s.moe.topK);
          expect(cfg.text.moe!.moeIntermediateSize).toBe(s.moe.moeInter);
          expect(cfg.text.moe!.sparseLayers).toEqual(Array(cfg.text.layers).fill(true));
        } else {
          expect(cfg.text.moe).toBeUndefined();
        }
        expect(cfg.tokens).toMatchObject({
          imageTokenId: 151655,
          videoTokenId: 151656,
          visionStartTokenId: 151652,
          visionEndTokenId: 151653,
          eosTokenIds: [151645],
        });
        expect(cfg.transformersVersion).toBe('4.57.6');
      });

      it('agrees with the checkpoint tensor shapes', async () => {
        cfg ??= await loadModelConfig(join(folderOf(family), 'checkpoint'));
        const { get, count, names } = shapesOf(family);
        const t = cfg.text;
        const v = cfg.vision;
        expect(count(/layers\.(\d+)\./)).toBe(t.layers);
        expect(get('embed_tokens.weight')).toEqual([t.vocabSize, t.hiddenSize]);
        expect(get('layers.0.self_attn.q_proj.weight')).toEqual([t.heads * t.headDim, t.hiddenSize]);
        expect(get('layers.0.self_attn.k_proj.weight')).toEqual([t.kvHeads * t.headDim, t.hiddenSize]);
        expect(get('layers.0.self_attn.o_proj.weight')).toEqual([t.hiddenSize, t.heads * t.headDim]);
        expect(get('layers.0.self_attn.q_proj.bias') !== undefined).toBe(t.qkvBias);
        expect(get('layers.0.self_attn.o_proj.bias') !== undefined).toBe(t.oBias);
        expect(get('layers.0.self_attn.q_norm.weight')).toEqual(t.qkNorm ? [t.headDim] : undefined);
        expect(names.some((n) => n.startsWith('lm_head'))).toBe(!t.tieWordEmbeddings);
        if (t.moe) {
          expect(get('layers.0.mlp.gate.weight')).toEqual([t.moe.numExperts, t.hiddenSize]);
          expect(get('layers.0.mlp.experts.gate_up_proj')).toEqual([t.moe.numExperts, t.hiddenSize, 2 * t.moe.moeIntermediateSize]);
        } else {
          expect(get('layers.0.mlp.gate_proj.weight')).toEqual([t.intermediateSize, t.hiddenSize]);
        }
        expect(count(/visual\.blocks\.(\d+)\./)).toBe(v.depth);
        expect(get('visual.blocks.0.attn.qkv.weight')).toEqual([3 * v.hiddenSize, v.hiddenSize]);
        expect(get('visual.patch_embed.proj.weight')).toEqual([v.hiddenSize, v.inChannels, v.temporalPatchSize, v.patchSize, v.patchSize]);
        const mergedWidth = v.hiddenSize * v.spatialMergeSize ** 2;
        if (cfg.family === 'qwen2-vl') {
          expect(get('visual.blocks.0.mlp.fc1.weight')).toEqual([v.intermediateSize, v.hiddenSize]);
          expect(get('visual.merger.mlp.2.weight')).toEqual([v.outHiddenSize, mergedWidth]);
        } else if (cfg.family === 'qwen2.5-vl') {
          expect(get('visual.blocks.0.mlp.gate_proj.weight')).toEqual([v.intermediateSize, v.hiddenSize]);
          expect(get('visual.merger.mlp.2.weight')).toEqual([v.outHiddenSize, mergedWidth]);
        } else {
          expect(get('visual.blocks.0.mlp.linear_fc1.weight')).toEqual([v.intermediateSize, v.hiddenSize]);
          expect(get('visual.merger.linear_fc2.weight')).toEqual([v.outHiddenSize, mergedWidth]);
          expect(get('visual.pos_embed.weight')).toEqual([v.numPositionEmbeddings, v.hiddenSize]);
          expect(count(/deepstack_merger_list\.(\d+)\./)).toBe(v.deepstackVisualIndexes.length);
        }
      });

      it('reads generation_config.json', async () => {
        const dir = join(folderOf(family), 'checkpoint');
        const g = await loadGenerationDefaults(dir, await loadModelConfig(dir));
        const raw = JSON.parse(readFileSync(join(dir, 'generation_config.json'), 'utf8')) as Record<string, number>;
        expect(g.source).toBe('generation_config.json');
        expect(g.eosTokenIds).toEqual([151645, 151643]);
        expect(g.padTokenId).toBe(151643);
        expect(g.bosTokenId).toBe(151643);
        expect(g.doSample).toBe(true);
        expect(g.temperature).toBe(raw.temperature);
        expect(g.topP).toBe(raw.top_p);
        expect(g.topK).toBe(raw.top_k);
        expect(g.repetitionPenalty).toBe(raw.repetition_penalty);
        expect(g.maxNewTokens).toBeNull();
      });
    });
  }
});

function loadJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

describe('published checkpoint configs (test/fixtures/model-configs)', () => {
  const dirs = readdirSync(MODEL_CONFIGS).filter((d) => !d.endsWith('.md'));
  const configFile = (d: string) => readdirSync(join(MODEL_CONFIGS, d)).find((f) => /^config(\.[a-z]+)?\.json$/.test(f))!;

  it('parses every config file there', () => {
    expect(dirs.length).toBeGreaterThanOrEqual(5);
    for (const d of dirs) {
      const cfg = parseModelConfig(loadJson(join(MODEL_CONFIGS, d, configFile(d))), `${d}/${configFile(d)}`);
      expect(cfg.text.layers).toBeGreaterThan(0);
    }
  });

  it('Qwen2-VL-2B-Instruct (reconstructed): published architecture numbers', () => {
    const cfg = parseModelConfig(loadJson(join(MODEL_CONFIGS, 'Qwen__Qwen2-VL-2B-Instruct', 'config.reconstructed.json')));
    expect(cfg.family).toBe('qwen2-vl');
    expect(cfg.text).toMatchObject({
      layers: 28, hiddenSize: 1536, heads: 12, kvHeads: 2, headDim: 128, intermediateSize: 8960,
      vocabSize: 151936, tieWordEmbeddings: true, ropeTheta: 1e6, mropeSection: [16, 24, 24], rmsEps: 1e-6,
      maxPositionEmbeddings: 32768, slidingWindow: null,
    });
    expect(cfg.vision).toMatchObject({
      depth: 32, hiddenSize: 1280, heads: 16, headDim: 80, intermediateSize: 5120, mlpRatio: 4,
      outHiddenSize: 1536, patchSize: 14, spatialMergeSize: 2, temporalPatchSize: 2, hiddenAct: 'quick_gelu',
    });
  });

  it('Qwen2.5-VL-7B-Instruct (verbatim): published architecture numbers', () => {
    const dir = join(MODEL_CONFIGS, 'Qwen__Qwen2.5-VL-7B-Instruct');
    const cfg = parseModelConfig(loadJson(join(dir, 'config.json')));
    expect(cfg.family).toBe('qwen2.5-vl');
    expect(cfg.layout).toBe('flat');
    expect(cfg.text).toMatchObject({
      layers: 28, hiddenSize: 3584, heads: 28, kvHeads: 4, headDim: 128, intermediateSize: 18944,
      vocabSize: 152064, tieWordEmbeddings: false, maxPositionEmbeddings: 128000, mropeSection: [16, 24, 24],
      ropeTheta: 1e6,
    });
    expect(cfg.vision).toMatchObject({
      depth: 32, hiddenSize: 1280, heads: 16, intermediateSize: 3420, outHiddenSize: 3584, windowSize: 112,
      fullattBlockIndexes: [7, 15, 23, 31], tokensPerSecond: 2, hiddenAct: 'silu',
    });
    expect(cfg.quantization).toBeNull();
    const g = parseGenerationConfig(loadJson(join(dir, 'generation_config.json')), 'generation_config.json', cfg);
    expect(g).toMatchObject({
      doSample: true, temperature: 1e-6, repetitionPenalty: 1.05, eosTokenIds: [151645, 151643], padTokenId: 151643,
      topP: 1.0, topK: 50,
    });
  });

  it('Qwen2.5-VL-7B-Instruct-AWQ: minimal vision_config takes the class defaults', () => {
    const dir = join(MODEL_CONFIGS, 'Qwen__Qwen2.5-VL-7B-Instruct-AWQ');
    const cfg = parseModelConfig(loadJson(join(dir, 'config.json')));
    expect(cfg.text).toMatchObject({ layers: 28, hiddenSize: 3584, heads: 28, kvHeads: 4, mropeSection: [16, 24, 24] });
    // Only hidden_size 1280 and tokens_per_second 2 are written; the rest are Qwen2_5_VLVisionConfig defaults.
    expect(cfg.vision).toMatchObject({
      depth: 32, hiddenSize: 1280, heads: 16, intermediateSize: 3420, outHiddenSize: 3584, windowSize: 112,
      fullattBlockIndexes: [7, 15, 23, 31], tokensPerSecond: 2, patchSize: 14, inChannels: 3,
    });
    expect(cfg.quantization).toMatchObject({ method: 'awq', bits: 4, groupSize: 128, zeroPoint: true, version: 'gemm', modulesToNotConvert: ['visual'] });
    const g = parseGenerationConfig(loadJson(join(dir, 'generation_config.json')), 'generation_config.json', cfg);
    expect(g).toMatchObject({ temperature: 0.1, topK: 1, topP: 0.001, repetitionPenalty: 1.05 });
  });

  it('Qwen2.5-VL-32B-Instruct-AWQ: 64 layers, 5120 wide', () => {
    const dir = join(MODEL_CONFIGS, 'Qwen__Qwen2.5-VL-32B-Instruct-AWQ');
    const cfg = parseModelConfig(loadJson(join(dir, 'config.json')));
    expect(cfg.text).toMatchObject({ layers: 64, hiddenSize: 5120, heads: 40, kvHeads: 8, headDim: 128, intermediateSize: 27648 });
    expect(cfg.vision).toMatchObject({ depth: 32, hiddenSize: 1280, intermediateSize: 3456, outHiddenSize: 5120 });
    expect(cfg.tokens.padTokenId).toBe(151643);
    // eos as a single number; no sampling fields: transformers' GenerationConfig defaults.
    const g = parseGenerationConfig(loadJson(join(dir, 'generation_config.json')), 'generation_config.json', cfg);
    expect(g).toMatchObject({ eosTokenIds: [151645], padTokenId: 151643, doSample: false, temperature: 1, topP: 1, topK: 50, repetitionPenalty: 1 });
  });

  it('Qwen3-VL-4B-Instruct (partial): numbers from its file', () => {
    const cfg = parseModelConfig(loadJson(join(MODEL_CONFIGS, 'Qwen__Qwen3-VL-4B-Instruct', 'config.partial.json')));
    expect(cfg.family).toBe('qwen3-vl');
    expect(cfg.text).toMatchObject({
      layers: 36, hiddenSize: 2560, heads: 32, kvHeads: 8, headDim: 128, intermediateSize: 9728,
      vocabSize: 151936, ropeTheta: 5e6, mropeSection: [24, 20, 20], mropeInterleaved: true, tieWordEmbeddings: true,
      maxPositionEmbeddings: 262144, qkNorm: true, qkvBias: false,
    });
    expect(cfg.vision).toMatchObject({
      depth: 24, hiddenSize: 1024, heads: 16, intermediateSize: 4096, patchSize: 16, outHiddenSize: 2560,
      deepstackVisualIndexes: [5, 11, 17], numPositionEmbeddings: 2304,
    });
    expect(cfg.dtype).toBe('bfloat16');
  });
});

describe('layouts and defaults', () => {
  const fixtureConfig = (family: string) =>
    loadJson(join(folderOf(family), 'checkpoint', 'config.json')) as Record<string, unknown>;

  it('reads a nested text_config for Qwen2.5-VL (newer transformers layout) like the flat one', () => {
    const flat = fixtureConfig('qwen2.5-vl');
    const textKeys = ['hidden_size', 'intermediate_size', 'num_attention_heads', 'num_hidden_layers', 'num_key_value_heads',
      'rms_norm_eps', 'rope_theta', 'rope_scaling', 'vocab_size', 'max_position_embeddings', 'tie_word_embeddings'];
    const text = Object.fromEntries(textKeys.map((k) => [k, flat[k]]));
    const nested: Record<string, unknown> = { ...flat, text_config: text };
    // The nested section wins over stale top-level values.
    nested.hidden_size = 999;
    const a = parseModelConfig(flat);
    const b = parseModelConfig(nested);
    expect(b.layout).toBe('nested');
    expect(b.text).toEqual(a.text);
  });

  it('accepts rope_parameters (transformers 5 layout) with rope_theta inside', () => {
    const cfg = fixtureConfig('qwen3-vl');
    const text = { ...(cfg.text_config as Record<string, unknown>) };
    text.rope_parameters = { ...(text.rope_scaling as object), rope_theta: 1234 };
    delete text.rope_scaling;
    delete text.rope_theta;
    const parsed = parseModelConfig({ ...cfg, text_config: text });
    expect(parsed.text.ropeTheta).toBe(1234);
    expect(parsed.text.mropeSection).toEqual([3, 3, 2]);
  });

  it('applies class defaults for absent fields', () => {
    const cfg = fixtureConfig('qwen2-vl');
    for (const k of ['rms_norm_eps', 'rope_theta', 'max_position_embeddings', 'num_key_value_heads', 'tie_word_embeddings']) delete cfg[k];
    cfg.vision_config = { hidden_size: 4096 }; // everything else: Qwen2VLVisionConfig defaults
    cfg.hidden_size = 4096;
    cfg.num_attention_heads = 32;
    cfg.rope_scaling = { type: 'mrope', mrope_section: [16, 24, 24] };
    const p = parseModelConfig(cfg);
    expect(p.text).toMatchObject({ rmsEps: 1e-5, ropeTheta: 1e6, maxPositionEmbeddings: 32768, kvHeads: 8, tieWordEmbeddings: false });
    expect(p.vision).toMatchObject({ depth: 32, hiddenSize: 1280, heads: 16, outHiddenSize: 4096, hiddenAct: 'quick_gelu', intermediateSize: 5120 });
    cfg.num_key_value_heads = null; // None: same as the attention heads
    expect(parseModelConfig(cfg).text.kvHeads).toBe(32);
  });

  it('Qwen3-VL head_dim defaults to 128; Qwen3-VL-MoE derives it from hidden / heads', () => {
    const dense = fixtureConfig('qwen3-vl');
    const denseText: Record<string, unknown> = { ...(dense.text_config as Record<string, unknown>), hidden_size: 64, num_attention_heads: 2, num_key_value_heads: 1 };
    delete denseText.head_dim;
    denseText.rope_scaling = { rope_type: 'default', mrope_section: [24, 20, 20] };
    expect(parseModelConfig({ ...dense, text_config: denseText, vision_config: { ...(dense.vision_config as object), out_hidden_size: 64 } }).text.headDim).toBe(128);
    const moe = fixtureConfig('qwen3-vl-moe');
    const moeText = { ...(moe.text_config as Record<string, unknown>) };
    delete moeText.head_dim;
    moeText.rope_scaling = { rope_type: 'default', mrope_section: [2, 1, 1] };
    expect(parseModelConfig({ ...moe, text_config: moeText }).text.headDim).toBe(8);
  });

  it('Qwen3-VL falls back to mrope_section [24, 20, 20] when rope_scaling names none', () => {
    const cfg = fixtureConfig('qwen3-vl');
    const text = { ...(cfg.text_config as Record<string, unknown>), head_dim: 128, rope_scaling: { rope_type: 'default' } };
    expect(parseModelConfig({ ...cfg, text_config: text }).text.mropeSection).toEqual([24, 20, 20]);
  });

  it('MoE: sparse layers follow decoder_sparse_step and mlp_only_layers', () => {
    const cfg = fixtureConfig('qwen3-vl-moe');
    const text = { ...(cfg.text_config as Record<string, unknown>), num_hidden_layers: 6, decoder_sparse_step: 2, mlp_only_layers: [3] };
    expect(parseModelConfig({ ...cfg, text_config: text }).text.moe!.sparseLayers).toEqual([false, true, false, false, false, true]);
  });

  it('sliding-window layers from max_window_layers when enabled', () => {
    const cfg = { ...fixtureConfig('qwen2-vl'), use_sliding_window: true, sliding_window: 64, max_window_layers: 1 };
    const p = parseModelConfig(cfg);
    expect(p.text.slidingWindow).toBe(64);
    expect(p.text.layerTypes).toEqual(['full_attention', 'sliding_attention']);
  });

  it('lists the supported model types', () => {
    expect(supportedModelTypes()).toEqual(['qwen2_vl', 'qwen2_5_vl', 'qwen3_vl', 'qwen3_vl_moe']);
  });
});

describe('errors', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'qwenvl-config-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  let n = 0;
  const folder = async (files: Record<string, string>) => {
    const dir = join(tmp, `case${n++}`);
    mkdirSync(dir);
    for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
    return dir;
  };
  const base = () => JSON.parse(readFileSync(join(folderOf('qwen2-vl'), 'checkpoint', 'config.json'), 'utf8')) as Record<string, unknown>;
  const qwen3 = () => JSON.parse(readFileSync(join(folderOf('qwen3-vl'), 'checkpoint', 'config.json'), 'utf8')) as Record<string, unknown>;

  async function expectError(files: Record<string, string>, code: string, ...parts: (string | RegExp)[]) {
    const dir = await folder(files);
    const err = await loadModelConfig(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(QwenVLError);
    expect((err as QwenVLError).code).toBe(code);
    for (const p of parts) expect((err as QwenVLError).message).toMatch(p);
    return err as QwenVLError;
  }
  const withChange = (cfg: Record<string, unknown>, change: (c: Record<string, unknown>) => void) => {
    change(cfg);
    return { 'config.json': JSON.stringify(cfg) };
  };

  it('missing config.json', async () => {
    await expectError({}, 'E_MODEL_FORMAT', 'config.json', /not found/);
  });

  it('invalid JSON', async () => {
    await expectError({ 'config.json': '{"model_type": ' }, 'E_MODEL_FORMAT', 'config.json', /not valid JSON/);
  });

  it('unknown model_type lists the supported ones', async () => {
    const e = await expectError(withChange(base(), (c) => (c.model_type = 'llava')), 'E_UNSUPPORTED', '"llava"');
    for (const t of ['qwen2_vl', 'qwen2_5_vl', 'qwen3_vl', 'qwen3_vl_moe']) expect(e.message).toContain(t);
  });

  it('missing model_type', async () => {
    await expectError(withChange(base(), (c) => delete c.model_type), 'E_MODEL_FORMAT', 'config.json', '"model_type"', /missing/);
  });

  it('mistyped field names file and field', async () => {
    await expectError(withChange(base(), (c) => (c.hidden_size = '32')), 'E_MODEL_FORMAT', 'config.json', '"hidden_size"', /positive integer/);
    await expectError(withChange(qwen3(), (c) => ((c.text_config as Record<string, unknown>).num_hidden_layers = 0)), 'E_MODEL_FORMAT', '"text_config.num_hidden_layers"');
    await expectError(withChange(base(), (c) => ((c.vision_config as Record<string, unknown>).depth = -1)), 'E_MODEL_FORMAT', '"vision_config.depth"');
  });

  it('heads not dividing hidden', async () => {
    await expectError(withChange(base(), (c) => (c.num_attention_heads = 3)), 'E_MODEL_FORMAT', '"num_attention_heads"', /do not divide hidden_size 32/);
  });

  it('kv heads not dividing heads', async () => {
    await expectError(
      withChange(qwen3(), (c) => ((c.text_config as Record<string, unknown>).num_key_value_heads = 3)),
      'E_MODEL_FORMAT', '"text_config.num_key_value_heads"', /do not divide 4 attention heads/,
    );
  });

  it('mrope sections not summing to head_dim / 2', async () => {
    await expectError(
      withChange(base(), (c) => (c.rope_scaling = { type: 'mrope', mrope_section: [2, 3, 2] })),
      'E_MODEL_FORMAT', '"rope_scaling"', /sums to 7, but head_dim \/ 2 is 8/,
    );
    await expectError(withChange(base(), (c) => (c.rope_scaling = { type: 'mrope', mrope_section: [8] })), 'E_MODEL_FORMAT', /3 sections/);
  });

  it('missing mrope_section for Qwen2 families', async () => {
    await expectError(withChange(base(), (c) => delete c.rope_scaling), 'E_MODEL_FORMAT', '"rope_scaling"', /missing/);
    await expectError(withChange(base(), (c) => (c.rope_scaling = { type: 'mrope' })), 'E_MODEL_FORMAT', '"rope_scaling.mrope_section"');
  });

  it('unsupported RoPE scaling kind', async () => {
    await expectError(
      withChange(base(), (c) => (c.rope_scaling = { type: 'yarn', factor: 4, mrope_section: [2, 3, 3] })),
      'E_UNSUPPORTED', '"rope_scaling.type"', /yarn/,
    );
  });

  it('Qwen3-VL without text_config', async () => {
    await expectError(withChange(qwen3(), (c) => delete c.text_config), 'E_MODEL_FORMAT', '"text_config"', /missing/);
  });

  it('vision merger width differing from the text width', async () => {
    await expectError(
      withChange(qwen3(), (c) => ((c.vision_config as Record<string, unknown>).out_hidden_size = 64)),
      'E_MODEL_FORMAT', '"vision_config.out_hidden_size"', /differs from the text hidden_size 32/,
    );
  });

  it('vision block indexes out of range', async () => {
    await expectError(
      withChange(qwen3(), (c) => ((c.vision_config as Record<string, unknown>).deepstack_visual_indexes = [0, 4])),
      'E_MODEL_FORMAT', '"vision_config.deepstack_visual_indexes"', /out of range/,
    );
  });

  it('token id outside the vocabulary', async () => {
    await expectError(withChange(base(), (c) => (c.image_token_id = 200000)), 'E_MODEL_FORMAT', '"image_token_id"', /outside the vocabulary/);
  });

  it('generation_config.json: absent means defaults, bad values are named', async () => {
    const dir = await folder({ 'config.json': JSON.stringify(base()) });
    const cfg = await loadModelConfig(dir);
    const g = await loadGenerationDefaults(dir, cfg);
    expect(g).toMatchObject({ source: 'defaults', eosTokenIds: [151645], doSample: false, temperature: 1, topK: 50, topP: 1, repetitionPenalty: 1 });
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 'x' }));
    await expect(loadGenerationDefaults(dir, cfg)).rejects.toMatchObject({ code: 'E_MODEL_FORMAT', message: expect.stringMatching(/generation_config\.json.*"eos_token_id"/) });
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ top_p: 2 }));
    await expect(loadGenerationDefaults(dir, cfg)).rejects.toMatchObject({ code: 'E_MODEL_FORMAT', message: expect.stringMatching(/"top_p"/) });
    writeFileSync(join(dir, 'generation_config.json'), '[');
    await expect(loadGenerationDefaults(dir, cfg)).rejects.toMatchObject({ code: 'E_MODEL_FORMAT' });
  });
});
