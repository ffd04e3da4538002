// Official quantized checkpoints: AWQ GEMM (Qwen2.5-VL-*-AWQ), GPTQ Int4/Int8 (Qwen2-VL-*-GPTQ,
// classic and v2 zero points, act-order) and block FP8 (Qwen3-VL-*-FP8), each written by an
// independent quantizer in the test (test/helpers/official-quant.ts) into a checkpoint scaled down
// from the published config. Every conversion is lossless, so the quantized checkpoint must answer
// like the same model written with the dequantized weights as plain f32 tensors: the same greedy
// tokens and logits to float tolerance. Hostile files get typed errors naming the tensor or field.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { awq, fp8, gptq, type PairOptions, type Quantizer, writeQuantizedPair } from '../helpers/official-checkpoint.js';
import {
  officialTensors,
  randomWeights,
  scaleConfig,
  scaleSections,
  textSection,
  writeByteLevelFiles,
  type Family,
} from '../helpers/layout-checkpoint.js';
import type { WriterTensors } from '../helpers/safetensors-writer.js';
import { f16Value } from '../helpers/official-quant.js';
import { MODEL_CONFIGS, REPO_FIXTURES } from '../helpers/fixtures.js';
import { expectSameAnswer, greedyAnswer, loadError } from '../helpers/greedy-answer.js';
import { agreement, maxRelDiff } from '../helpers/logit-agreement.js';

type Json = Record<string, unknown>;
const work = mkdtempSync(join(tmpdir(), 'qwenvl-official-quant-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const json = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Json;
const fixtureDir: Record<Family, string> = { qwen2_vl: 'qwen2-vl', qwen2_5_vl: 'qwen2.5-vl', qwen3_vl: 'qwen3-vl', qwen3_vl_moe: 'qwen3-vl-moe' };

let count = 0;
const files = new Map<Family, string>();
function filesFor(family: Family): string {
  if (!files.has(family)) {
    const dir = join(work, `files-${family}`);
    writeByteLevelFiles(join(REPO_FIXTURES, fixtureDir[family], 'checkpoint'), dir);
    files.set(family, dir);
  }
  return files.get(family)!;
}

interface Built {
  quantDir: string;
  refDir: string;
}

/** The quantized checkpoint and its dequantized twin (official-checkpoint.ts), in `work`. */
async function build(family: Family, config: Json, quantize: Quantizer, opts: PairOptions = { prefixes: 'legacy' }): Promise<Built> {
  const n = count++;
  const built = { quantDir: join(work, `${family}-q${n}`), refDir: join(work, `${family}-r${n}`) };
  const weights = randomWeights(officialTensors(family, config), 21);
  await writeQuantizedPair(built.quantDir, built.refDir, config, weights, filesFor(family), quantize, opts);
  return built;
}

/** The quantized checkpoint answers like its dequantized twin (relative tolerance on logits). */
async function expectSameModel({ quantDir, refDir }: Built, tolerance: number): Promise<void> {
  await expectSameAnswer(quantDir, refDir, tolerance);
}

// AWQ: the published Qwen2.5-VL-7B-Instruct-AWQ config (verbatim), scaled; group 16 so that the
// 32-wide layers hold two groups.
function awqConfig(): Json {
  const config = scaleConfig('qwen2_5_vl', json(join(MODEL_CONFIGS, 'Qwen__Qwen2.5-VL-7B-Instruct-AWQ/config.json')));
  (config.quantization_config as Json).group_size = 16;
  return config;
}

// GPTQ: the Qwen2-VL-2B-Instruct config with the quantization_config AutoGPTQ writes.
function gptqConfig(bits: 4 | 8, extra: Json = {}): Json {
  const config = scaleConfig('qwen2_vl', json(join(MODEL_CONFIGS, 'Qwen__Qwen2-VL-2B-Instruct/config.reconstructed.json')));
  config.quantization_config = {
    bits, group_size: 16, damp_percent: 0.01, desc_act: false, sym: true, true_sequential: true,
    quant_method: 'gptq', model_name_or_path: null, model_file_base_name: null, ...extra,
  };
  return config;
}

// FP8: the Qwen3-VL-4B-Instruct config with FineGrainedFP8Config's keys. `wide` widens the decoder
// so that every linear's input is a multiple of the 128-wide scale block (as in every release).
function fp8Config(wide: boolean, block: [number, number] = [128, 128]): Json {
  const config = scaleConfig('qwen3_vl', json(join(MODEL_CONFIGS, 'Qwen__Qwen3-VL-4B-Instruct/config.partial.json')));
  if (wide) {
    const t = textSection(config);
    t.hidden_size = 128;
    t.intermediate_size = 256;
    t.head_dim = 64;
    (t.rope_scaling as Json).mrope_section = scaleSections([24, 20, 20], 32);
    (config.vision_config as Json).out_hidden_size = 128;
  }
  config.quantization_config = { activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', weight_block_size: block };
  return config;
}

// Group 16 is not a whole number of the q4/q8 32-blocks: those layers load as f32, so the answer
// must equal the dequantized twin's to float tolerance; this pins every unpacking bit for bit.
describe('official quantized layouts load losslessly and generate', () => {
  it('AWQ GEMM 4-bit (Qwen2.5-VL-7B-Instruct-AWQ config, visual and one decoder MLP unconverted)', async () => {
    const keep = /^model\.layers\.1\.mlp\.down_proj\.weight$/;
    await expectSameModel(await build('qwen2_5_vl', awqConfig(), awq(16), { prefixes: 'legacy', keep }), 1e-5);
  }, 60_000);

  it('GPTQ Int4, symmetric, classic zeros stored minus one (Qwen2-VL-2B-Instruct-GPTQ-Int4 shape)', async () => {
    await expectSameModel(await build('qwen2_vl', gptqConfig(4), gptq({ bits: 4, group: 16, sym: true, format: 'gptq' })), 1e-5);
  }, 60_000);

  it('GPTQ Int8, symmetric (zero 128)', async () => {
    await expectSameModel(await build('qwen2_vl', gptqConfig(8), gptq({ bits: 8, group: 16, sym: true, format: 'gptq' })), 1e-5);
  }, 60_000);

  it('GPTQ Int4 with act-order (desc_act, shuffled g_idx): columns regrouped, activations gathered', async () => {
    const config = gptqConfig(4, { desc_act: true });
    await expectSameModel(await build('qwen2_vl', config, gptq({ bits: 4, group: 16, sym: true, format: 'gptq', actOrder: true })), 1e-5);
  }, 60_000);

  it('GPTQ Int4 with the vision tower quantized as well (its linears and merger)', async () => {
    const also = /^visual\.(blocks\.\d+\.(attn\.(qkv|proj)|mlp\.fc[12])|merger\.mlp\.[02])\.weight$/;
    await expectSameModel(
      await build('qwen2_vl', gptqConfig(4), gptq({ bits: 4, group: 16, sym: true, format: 'gptq' }), {
        prefixes: 'legacy',
        also,
        mutate: (t) => {
          for (const n of ['visual.blocks.0.attn.qkv', 'visual.blocks.3.mlp.fc2', 'visual.merger.mlp.2']) expect(t[`${n}.qweight`], n).toBeDefined();
        },
      }),
      1e-5,
    );
  }, 60_000);

  it('GPTQ Int4 asymmetric, gptq_v2 zero points, new key layout', async () => {
    const config = gptqConfig(4, { sym: false, checkpoint_format: 'gptq_v2' });
    await expectSameModel(
      await build('qwen2_vl', config, gptq({ bits: 4, group: 16, sym: false, format: 'gptq_v2' }), { prefixes: 'new' }),
      1e-5,
    );
  }, 60_000);

  // q4/q8 keep f16 scales: f32 ones that f16 cannot hold (here every scale times 2^-20, ~1e-9:
  // below f16's subnormals) leave their layers in the lossless f32 form even at group 32, where
  // the int8-activation q4 path would miss this tolerance by far.
  it('GPTQ Int4, group 32, f32 scales f16 cannot hold: lossless f32, not q4', async () => {
    const quantize = gptq({ bits: 4, group: 32, sym: true, format: 'gptq' });
    const tiny: Quantizer = (name, w, out, inp) => {
      const t = quantize(name, w, out, inp);
      const bits = t.tensors.scales.data as Uint16Array;
      const scales = Float32Array.from(bits, (b) => f16Value(b) * 2 ** -20);
      return { dequant: t.dequant.map((v) => v * 2 ** -20), tensors: { ...t.tensors, scales: { dtype: 'F32', shape: t.tensors.scales.shape, data: scales } } };
    };
    await expectSameModel(await build('qwen2_vl', withGroup(gptqConfig(4), 32), tiny), 1e-5);
  }, 60_000);

  it('FP8 e4m3 with 128x128 block scales (Qwen3-VL-*-FP8), the fp8 weight format', async () => {
    await expectSameModel(await build('qwen3_vl', fp8Config(true), fp8([128, 128]), { prefixes: 'new' }), 1e-4);
  }, 60_000);

  // Qwen's own FP8 releases store weight_scale_inv as bf16 (Qwen3-1.7B-FP8, Qwen3-32B-FP8) or f16
  // (Qwen3-4B-Instruct-2507-FP8); the twin holds the values those scales really are.
  it('FP8 with bf16 and with f16 block scales; the vision tower in FP8 as well', async () => {
    const also = /^visual\.(blocks\.\d+\.(attn\.(qkv|proj)|mlp\.linear_fc[12])|merger\.linear_fc[12]|deepstack_merger_list\.\d+\.linear_fc[12])\.weight$/;
    const vision = (t: WriterTensors) => {
      for (const n of ['model.visual.blocks.0.attn.qkv', 'model.visual.merger.linear_fc2', 'model.visual.deepstack_merger_list.0.linear_fc1']) {
        expect(t[`${n}.weight`]?.dtype, n).toBe('F8_E4M3');
        expect(t[`${n}.weight_scale_inv`]?.dtype, n).toBe('BF16');
      }
    };
    await expectSameModel(await build('qwen3_vl', fp8Config(true), fp8([128, 128], 'BF16'), { prefixes: 'new', also, mutate: vision }), 1e-4);
    await expectSameModel(await build('qwen3_vl', fp8Config(false, [16, 128]), fp8([16, 128], 'F16'), { prefixes: 'new' }), 1e-4);
  }, 60_000);

  it('FP8 with 16-row scale blocks and layers narrower than a block', async () => {
    await expectSameModel(await build('qwen3_vl', fp8Config(false, [16, 128]), fp8([16, 128]), { prefixes: 'new' }), 1e-4);
  }, 60_000);
});


// Groups of 32 (128 in the releases) are packed into the q4 / q8 formats, whose Int8Dot kernels
// quantize the activations per 32-block to int8 (ops/quant_act.h): the weights stay exact, the
// products do not. Measured on these checkpoints: logits within 0.9-1.2% of the largest logit,
// cosine 0.99994; the budget below leaves ~4x. A nonzero error proves the packed path ran.
// official-quant-budgets.test.ts holds the same paths to measured budgets at Qwen2-VL-2B widths.
const withGroup = (config: Json, group_size: number, extra: Json = {}): Json => ({
  ...config,
  quantization_config: { ...(config.quantization_config as Json), group_size, ...extra },
});

describe('official quantized layouts packed into q4 / q8 (int8 activations: a measured budget)', () => {
  it.each([
    ['AWQ GEMM -> q4', () => build('qwen2_5_vl', withGroup(awqConfig(), 32), awq(32))],
    ['GPTQ Int4 act-order -> q4 + activation gather', () =>
      build('qwen2_vl', withGroup(gptqConfig(4), 32, { desc_act: true }), gptq({ bits: 4, group: 32, sym: true, format: 'gptq', actOrder: true }))],
    ['GPTQ Int8 -> q8', () => build('qwen2_vl', withGroup(gptqConfig(8), 32), gptq({ bits: 8, group: 32, sym: true, format: 'gptq' }))],
    ['GPTQ Int4, group_size -1 (one group per row) -> q4', () =>
      build('qwen2_vl', withGroup(gptqConfig(4), -1), gptq({ bits: 4, group: -1, sym: true, format: 'gptq' }))],
  ] as const)('%s', async (_name, make) => {
    const b = await make();
    const got = await greedyAnswer(b.quantDir);
    const want = await greedyAnswer(b.refDir);
    const rel = maxRelDiff(want.logits, got.logits);
    expect(got.tokens).toEqual(want.tokens);
    expect(rel).toBeLessThanOrEqual(0.05);
    expect(agreement(want.logits, got.logits, want.logits.length, 0, 1).minCos).toBeGreaterThanOrEqual(0.999);
    expect(rel).toBeGreaterThan(1e-6);
  }, 60_000);
});

describe('hostile quantized checkpoints: typed errors naming the tensor or field', () => {
  const L0 = 'model.layers.0.self_attn.q_proj';

  it('truncated qweight', async () => {
    const { quantDir } = await build('qwen2_5_vl', awqConfig(), awq(16), {
      prefixes: 'legacy',
      mutate: (t) => {
        const q = t[`${L0}.qweight`];
        t[`${L0}.qweight`] = { ...q, shape: [q.shape[0] - 1, q.shape[1]], data: (q.data as Int32Array).subarray(0, (q.shape[0] - 1) * q.shape[1]) };
      },
    });
    const err = await loadError(quantDir);
    expect(err.code).toBe('E_MODEL_FORMAT');
    expect(err.message).toMatch(new RegExp(`${L0}\\.qweight.* has shape \\[31,4\\], expected \\[32,4\\]`));
  }, 30_000);

  it('group_size that disagrees with the tensors', async () => {
    const config = awqConfig();
    (config.quantization_config as Json).group_size = 32;
    const { quantDir } = await build('qwen2_5_vl', config, awq(16));
    const err = await loadError(quantDir);
    expect(err.code).toBe('E_MODEL_FORMAT');
    expect(err.message).toMatch(/\.qzeros .* has shape \[2,\d+\], expected \[1,\d+\]/);
  }, 30_000);

  it('g_idx naming a group that does not exist', async () => {
    const { quantDir } = await build('qwen2_vl', gptqConfig(4), gptq({ bits: 4, group: 16, sym: true, format: 'gptq' }), {
      prefixes: 'legacy',
      mutate: (t) => {
        (t[`${L0}.g_idx`].data as Int32Array)[5] = 2;
      },
    });
    const err = await loadError(quantDir);
    expect(err.code).toBe('E_MODEL_FORMAT');
    expect(err.message).toMatch(new RegExp(`${L0}\\.g_idx .*element 5 is 2, outside the 2 groups`));
  }, 30_000);

  it('act-order groups of unequal size', async () => {
    const { quantDir } = await build('qwen2_vl', gptqConfig(4, { desc_act: true }), gptq({ bits: 4, group: 16, sym: true, format: 'gptq' }), {
      prefixes: 'legacy',
      mutate: (t) => {
        (t[`${L0}.g_idx`].data as Int32Array)[0] = 1; // group 0 has 15 channels, group 1 has 17
      },
    });
    const err = await loadError(quantDir);
    expect(err.code).toBe('E_UNSUPPORTED');
    expect(err.message).toMatch(new RegExp(`${L0}\\.g_idx: group 0 does not hold exactly 16 input channels`));
  }, 30_000);

  it('classic 4-bit GPTQ zero point 16 (stored 15: zero 0 written minus one)', async () => {
    const { quantDir } = await build('qwen2_vl', gptqConfig(4, { sym: false }), gptq({ bits: 4, group: 16, sym: false, format: 'gptq' }), {
      prefixes: 'legacy',
      mutate: (t) => {
        (t[`${L0}.qzeros`].data as Int32Array).fill(-1);
      },
    });
    const err = await loadError(quantDir);
    expect(err.code).toBe('E_UNSUPPORTED');
    expect(err.message).toMatch(new RegExp(`layer ${L0}: GPTQ zero point 16 \\(tensor ${L0}\\.qzeros\\) does not fit 4 bits`));
  }, 30_000);

  it('asymmetric 8-bit GPTQ', async () => {
    const config = gptqConfig(8, { sym: false });
    const { quantDir } = await build('qwen2_vl', config, gptq({ bits: 8, group: 16, sym: false, format: 'gptq' }));
    const err = await loadError(quantDir);
    expect(err.code).toBe('E_UNSUPPORTED');
    expect(err.message).toMatch(/layer model\.layers\.0\.\S+: 8-bit GPTQ zero point \d+ .* is not 128/);
  }, 30_000);

  it('unknown quant_method, AWQ gemv, unsupported bits or FP8 block', async () => {
    const cases: [Json, RegExp][] = [
      [{ quant_method: 'bitsandbytes', load_in_4bit: true }, /quantization_config\.quant_method "bitsandbytes" is not supported/],
      [{ ...(awqConfig().quantization_config as Json), version: 'gemv' }, /quantization_config\.version "gemv" is not supported/],
      [{ ...(gptqConfig(4).quantization_config as Json), bits: 3 }, /quantization_config\.bits 3 is not supported/],
      [{ ...(fp8Config(false).quantization_config as Json), weight_block_size: [128, 64] }, /quantization_config\.weight_block_size \[128, 64\] is not supported/],
      [{ ...(fp8Config(false).quantization_config as Json), activation_scheme: 'static' }, /activation_scheme "static" is not supported/],
    ];
    const { refDir } = await build('qwen2_5_vl', awqConfig(), awq(16));
    const { writeFileSync } = await import('node:fs');
    const base = json(join(refDir, 'config.json'));
    for (const [q, re] of cases) {
      writeFileSync(join(refDir, 'config.json'), JSON.stringify({ ...base, quantization_config: q }));
      const err = await loadError(refDir);
      expect(err.code, String(re)).toBe('E_UNSUPPORTED');
      expect(err.message).toMatch(re);
      expect(err.message).toContain(join(refDir, 'config.json'));
    }
    // AWQ on a mixture-of-experts decoder (only FP8 MoE releases load: official-fp8-moe.test.ts).
    const moe = json(join(REPO_FIXTURES, 'qwen3-vl-moe/checkpoint/config.json'));
    writeFileSync(join(refDir, 'config.json'), JSON.stringify({ ...moe, quantization_config: awqConfig().quantization_config }));
    const err = await loadError(refDir);
    expect(err.code).toBe('E_UNSUPPORTED');
    expect(err.message).toMatch(/quantization_config\.quant_method "awq" on a mixture-of-experts decoder is not supported/);
  }, 30_000);

  it('quantized tensors without a quantization_config', async () => {
    const { quantDir } = await build('qwen2_5_vl', awqConfig(), awq(16));
    const { writeFileSync } = await import('node:fs');
    const config = json(join(quantDir, 'config.json'));
    delete config.quantization_config;
    writeFileSync(join(quantDir, 'config.json'), JSON.stringify(config));
    const err = await loadError(quantDir);
    expect(err.code).toBe('E_MODEL_FORMAT');
    expect(err.message).toMatch(/tensor model\.layers\.0\.\S+\.qweight in .* is AWQ\/GPTQ data, but config\.json's quantization is none/);
  }, 30_000);

  it('FP8 without weight_scale_inv, and FP8 holding a NaN', async () => {
    const name = `model.language_model.layers.0.mlp.down_proj`;
    const missing = await build('qwen3_vl', fp8Config(true), fp8([128, 128]), {
      prefixes: 'new',
      mutate: (t) => {
        delete t[`${name}.weight_scale_inv`];
      },
    });
    let err = await loadError(missing.quantDir);
    expect(err.code).toBe('E_MODEL_FORMAT');
    expect(err.message).toContain(`checkpoint has no tensor ${name}.weight_scale_inv`);
    const nan = await build('qwen3_vl', fp8Config(true), fp8([128, 128]), {
      prefixes: 'new',
      mutate: (t) => {
        (t[`${name}.weight`].data as Uint8Array)[3] = 0xff;
      },
    });
    err = await loadError(nan.quantDir);
    expect(err.code).toBe('E_MODEL_FORMAT');
    expect(err.message).toMatch(new RegExp(`tensor ${name}\\.weight holds a non-finite value .* at element 3`));
  }, 60_000);

  it('FP8 scales of the wrong shape, and scales stored as integers', async () => {
    const name = `model.language_model.layers.1.self_attn.o_proj`;
    const shape = await build('qwen3_vl', fp8Config(true), fp8([128, 128]), {
      prefixes: 'new',
      mutate: (t) => {
        t[`${name}.weight_scale_inv`] = { dtype: 'F32', shape: [2, 1], data: new Float32Array([1, 1]) };
      },
    });
    let err = await loadError(shape.quantDir);
    expect(err.code).toBe('E_MODEL_FORMAT');
    expect(err.message).toMatch(new RegExp(`tensor ${name}\\.weight_scale_inv .* has shape \\[2,1\\], expected \\[1,1\\]`));
    const dtype = await build('qwen3_vl', fp8Config(true), fp8([128, 128]), {
      prefixes: 'new',
      mutate: (t) => {
        t[`${name}.weight_scale_inv`] = { dtype: 'I32', shape: [1, 1], data: new Int32Array([1]) };
      },
    });
    err = await loadError(dtype.quantDir);
    expect(err.code).toBe('E_UNSUPPORTED');
    expect(err.message).toMatch(new RegExp(`tensor ${name}\\.weight_scale_inv has dtype i32; weights must be f32, bf16 or f16`));
  }, 60_000);
});
