// The official FP8 release of a mixture-of-experts model (Qwen/Qwen3-VL-30B-A3B-Instruct-FP8): its
// experts stored one by one as block-FP8 Linear layers (`mlp.experts.<e>.gate_proj.weight` +
// `weight_scale_inv`, see lib/model/quantization.ts for where that layout was confirmed), the
// router and norms unconverted. Written by the independent quantizer of
// test/helpers/official-quant.ts into a generated checkpoint whose widths are whole 128-blocks (as
// in the release: hidden 2048, moe_intermediate 768), so the experts run through the fp8 weight
// format; it must answer like its dequantized twin (the same model with f32 fused experts), to
// float tolerance. Hostile variants get typed errors naming the tensor.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expectSameAnswer, loadError } from '../helpers/greedy-answer.js';
import { layoutName, textSection } from '../helpers/layout-checkpoint.js';
import { moeConfig, moeWeights, writeMoeCheckpoint } from '../helpers/moe-checkpoint.js';
import { fp8Experts, fp8Quantize } from '../helpers/official-quant.js';
import type { WriterTensors } from '../helpers/safetensors-writer.js';

type Json = Record<string, unknown>;
const work = mkdtempSync(join(tmpdir(), 'qwenvl-fp8-moe-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const G = { hidden: 128, headDim: 64, layers: 2, experts: 8, topK: 2, moeIntermediate: 128 };
const BLOCK: [number, number] = [128, 128];
// Qwen's own FP8 releases store their block scales as bf16 (lib/model/quantization.ts).
const SCALES = 'BF16';
const ATTENTION = /^model\.layers\.\d+\.self_attn\.[qkvo]_proj\.weight$/;
const EXPERTS = /^model\.layers\.(\d+)\.mlp\.experts\.(gate_up_proj|down_proj)$/;

function fp8Config(): Json {
  const config = moeConfig(G);
  const layers = textSection(config).num_hidden_layers as number;
  // FineGrainedFP8Config's keys; modules_to_not_convert as the Qwen3-MoE FP8 releases list it (the
  // router of every layer; the vision tower is not converted either).
  const keep = Array.from({ length: layers }, (_, l) => `model.language_model.layers.${l}.mlp.gate`);
  config.quantization_config = {
    activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', weight_block_size: BLOCK,
    modules_to_not_convert: ['lm_head', 'model.visual', ...keep],
  };
  return config;
}

let built: { quantDir: string; refDir: string } | undefined;
/** The FP8 checkpoint (attention and experts in FP8) and its twin (the dequantized values as f32). */
async function build(): Promise<{ quantDir: string; refDir: string }> {
  if (built) return built;
  const config = fp8Config();
  const weights = moeWeights(config, 31);
  const plain = new Map([...weights].filter(([n]) => !ATTENTION.test(n) && !EXPERTS.test(n)));
  const quant: WriterTensors = {};
  const ref: WriterTensors = {};
  for (const [name, { shape, values }] of weights) {
    if (ATTENTION.test(name)) {
      const [out, inp] = shape;
      const t = fp8Quantize(values, out, inp, BLOCK, SCALES);
      const p = layoutName(name, 'new').replace(/\.weight$/, '');
      quant[`${p}.weight`] = { dtype: 'F8_E4M3', shape, data: t.weight };
      quant[`${p}.weight_scale_inv`] = t.scaleTensor;
      ref[`${p}.weight`] = { dtype: 'F32', shape, data: t.dequant };
    }
    const m = EXPERTS.exec(name);
    if (m && m[2] === 'gate_up_proj') {
      const layer = `model.language_model.layers.${m[1]}.mlp.experts`;
      const down = weights.get(`model.layers.${m[1]}.mlp.experts.down_proj`)!.values;
      const x = fp8Experts(values, down, G.experts, G.hidden, G.moeIntermediate, BLOCK, SCALES);
      for (const [n, t] of Object.entries(x.tensors)) quant[`${layer}.${n}`] = t;
      ref[`${layer}.gate_up_proj`] = { dtype: 'F32', shape: [G.experts, G.hidden, 2 * G.moeIntermediate], data: x.gateUp };
      ref[`${layer}.down_proj`] = { dtype: 'F32', shape: [G.experts, G.moeIntermediate, G.hidden], data: x.down };
    }
  }
  const files = join(work, 'files');
  const quantDir = join(work, 'fp8');
  const refDir = join(work, 'twin');
  await writeMoeCheckpoint(quantDir, config, plain, files, { dtype: 'BF16', extra: quant });
  const refConfig = structuredClone(config);
  delete refConfig.quantization_config;
  await writeMoeCheckpoint(refDir, refConfig, plain, files, { dtype: 'BF16', extra: ref });
  built = { quantDir, refDir };
  return built;
}

/** A copy of the FP8 checkpoint with its safetensors rewritten by `mutate` (tensors by name). */
async function variant(name: string, mutate: (t: WriterTensors) => void): Promise<string> {
  const { quantDir } = await build();
  const { openSafetensors } = await import('../../lib/index.js');
  const { writeSafetensors } = await import('../helpers/safetensors-writer.js');
  const { cpSync } = await import('node:fs');
  const dir = join(work, name);
  cpSync(quantDir, dir, { recursive: true });
  const st = await openSafetensors(join(quantDir, 'model.safetensors'));
  const all: WriterTensors = {};
  for (const [n, info] of st.tensors) all[n] = { dtype: info.dtype.toUpperCase(), shape: [...info.shape], data: st.get(n).data };
  mutate(all);
  await writeSafetensors(join(dir, 'model.safetensors'), all);
  st.dispose();
  return dir;
}

describe('official FP8 mixture-of-experts checkpoints (Qwen3-VL-30B-A3B-Instruct-FP8 layout)', () => {
  it('loads per-expert FP8 experts into the fp8 format and answers like the dequantized twin', async () => {
    const { quantDir, refDir } = await build();
    // Budget: the fp8 kernels multiply f32 activations by the stored e4m3 · scale values exactly
    // (f32 rounding only): measured max |Δlogit| / max |logit| 2.6e-7; the budget is 1e-4.
    await expectSameAnswer(quantDir, refDir, 1e-4);
  }, 120_000);

  it('refuses a missing expert scale, an expert in another format, fused float8 experts, and AWQ on MoE', async () => {
    const e3 = 'model.language_model.layers.1.mlp.experts.3';
    let err = await loadError(await variant('no-scale', (t) => delete t[`${e3}.up_proj.weight_scale_inv`]));
    expect(err.code).toBe('E_MODEL_FORMAT');
    expect(err.message).toContain(`${e3}.up_proj.weight_scale_inv`);

    err = await loadError(
      await variant('mixed', (t) => {
        delete t[`${e3}.down_proj.weight_scale_inv`];
        t[`${e3}.down_proj.weight`] = { dtype: 'F32', shape: [G.hidden, G.moeIntermediate], data: new Float32Array(G.hidden * G.moeIntermediate) };
      }),
    );
    expect(err.code).toBe('E_MODEL_FORMAT');
    expect(err.message).toMatch(/experts\.3\.down_proj is stored as f32, unlike .*experts\.0\.down_proj \(fp8\)/);

    err = await loadError(
      await variant('fused-f8', (t) => {
        for (const k of Object.keys(t)) if (k.startsWith('model.language_model.layers.0.mlp.experts.')) delete t[k];
        const l = 'model.language_model.layers.0.mlp.experts';
        t[`${l}.gate_up_proj`] = { dtype: 'F8_E4M3', shape: [G.experts, G.hidden, 2 * G.moeIntermediate], data: new Uint8Array(G.experts * G.hidden * 2 * G.moeIntermediate) };
        t[`${l}.down_proj`] = { dtype: 'F8_E4M3', shape: [G.experts, G.moeIntermediate, G.hidden], data: new Uint8Array(G.experts * G.hidden * G.moeIntermediate) };
      }),
    );
    expect(err.code).toBe('E_UNSUPPORTED');
    expect(err.message).toMatch(/layers\.0\.mlp\.experts\.gate_up_proj holds fused float8 experts/);

    const { refDir } = await build();
    const awqDir = join(work, 'awq');
    const { cpSync } = await import('node:fs');
    cpSync(refDir, awqDir, { recursive: true });
    const config = JSON.parse(readFileSync(join(awqDir, 'config.json'), 'utf8')) as Json;
    config.quantization_config = { bits: 4, group_size: 128, quant_method: 'awq', version: 'gemm', zero_point: true };
    writeFileSync(join(awqDir, 'config.json'), JSON.stringify(config));
    err = await loadError(awqDir);
    expect(err.code).toBe('E_UNSUPPORTED');
    expect(err.message).toMatch(/quantization_config\.quant_method "awq" on a mixture-of-experts decoder is not supported/);
  }, 120_000);
});
