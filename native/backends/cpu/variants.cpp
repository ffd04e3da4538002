// The CPU backend's kernel variants, one list per op family, the plain reference first.
// ops/backends.h joins these with the other backends' lists into each family.
#include "backends/cpu/variants.h"

#include "backends/cpu/matmul_bf16_cpu.h"
#include "backends/cpu/matmul_cpu.h"
#include "backends/cpu/matmul_fp8.h"
#include "backends/cpu/matmul_q.h"

namespace qvl::cpu {

void activation_ref(const ops::ActivationParams& p, const ExecContext& ctx);
void activation_generic(const ops::ActivationParams& p, const ExecContext& ctx);
void activation_avx2(const ops::ActivationParams& p, const ExecContext& ctx);
void activation_avx512(const ops::ActivationParams& p, const ExecContext& ctx);
void attention_ref(const ops::AttentionParams& p, const ExecContext& ctx);
void attention_generic(const ops::AttentionParams& p, const ExecContext& ctx);
void attention_avx2(const ops::AttentionParams& p, const ExecContext& ctx);
void attention_avx512(const ops::AttentionParams& p, const ExecContext& ctx);
void attention_bf16_ref(const ops::AttentionParams& p, const ExecContext& ctx);
void attention_bf16_amx(const ops::AttentionParams& p, const ExecContext& ctx);
void attention_bf16_avx512bf16(const ops::AttentionParams& p, const ExecContext& ctx);
void attention_bf16_tiles_avx512bf16(const ops::AttentionParams& p, const ExecContext& ctx);
void attention_bf16_decode_avx512bf16(const ops::AttentionParams& p, const ExecContext& ctx);
int64_t convert_ref(const ops::ConvertParams& p, const ExecContext& ctx);
int64_t convert_generic(const ops::ConvertParams& p, const ExecContext& ctx);
void dequant_groups_ref(const ops::DequantGroupsParams& p, const ExecContext& ctx);
void dequant_groups_generic(const ops::DequantGroupsParams& p, const ExecContext& ctx);
void embedding_ref(const ops::EmbeddingParams& p, const ExecContext& ctx);
void embedding_generic(const ops::EmbeddingParams& p, const ExecContext& ctx);
void embedding_avx2(const ops::EmbeddingParams& p, const ExecContext& ctx);
void embedding_avx512(const ops::EmbeddingParams& p, const ExecContext& ctx);
int64_t finite_ref(const ops::FiniteParams& p, const ExecContext& ctx);
int64_t finite_generic(const ops::FiniteParams& p, const ExecContext& ctx);
void moe_ref(const ops::MoeParams& p, const ExecContext& ctx);
void moe_grouped(const ops::MoeParams& p, const ExecContext& ctx);
int64_t quantize_row_ref(const ops::QuantizeRowParams& p);
int64_t quantize_row_avx2(const ops::QuantizeRowParams& p);
int64_t quantize_row_avx512(const ops::QuantizeRowParams& p);
void layer_norm_ref(const ops::NormParams& p, const ExecContext& ctx);
void layer_norm_generic(const ops::NormParams& p, const ExecContext& ctx);
void layer_norm_avx2(const ops::NormParams& p, const ExecContext& ctx);
void layer_norm_avx512(const ops::NormParams& p, const ExecContext& ctx);
void rms_norm_ref(const ops::NormParams& p, const ExecContext& ctx);
void rms_norm_generic(const ops::NormParams& p, const ExecContext& ctx);
void rms_norm_avx2(const ops::NormParams& p, const ExecContext& ctx);
void rms_norm_avx512(const ops::NormParams& p, const ExecContext& ctx);
void resample_ref(const ops::ResampleParams& p, const ExecContext& ctx);
void resample_generic(const ops::ResampleParams& p, const ExecContext& ctx);
void rope_ref(const ops::RopeParams& p, const ExecContext& ctx);
void rope_avx2(const ops::RopeParams& p, const ExecContext& ctx);
void rope_avx512(const ops::RopeParams& p, const ExecContext& ctx);
int32_t sampling_ref(const ops::SampleArgs& a, ops::SamplingRng& rng);
int32_t sampling_generic(const ops::SampleArgs& a, ops::SamplingRng& rng);
int32_t sampling_avx512(const ops::SampleArgs& a, ops::SamplingRng& rng);
void softmax_ref(const ops::SoftmaxParams& p, const ExecContext& ctx);
void softmax_generic(const ops::SoftmaxParams& p, const ExecContext& ctx);
void softmax_avx2(const ops::SoftmaxParams& p, const ExecContext& ctx);
void softmax_avx512(const ops::SoftmaxParams& p, const ExecContext& ctx);
void rope_gather_ref(const ops::RopeGatherParams& p, const ExecContext& ctx);
void rope_gather_generic(const ops::RopeGatherParams& p, const ExecContext& ctx);
void rows_ref(const ops::RowsParams& p, const ExecContext& ctx);
void rows_generic(const ops::RowsParams& p, const ExecContext& ctx);
void rows_avx2(const ops::RowsParams& p, const ExecContext& ctx);
ops::UnpackQuantStatus unpack_quant_ref(const ops::UnpackQuantParams& p, const ExecContext& ctx);
ops::UnpackQuantStatus unpack_quant_generic(const ops::UnpackQuantParams& p, const ExecContext& ctx);
void token_mask_ref(const ops::TokenMaskArgs& a);
void token_mask_trie(const ops::TokenMaskArgs& a);
void vision_pos_embed_ref(const ops::VisionPosEmbedParams& p, const ExecContext& ctx);
void vision_pos_embed_generic(const ops::VisionPosEmbedParams& p, const ExecContext& ctx);

namespace {
// The dense weight formats (widened to f32 in the packers and row kernels).
constexpr uint32_t kDense = format_bit(WeightFormat::F32) | format_bit(WeightFormat::F16) | format_bit(WeightFormat::BF16);
// The group-quantized formats (int8 dot kernels, matmul_q*.cpp).
constexpr uint32_t kQuant = format_bit(WeightFormat::Q8) | format_bit(WeightFormat::Q4);
// float8_e4m3fn with 128-block scales (official FP8 checkpoints).
constexpr uint32_t kFp8 = format_bit(WeightFormat::F8);
}  // namespace

std::vector<ops::Variant<ops::ActivationFn>> activation_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::activation_ref},
      {"generic", Device::Host, Isa::Generic, &cpu::activation_generic},
      {"avx2", Device::Host, Isa::Avx2, &cpu::activation_avx2},
      {"avx512", Device::Host, Isa::Avx512, &cpu::activation_avx512},
  };
}

std::vector<ops::Variant<ops::AttentionFn>> attention_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::attention_ref},
      {"generic", Device::Host, Isa::Generic, &cpu::attention_generic},
      {"avx2", Device::Host, Isa::Avx2, &cpu::attention_avx2},
      {"avx512", Device::Host, Isa::Avx512, &cpu::attention_avx512},
  };
}

// bf16 operands and weights on AMX tiles, or on VDPBF16PS without them (Zen 4/5): the vision
// tower and prefill under Precision::Fast (ops/attention.h). Of equal ISAs the later one is
// chosen: avx512bf16 (queries across the lanes) over avx512bf16-tiles, which runs the AMX
// kernel's code on the VDPBF16PS block kernel so that CPUs without tiles test all of it but the
// tile instructions.
std::vector<ops::Variant<ops::AttentionFn>> attention_bf16_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::attention_bf16_ref},
      {"avx512bf16-tiles", Device::Host, Isa::Avx512Bf16, &cpu::attention_bf16_tiles_avx512bf16},
      {"avx512bf16", Device::Host, Isa::Avx512Bf16, &cpu::attention_bf16_avx512bf16},
      {"amx", Device::Host, Isa::Amx, &cpu::attention_bf16_amx},
  };
}

// attention_bf16's arithmetic for decode steps under Precision::Fast (ops/attention.h): the same
// reference; one kernel, VDPBF16PS (AMX CPUs have it too: a step has too few rows for tiles).
std::vector<ops::Variant<ops::AttentionFn>> attention_bf16_decode_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::attention_bf16_ref},
      {"avx512bf16", Device::Host, Isa::Avx512Bf16, &cpu::attention_bf16_decode_avx512bf16},
  };
}

std::vector<ops::Variant<ops::ConvertFn>> convert_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::convert_ref},
      {"generic", Device::Host, Isa::Generic, &cpu::convert_generic},
  };
}

std::vector<ops::Variant<ops::DequantGroupsFn>> dequant_groups_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::dequant_groups_ref},
      {"generic", Device::Host, Isa::Generic, &cpu::dequant_groups_generic},
  };
}

std::vector<ops::Variant<ops::EmbeddingFn>> embedding_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::embedding_ref},
      {"generic", Device::Host, Isa::Generic, &cpu::embedding_generic},
      {"avx2", Device::Host, Isa::Avx2, &cpu::embedding_avx2},
      {"avx512", Device::Host, Isa::Avx512, &cpu::embedding_avx512},
  };
}

std::vector<ops::Variant<ops::FiniteFn>> finite_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::finite_ref},
      {"generic", Device::Host, Isa::Generic, &cpu::finite_generic},
  };
}

// No avx512bf16 variant: VDPBF16PS rounds the activations to bf16 as well, which is far outside
// the f32 accuracy this op promises (and HF's f32 path keeps).
std::vector<ops::Variant<ops::MatmulFn>> matmul_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, cpu::matmul_ref, kDense | kQuant | kFp8},
      {"generic", Device::Host, Isa::Generic, cpu::matmul_generic, kDense},
      {"avx2", Device::Host, Isa::Avx2, cpu::matmul_avx2, kDense},
      {"avx512", Device::Host, Isa::Avx512, cpu::matmul_avx512, kDense},
      {"fp8_generic", Device::Host, Isa::Generic, cpu::matmul_fp8_generic, kFp8},
      {"fp8_avx2", Device::Host, Isa::Avx2, cpu::matmul_fp8_avx2, kFp8},
      {"fp8_avx512", Device::Host, Isa::Avx512, cpu::matmul_fp8_avx512, kFp8},
      {"q_generic", Device::Host, Isa::Generic, cpu::matmul_q_generic, kQuant},
      {"q_avx2", Device::Host, Isa::Avx2, cpu::matmul_q_avx2, kQuant},
      {"q_avxvnni", Device::Host, Isa::AvxVnni, cpu::matmul_q_avxvnni, kQuant},
      {"q_avx512vnni", Device::Host, Isa::Avx512Vnni, cpu::matmul_q_avx512vnni, kQuant},
  };
}

// bf16 activations x bf16 weights, f32 accumulation: only under Precision::Fast (ops/matmul.h).
// On an AMX CPU amx wins; avx512bf16 serves CPUs with VDPBF16PS but no tiles (Zen 4/5). q8, q4
// and f8 weights are dequantized per packed panel and rounded to bf16 like f32 ones (large-M
// prefill on AMX beats their own int8/fp8 kernels by ~3x).
std::vector<ops::Variant<ops::MatmulFn>> matmul_bf16_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, cpu::matmul_bf16_ref, kDense | kQuant | kFp8},
      {"avx512bf16", Device::Host, Isa::Avx512Bf16, cpu::matmul_bf16_avx512bf16, kDense | kQuant | kFp8},
      {"amx", Device::Host, Isa::Amx, cpu::matmul_bf16_amx, kDense | kQuant | kFp8},
  };
}

// "grouped" is generic C++ around the matmul op: its speed is whatever matmul's best variant is.
// Both read every format the matmul op reads (grouped hands the format on to the matmul op; the
// reference reads rows through the format's dequantizer).
std::vector<ops::Variant<ops::MoeFn>> moe_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::moe_ref, kDense | kQuant | kFp8},
      {"grouped", Device::Host, Isa::Generic, &cpu::moe_grouped, kDense | kQuant | kFp8},
  };
}

std::vector<ops::Variant<ops::NormFn>> layer_norm_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::layer_norm_ref},
      {"generic", Device::Host, Isa::Generic, &cpu::layer_norm_generic},
      {"avx2", Device::Host, Isa::Avx2, &cpu::layer_norm_avx2},
      {"avx512", Device::Host, Isa::Avx512, &cpu::layer_norm_avx512},
  };
}

std::vector<ops::Variant<ops::NormFn>> rms_norm_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::rms_norm_ref},
      {"generic", Device::Host, Isa::Generic, &cpu::rms_norm_generic},
      {"avx2", Device::Host, Isa::Avx2, &cpu::rms_norm_avx2},
      {"avx512", Device::Host, Isa::Avx512, &cpu::rms_norm_avx512},
  };
}

// Quantizing weights at load, a row at a time (ops/weight_quant.cpp).
std::vector<ops::Variant<ops::QuantizeRowFn>> quantize_row_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::quantize_row_ref},
      {"avx2", Device::Host, Isa::Avx2, &cpu::quantize_row_avx2},
      {"avx512", Device::Host, Isa::Avx512, &cpu::quantize_row_avx512},
  };
}

std::vector<ops::Variant<ops::ResampleFn>> resample_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, cpu::resample_ref},
      {"generic", Device::Host, Isa::Generic, cpu::resample_generic},
  };
}

std::vector<ops::Variant<ops::RopeFn>> rope_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::rope_ref},
      {"avx2", Device::Host, Isa::Avx2, &cpu::rope_avx2},
      {"avx512", Device::Host, Isa::Avx512, &cpu::rope_avx512},
  };
}

std::vector<ops::Variant<ops::SampleFn>> sampling_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::sampling_ref},
      {"generic", Device::Host, Isa::Generic, &cpu::sampling_generic},
      {"avx512", Device::Host, Isa::Avx512, &cpu::sampling_avx512},
  };
}

std::vector<ops::Variant<ops::SoftmaxFn>> softmax_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::softmax_ref},
      {"generic", Device::Host, Isa::Generic, &cpu::softmax_generic},
      {"avx2", Device::Host, Isa::Avx2, &cpu::softmax_avx2},
      {"avx512", Device::Host, Isa::Avx512, &cpu::softmax_avx512},
  };
}

std::vector<ops::Variant<ops::RopeGatherFn>> rope_gather_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::rope_gather_ref},
      {"generic", Device::Host, Isa::Generic, &cpu::rope_gather_generic},
  };
}

std::vector<ops::Variant<ops::RowsFn>> rows_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::rows_ref},
      {"generic", Device::Host, Isa::Generic, &cpu::rows_generic},
      {"avx2", Device::Host, Isa::Avx2, &cpu::rows_avx2},
  };
}

std::vector<ops::Variant<ops::UnpackQuantFn>> unpack_quant_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::unpack_quant_ref},
      {"generic", Device::Host, Isa::Generic, &cpu::unpack_quant_generic},
  };
}

std::vector<ops::Variant<ops::TokenMaskFn>> token_mask_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::token_mask_ref},
      {"trie", Device::Host, Isa::Generic, &cpu::token_mask_trie},
  };
}

std::vector<ops::Variant<ops::VisionPosEmbedFn>> vision_pos_embed_variants() {
  return {
      {"reference", Device::Host, Isa::Reference, &cpu::vision_pos_embed_ref},
      {"generic", Device::Host, Isa::Generic, &cpu::vision_pos_embed_generic},
  };
}

}  // namespace qvl::cpu
