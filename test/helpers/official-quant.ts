/**
 * Independent quantizers for tests: a float weight [out, in] written in the official checkpoint
 * layouts (AWQ GEMM, GPTQ v1/v2, block FP8, and a MoE layer's experts as the FP8 MoE release stores
 * them), written from the layouts' descriptions (AutoAWQ's
 * packer order map, AutoGPTQ's pack(), transformers' FP8Linear), plus the dequantized weight each
 * stands for, computed here in f32 so that a test can load the same model with those values as
 * plain f32 tensors and compare. Nothing here shares code with lib/ or native/.
 */
import { f32ToBf16Bits, f32ToF16Bits, type WriterTensor, type WriterTensors } from './safetensors-writer.js';

/** The f32 value of an f16 bit pattern (what a checkpoint's fp16 scale really is). */
export function f16Value(bits: number): number {
  const exp = (bits >> 10) & 31;
  const mant = bits & 1023;
  const mag = exp === 0 ? mant * 2 ** -24 : (1 + mant / 1024) * 2 ** (exp - 15);
  return bits & 0x8000 ? -mag : mag;
}

const roundHalfEven = (x: number): number => {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/** AWQ GEMM: word nibble p (bits 4p..) holds column ORDER[p] of its group of 8 columns. */
const AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7];

export interface AwqTensors {
  qweight: Int32Array; // [in, out/8]
  qzeros: Int32Array; // [in/group, out/8]
  scales: Uint16Array; // fp16 [in/group, out]
  dequant: Float32Array; // [out, in]
}

/** Asymmetric 4-bit per (group of inputs, output column), as AutoAWQ quantizes. */
export function awqQuantize(w: Float32Array, out: number, inp: number, group: number): AwqTensors {
  const groups = inp / group;
  const q = new Uint8Array(out * inp);
  const zeros = new Uint8Array(groups * out);
  const scaleBits = new Uint16Array(groups * out);
  const dequant = new Float32Array(out * inp);
  for (let n = 0; n < out; n++) {
    for (let g = 0; g < groups; g++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = g * group; i < (g + 1) * group; i++) {
        lo = Math.min(lo, w[n * inp + i]);
        hi = Math.max(hi, w[n * inp + i]);
      }
      const sb = f32ToF16Bits([Math.max(hi - lo, 1e-5) / 15])[0];
      const s = f16Value(sb);
      const z = Math.min(15, Math.max(0, Math.round(-lo / s)));
      scaleBits[g * out + n] = sb;
      zeros[g * out + n] = z;
      for (let i = g * group; i < (g + 1) * group; i++) {
        const v = Math.min(15, Math.max(0, Math.round(w[n * inp + i] / s) + z));
        q[n * inp + i] = v;
        dequant[n * inp + i] = Math.fround((v - z) * s);
      }
    }
  }
  const words = out / 8;
  const qweight = new Int32Array(inp * words);
  const qzeros = new Int32Array(groups * words);
  for (let c = 0; c < words; c++) {
    for (let p = 0; p < 8; p++) {
      const n = c * 8 + AWQ_ORDER[p];
      for (let i = 0; i < inp; i++) qweight[i * words + c] |= q[n * inp + i] << (4 * p);
      for (let g = 0; g < groups; g++) qzeros[g * words + c] |= zeros[g * out + n] << (4 * p);
    }
  }
  return { qweight, qzeros, scales: scaleBits, dequant };
}

export interface GptqOptions {
  bits: 4 | 8;
  group: number;
  /** Symmetric (zero 2^(bits-1)) or per-group min/max zero points. */
  sym: boolean;
  /** Act-order: channel order[j] is the j-th quantized, so g_idx[order[j]] = j / group. */
  order?: number[];
  /** Zero points stored minus one (the classic format) or as they are (gptq_v2). */
  format: 'gptq' | 'gptq_v2';
}

export interface GptqTensors {
  qweight: Int32Array; // [in*bits/32, out]
  qzeros: Int32Array; // [groups, out*bits/32]
  scales: Uint16Array; // fp16 [groups, out]
  gIdx: Int32Array; // [in]
  dequant: Float32Array; // [out, in]
}

export function gptqQuantize(w: Float32Array, out: number, inp: number, o: GptqOptions): GptqTensors {
  const { bits, group } = o;
  const maxq = 2 ** bits - 1;
  const groups = Math.ceil(inp / group);
  const gIdx = new Int32Array(inp);
  const order = o.order ?? [...Array(inp).keys()];
  order.forEach((ch, j) => (gIdx[ch] = Math.floor(j / group)));
  const members: number[][] = Array.from({ length: groups }, () => []);
  for (let i = 0; i < inp; i++) members[gIdx[i]].push(i);
  const q = new Uint8Array(out * inp);
  const zeros = new Int32Array(groups * out);
  const scaleBits = new Uint16Array(groups * out);
  const dequant = new Float32Array(out * inp);
  for (let n = 0; n < out; n++) {
    for (let g = 0; g < groups; g++) {
      let lo = 0;
      let hi = 0;
      for (const i of members[g]) {
        lo = Math.min(lo, w[n * inp + i]);
        hi = Math.max(hi, w[n * inp + i]);
      }
      let s: number;
      let z: number;
      if (o.sym) {
        const amax = Math.max(-lo, hi, 1e-5);
        s = f16Value(f32ToF16Bits([(2 * amax) / maxq])[0]);
        z = (maxq + 1) / 2;
      } else {
        s = f16Value(f32ToF16Bits([Math.max(hi - lo, 1e-5) / maxq])[0]);
        // Zero 0 cannot be stored minus one in the classic format: keep it at 1 or above.
        z = Math.min(maxq, Math.max(1, Math.round(-lo / s)));
      }
      scaleBits[g * out + n] = f32ToF16Bits([s])[0];
      zeros[g * out + n] = z;
      for (const i of members[g]) {
        const v = Math.min(maxq, Math.max(0, roundHalfEven(w[n * inp + i] / s) + z));
        q[n * inp + i] = v;
        dequant[n * inp + i] = Math.fround((v - z) * s);
      }
    }
  }
  const per = 32 / bits;
  const qweight = new Int32Array((inp / per) * out);
  for (let i = 0; i < inp; i++) {
    for (let n = 0; n < out; n++) qweight[Math.floor(i / per) * out + n] |= q[n * inp + i] << (bits * (i % per));
  }
  const qzeros = new Int32Array(groups * (out / per));
  const minus = o.format === 'gptq' ? 1 : 0;
  for (let g = 0; g < groups; g++) {
    for (let n = 0; n < out; n++) {
      qzeros[g * (out / per) + Math.floor(n / per)] |= ((zeros[g * out + n] - minus) & maxq) << (bits * (n % per));
    }
  }
  return { qweight, qzeros, scales: scaleBits, gIdx, dequant };
}

/** Every finite non-negative float8_e4m3fn value, by byte (0x00..0x7e), ascending. */
const E4M3: number[] = Array.from({ length: 0x7f }, (_, b) => {
  const exp = b >> 3;
  const mant = b & 7;
  return exp === 0 ? mant * 2 ** -9 : (1 + mant / 8) * 2 ** (exp - 7);
});

/** float8_e4m3fn byte nearest to x (ties to the even byte), |x| <= 448. */
export function e4m3Byte(x: number): number {
  const a = Math.abs(x);
  let lo = 0;
  let hi = E4M3.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (E4M3[mid] <= a) lo = mid;
    else hi = mid;
  }
  let b: number;
  if (a >= E4M3[hi]) b = hi;
  else {
    const dl = a - E4M3[lo];
    const dh = E4M3[hi] - a;
    b = dl < dh ? lo : dh < dl ? hi : lo % 2 === 0 ? lo : hi;
  }
  return (x < 0 || Object.is(x, -0) ? 0x80 : 0) | b;
}

export interface Fp8Tensors {
  weight: Uint8Array; // e4m3 [out, in]
  scaleInv: Float32Array; // [ceil(out/bo), ceil(in/bi)], the values the file's scales hold
  /** The `weight_scale_inv` tensor as stored in `scaleDtype`. */
  scaleTensor: WriterTensor;
  dequant: Float32Array; // [out, in]
}

/** How a file stores its FP8 block scales: f32 (transformers, DeepSeek), bf16 or f16 (Qwen's own releases). */
export type Fp8ScaleDtype = 'F32' | 'BF16' | 'F16';

/** The f32 value of a bf16 bit pattern. */
function bf16Value(bits: number): number {
  return new Float32Array(new Uint32Array([bits << 16]).buffer)[0];
}

/**
 * Block FP8: one scale per [bo, bi] block (max |w| / 448, rounded to what `scaleDtype` holds), as
 * the FP8 checkpoints are made.
 */
export function fp8Quantize(w: Float32Array, out: number, inp: number, [bo, bi]: [number, number], scaleDtype: Fp8ScaleDtype = 'F32'): Fp8Tensors {
  const sr = Math.ceil(out / bo);
  const sk = Math.ceil(inp / bi);
  const scaleInv = new Float32Array(sr * sk);
  for (let r = 0; r < sr; r++) {
    for (let c = 0; c < sk; c++) {
      let amax = 0;
      for (let n = r * bo; n < Math.min(out, (r + 1) * bo); n++) {
        for (let i = c * bi; i < Math.min(inp, (c + 1) * bi); i++) amax = Math.max(amax, Math.abs(w[n * inp + i]));
      }
      scaleInv[r * sk + c] = amax > 0 ? amax / 448 : 1;
    }
  }
  let scaleTensor: WriterTensor = { dtype: 'F32', shape: [sr, sk], data: scaleInv };
  if (scaleDtype !== 'F32') {
    const bits = scaleDtype === 'BF16' ? f32ToBf16Bits(scaleInv) : f32ToF16Bits(scaleInv);
    bits.forEach((b, k) => (scaleInv[k] = scaleDtype === 'BF16' ? bf16Value(b) : f16Value(b)));
    scaleTensor = { dtype: scaleDtype, shape: [sr, sk], data: bits };
  }
  const weight = new Uint8Array(out * inp);
  const dequant = new Float32Array(out * inp);
  for (let n = 0; n < out; n++) {
    for (let i = 0; i < inp; i++) {
      const s = scaleInv[Math.floor(n / bo) * sk + Math.floor(i / bi)];
      const b = e4m3Byte(Math.min(448, Math.max(-448, w[n * inp + i] / s)));
      weight[n * inp + i] = b;
      const v = E4M3[b & 0x7f];
      dequant[n * inp + i] = Math.fround((b & 0x80 ? -v : v) * s);
    }
  }
  return { weight, scaleInv, scaleTensor, dequant };
}

export interface Fp8Experts {
  /** Per-expert tensors named `<e>.gate_proj.weight`, `<e>.gate_proj.weight_scale_inv`, ... (prefix them with `<layer>.mlp.experts.`). */
  tensors: WriterTensors;
  /** The dequantized experts in the fused bf16 releases' layout: gate_up [E, H, 2I], down [E, I, H]. */
  gateUp: Float32Array;
  down: Float32Array;
}

/**
 * A MoE layer's experts as the official FP8 release stores them (see lib/model/quantization.ts for
 * the sources): every expert's gate_proj and up_proj [I, H] and down_proj [H, I] a Linear of its
 * own in block FP8, from fused "x @ W" values gate_up [E, H, 2I] (gate columns first) and down
 * [E, I, H]; plus the dequantized values back in the fused layout, for the twin checkpoint.
 */
export function fp8Experts(
  gateUp: Float32Array,
  down: Float32Array,
  E: number,
  H: number,
  I: number,
  block: [number, number],
  scaleDtype: Fp8ScaleDtype = 'F32',
): Fp8Experts {
  const tensors: WriterTensors = {};
  const gu = new Float32Array(E * H * 2 * I);
  const dn = new Float32Array(E * I * H);
  const put = (name: string, w: Float32Array, out: number, inp: number): Float32Array => {
    const t = fp8Quantize(w, out, inp, block, scaleDtype);
    tensors[`${name}.weight`] = { dtype: 'F8_E4M3', shape: [out, inp], data: t.weight };
    tensors[`${name}.weight_scale_inv`] = t.scaleTensor;
    return t.dequant;
  };
  for (let e = 0; e < E; e++) {
    // nn.Linear weights are [out, in]: the fused tensors' columns become rows.
    for (const [half, proj] of [[0, 'gate_proj'], [1, 'up_proj']] as const) {
      const w = new Float32Array(I * H);
      for (let i = 0; i < I; i++) for (let h = 0; h < H; h++) w[i * H + h] = gateUp[(e * H + h) * 2 * I + half * I + i];
      const q = put(`${e}.${proj}`, w, I, H);
      for (let i = 0; i < I; i++) for (let h = 0; h < H; h++) gu[(e * H + h) * 2 * I + half * I + i] = q[i * H + h];
    }
    const w = new Float32Array(H * I);
    for (let h = 0; h < H; h++) for (let i = 0; i < I; i++) w[h * I + i] = down[(e * I + i) * H + h];
    const q = put(`${e}.down_proj`, w, H, I);
    for (let h = 0; h < H; h++) for (let i = 0; i < I; i++) dn[(e * I + i) * H + h] = q[h * I + i];
  }
  return { tensors, gateUp: gu, down: dn };
}
