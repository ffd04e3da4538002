/**
 * The official quantized checkpoint layouts qwenvl loads, read from config.json's
 * `quantization_config` and checked here so that native code gets one small, already-validated
 * description (C++ then checks every tensor's dtype and shape against it, never trusting the file).
 *
 * What was confirmed, and where (read with the project's code search; not copied):
 * - AWQ GEMM (AutoAWQ's `WQLinear_GEMM`, as loaded by transformers/vLLM): `qweight` int32
 *   [in, out/8], `qzeros` int32 [in/group, out/8], `scales` fp16 [in/group, out]; the 8 nibbles
 *   of a word, lowest first, hold output columns 0,2,4,6,1,3,5,7 of its group of 8 (the packer's
 *   order map; unpackers use the inverse AWQ_REVERSE_ORDER [0,4,1,5,2,6,3,7]); W = (q − z)·s.
 *   The published Qwen2.5-VL-7B/32B-Instruct-AWQ config.json (test/fixtures/model-configs, verbatim)
 *   has {bits 4, group_size 128, modules_to_not_convert ["visual"], quant_method "awq",
 *   version "gemm", zero_point true}.
 * - GPTQ (AutoGPTQ `qlinear_cuda_old.QuantLinear.pack` / its unpacking forward): `qweight` int32
 *   [in·bits/32, out], 32/bits values per word along the input dimension, lowest bits first;
 *   `qzeros` int32 [ceil(in/group), out·bits/32], packed the same way along the output dimension,
 *   each stored as zero − 1 (read back as (stored & mask) + 1); `scales` fp16 [ceil(in/group), out];
 *   `g_idx` int32 [in], the group of each input channel (i/group unless act-order reordered it).
 *   group_size −1 means one group over the whole input. `checkpoint_format` "gptq_v2" (GPTQModel)
 *   stores zeros without the − 1. No verbatim copy of the Qwen2-VL-*-GPTQ config.json was found in
 *   the sources searched; the fields read are those AutoGPTQ/transformers' GPTQConfig writes (bits,
 *   group_size, desc_act, sym, checkpoint_format).
 * - FP8 (transformers `FP8Linear` / finegrained_fp8.py, vLLM's block FP8): `weight` float8_e4m3fn
 *   [out, in] and `weight_scale_inv` [ceil(out/bn), ceil(in/bk)] with [bn, bk] =
 *   `weight_block_size`; W = weight · weight_scale_inv of its block. The scales are fp32 in
 *   transformers' and DeepSeek's files, but Qwen's own FP8 releases store them bf16 (Qwen3-1.7B-FP8:
 *   every `weight_scale_inv` BF16, read from its safetensors header in modular/modular issue 7142;
 *   Qwen3-32B-FP8, HabanaAI/vllm-fork PR 2141) or f16 (Qwen3-4B-Instruct-2507-FP8, InternLM/lmdeploy
 *   PR 4276); all three load, widened exactly to f32. Config keys: quant_method
 *   "fp8", fmt "e4m3", activation_scheme "dynamic", weight_block_size, modules_to_not_convert
 *   (ignored layers keep a plain `weight`). No verbatim Qwen3-VL-*-FP8 config.json was found; the
 *   keys are those of transformers' FineGrainedFP8Config. "dynamic" activation quantization is not
 *   reproduced: activations stay f32 (exact products of the stored weights).
 *
 * - FP8 on a mixture-of-experts decoder (Qwen/Qwen3-VL-30B-A3B-Instruct-FP8, 235B-A22B-FP8):
 *   the bf16 releases store each layer's experts fused, `mlp.experts.gate_up_proj` [E, H, 2I] and
 *   `mlp.experts.down_proj` [E, I, H] (the weight map quoted in QwenLM/Qwen3-VL issue #1588, and
 *   the fixture made with transformers' Qwen3VLMoe classes). Block FP8 is a per-Linear format
 *   (one [out, in] `weight` with its `weight_scale_inv` blocks), so FP8 experts are stored one by
 *   one as `mlp.experts.<e>.gate_proj|up_proj|down_proj.weight` + `.weight_scale_inv`: vLLM's
 *   Qwen3VLMoe load_weights (model_executor/models/qwen3_vl_moe.py; read in the copy at
 *   EmbeddedLLM/vllm ed0c593, upstream now routes it through qwen3_moe.py) maps per-expert
 *   `experts.<e>.gate_proj.` / `up_proj.` / `down_proj.` prefixes (FusedMoE's
 *   make_expert_params_mapping, so `.weight` and `.weight_scale_inv` alike) and switches to a
 *   fused mapping only when it meets `experts.gate_up_proj` / `experts.down_proj`, which it
 *   transposes and splits with chunk(2) (gate first); tinker-cookbook issue #596 describes the
 *   same split (fused bf16 keys in Qwen3-VL, per-expert `.weight` keys where experts are float8).
 *   The router
 *   `mlp.gate` stays unquantized: the Qwen3-30B-A3B-FP8 config.json quoted in llm-compressor issue
 *   #1758 lists every `model.layers.N.mlp.gate` (with the norms and lm_head) in
 *   modules_to_not_convert, and llm-compressor's own Qwen3-VL-MoE FP8 recipe ignores
 *   `re:.*mlp.gate$` and the vision tower. The release's own config.json and safetensors index
 *   were not found in the sources searched; the loader does not depend on the list (see below).
 *   Fused float8 experts (no known scale layout) and AWQ/GPTQ on a MoE decoder are refused.
 *
 * Which layers are quantized is read from the tensors themselves (a layer with `qweight` is
 * AWQ/GPTQ, a layer whose `weight` is F8_E4M3 is FP8, anything else loads as before), so
 * `modules_to_not_convert` needs no interpretation.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
import type { ModelConfig } from './config.js';

/** @internal What native/models/quant_spec.h reads. `none` for an unquantized checkpoint. */
export interface NativeQuantSpec {
  method: 'none' | 'awq' | 'gptq' | 'fp8';
  bits: number;
  /** Input channels per scale (AWQ/GPTQ); 0 means the whole input (GPTQ group_size −1). */
  group: number;
  /** GPTQ: what to add to a stored zero point (1 for the classic format, 0 for gptq_v2). */
  zeroOffset: number;
  /** FP8: the scale block [out, in]. */
  blockOut: number;
  blockIn: number;
}

const NONE: NativeQuantSpec = { method: 'none', bits: 0, group: 0, zeroOffset: 0, blockOut: 0, blockIn: 0 };

/** The FP8 kernels read one scale per 128 input channels (core/weight_format.h, format fp8). */
const FP8_BLOCK_IN = 128;

function unsupported(file: string, field: string, message: string): QwenVLError {
  return new QwenVLError('E_UNSUPPORTED', `${file}: quantization_config.${field} ${message}`);
}

function formatFault(file: string, field: string, message: string): QwenVLError {
  return new QwenVLError('E_MODEL_FORMAT', `${file}: quantization_config.${field} ${message}`);
}

/**
 * The native description of the checkpoint's quantization, or E_UNSUPPORTED naming the field
 * for a method, bit width, version or block size qwenvl does not load, E_MODEL_FORMAT for a
 * malformed value.
 * @internal
 */
export function quantSpec(config: ModelConfig, file: string): NativeQuantSpec {
  const q = config.quantization;
  if (q === null) return NONE;
  const raw = q.raw;
  const method = q.method.toLowerCase();
  if (config.text.moe !== undefined && method !== 'fp8') {
    throw unsupported(
      file,
      'quant_method',
      `"${q.method}" on a mixture-of-experts decoder is not supported (official MoE checkpoints load as fp8, or as bf16 with weights 'q8'/'q4')`,
    );
  }
  const group = (): number => {
    const g = q.groupSize;
    if (g === null) throw formatFault(file, 'group_size', 'is missing');
    if (g === -1) return 0;
    if (g < 1) throw formatFault(file, 'group_size', `${g} must be a positive number of input channels or -1`);
    return g;
  };
  switch (method) {
    case 'awq': {
      const version = (q.version ?? 'gemm').toLowerCase();
      if (version !== 'gemm') throw unsupported(file, 'version', `"${q.version}" is not supported (AWQ loads the "gemm" packing only)`);
      if (q.bits !== 4) throw unsupported(file, 'bits', `${q.bits ?? 'missing'} is not supported (AWQ GEMM is 4-bit)`);
      if (q.zeroPoint === false) throw unsupported(file, 'zero_point', 'false is not supported (AWQ GEMM checkpoints carry qzeros)');
      const g = group();
      if (g === 0) throw formatFault(file, 'group_size', '-1 is not an AWQ group size');
      return { ...NONE, method: 'awq', bits: 4, group: g };
    }
    case 'gptq': {
      if (q.bits !== 4 && q.bits !== 8) throw unsupported(file, 'bits', `${q.bits ?? 'missing'} is not supported (GPTQ loads 4 and 8 bits)`);
      const format = raw.checkpoint_format ?? 'gptq';
      if (format !== 'gptq' && format !== 'gptq_v2') {
        throw unsupported(file, 'checkpoint_format', `${JSON.stringify(format)} is not supported (gptq or gptq_v2)`);
      }
      return { ...NONE, method: 'gptq', bits: q.bits, group: group(), zeroOffset: format === 'gptq' ? 1 : 0 };
    }
    case 'fp8': {
      const fmt = raw.fmt ?? 'e4m3';
      if (fmt !== 'e4m3') throw unsupported(file, 'fmt', `${JSON.stringify(fmt)} is not supported (float8_e4m3fn only)`);
      const scheme = raw.activation_scheme ?? 'dynamic';
      if (scheme !== 'dynamic') {
        throw unsupported(file, 'activation_scheme', `${JSON.stringify(scheme)} is not supported (static activation scales are not read)`);
      }
      const block = raw.weight_block_size;
      if (block === undefined || block === null) {
        throw unsupported(file, 'weight_block_size', 'is missing: per-tensor FP8 scales are not supported, only block scales');
      }
      if (!Array.isArray(block) || block.length !== 2 || !block.every((b) => Number.isSafeInteger(b) && (b as number) > 0 && (b as number) <= 2 ** 20)) {
        throw formatFault(file, 'weight_block_size', `${JSON.stringify(block)} must be two positive integers [out, in]`);
      }
      const [bo, bi] = block as [number, number];
      if (bi !== FP8_BLOCK_IN) {
        throw unsupported(file, 'weight_block_size', `[${bo}, ${bi}] is not supported: the input block must be ${FP8_BLOCK_IN}`);
      }
      return { ...NONE, method: 'fp8', blockOut: bo, blockIn: bi };
    }
    default:
      throw unsupported(file, 'quant_method', `"${q.method}" is not supported; qwenvl loads awq (gemm), gptq and fp8 checkpoints`);
  }
}
