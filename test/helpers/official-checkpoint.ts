/**
 * Official quantized checkpoints written in pairs: the decoder's linear layers through one of the
 * independent quantizers of official-quant.ts into their official tensors (AWQ GEMM, GPTQ, block
 * FP8), and a twin checkpoint holding the same model with the dequantized weights as plain f32
 * tensors: the exact reference the quantized checkpoint must answer like.
 */
import { writeLayout, layoutName } from './layout-checkpoint.js';
import { awqQuantize, fp8Quantize, gptqQuantize, type Fp8ScaleDtype, type GptqOptions } from './official-quant.js';
import type { WriterTensors } from './safetensors-writer.js';

type Json = Record<string, unknown>;
type Weights = Map<string, { shape: number[]; values: Float32Array }>;

/** The decoder's linear layers (what the official quantized releases convert; `visual` is left). */
export const QUANTIZED = /^model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$/;

/** One layer's official tensors (named by suffix: `qweight`, `scales`, ...) and its dequantized weight. */
export type Quantizer = (name: string, w: Float32Array, out: number, inp: number) => { tensors: WriterTensors; dequant: Float32Array };

/** AWQ GEMM 4-bit with `group` input channels per scale. */
export const awq = (group: number): Quantizer => (_name, w, out, inp) => {
  const t = awqQuantize(w, out, inp, group);
  return {
    dequant: t.dequant,
    tensors: {
      qweight: { dtype: 'I32', shape: [inp, out / 8], data: t.qweight },
      qzeros: { dtype: 'I32', shape: [inp / group, out / 8], data: t.qzeros },
      scales: { dtype: 'F16', shape: [inp / group, out], data: t.scales },
    },
  };
};

/**
 * GPTQ; group −1: one group over each layer's whole input (GPTQ's group_size −1). `actOrder`:
 * a fixed shuffle of the input channels per layer (seeded by its name) stands for the order
 * act-order quantized them in.
 */
export const gptq = (opts: Omit<GptqOptions, 'order'> & { actOrder?: boolean }): Quantizer => (name, w, out, inp) => {
  const o = opts.group === -1 ? { ...opts, group: inp } : opts;
  let order: number[] | undefined;
  if (o.actOrder) {
    order = [...Array(inp).keys()];
    let s = name.length * 7919;
    for (let i = inp - 1; i > 0; i--) {
      s = (s * 1103515245 + 12345) >>> 0;
      const j = s % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
  }
  const t = gptqQuantize(w, out, inp, { ...o, order });
  const per = 32 / o.bits;
  const groups = Math.ceil(inp / o.group);
  return {
    dequant: t.dequant,
    tensors: {
      qweight: { dtype: 'I32', shape: [inp / per, out], data: t.qweight },
      qzeros: { dtype: 'I32', shape: [groups, out / per], data: t.qzeros },
      scales: { dtype: 'F16', shape: [groups, out], data: t.scales },
      g_idx: { dtype: 'I32', shape: [inp], data: t.gIdx },
    },
  };
};

/** Block FP8 e4m3 with one scale per `block` [out, in], stored as `scaleDtype`. */
export const fp8 = (block: [number, number], scaleDtype: Fp8ScaleDtype = 'F32'): Quantizer => (_name, w, out, inp) => {
  const t = fp8Quantize(w, out, inp, block, scaleDtype);
  return {
    dequant: t.dequant,
    tensors: { weight: { dtype: 'F8_E4M3', shape: [out, inp], data: t.weight }, weight_scale_inv: t.scaleTensor },
  };
};

export interface PairOptions {
  prefixes: 'legacy' | 'new';
  /** Edits the quantized checkpoint's tensors before they are written (hostile files). */
  mutate?: (t: WriterTensors) => void;
  /** Decoder layers left unquantized too (as modules_to_not_convert would leave them). */
  keep?: RegExp;
  /** More layers quantized (a checkpoint that converts the vision tower as well). */
  also?: RegExp;
  /** An untied LM head (as writeLayout's `lmHead`; tied when absent). */
  lmHead?: Float32Array;
}

/**
 * Writes the quantized checkpoint into `quantDir` (the chosen linears through `quantize`, every
 * other tensor f16 as the quantized releases store them, sharded) and its twin into `refDir` (the
 * same, with the dequantized weights as f32 `.weight` tensors and no quantization_config).
 */
export async function writeQuantizedPair(
  quantDir: string,
  refDir: string,
  config: Json,
  weights: Weights,
  files: string,
  quantize: Quantizer,
  opts: PairOptions = { prefixes: 'legacy' },
): Promise<void> {
  const quantized = (n: string) => (QUANTIZED.test(n) || (opts.also?.test(n) ?? false)) && !(opts.keep?.test(n) ?? false);
  const plain = new Map([...weights].filter(([n]) => !quantized(n)));
  const quant: WriterTensors = {};
  const ref: WriterTensors = {};
  // Layers that share one weight array (copies of a layer) are quantized once.
  const done = new Map<Float32Array, ReturnType<Quantizer>>();
  for (const [name, { shape, values }] of weights) {
    if (!quantized(name)) continue;
    const [out, inp] = shape;
    if (!done.has(values)) done.set(values, quantize(name, values, out, inp));
    const { tensors, dequant } = done.get(values)!;
    const prefix = layoutName(name, opts.prefixes).replace(/\.weight$/, '');
    for (const [suffix, t] of Object.entries(tensors)) quant[`${prefix}.${suffix}`] = t;
    ref[`${prefix}.weight`] = { dtype: 'F32', shape, data: dequant };
  }
  opts.mutate?.(quant);
  const lmHead = opts.lmHead;
  await writeLayout(quantDir, config, plain, files, { prefixes: opts.prefixes, sharded: true, dtype: 'F16', extra: quant, lmHead });
  const refConfig = structuredClone(config);
  delete refConfig.quantization_config;
  await writeLayout(refDir, refConfig, plain, files, { prefixes: opts.prefixes, sharded: false, dtype: 'F16', extra: ref, lmHead });
}
