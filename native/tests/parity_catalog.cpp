// The parity suites. Adding an op family = one declaration and one line here.
#include "tests/parity.h"

namespace qvl::parity {

std::vector<Result> parity_vision_window(uint64_t seed);
std::vector<Result> parity_moe(uint64_t seed);
std::vector<Result> parity_sampling(uint64_t seed);
std::vector<Result> parity_activation(uint64_t seed);
std::vector<Result> parity_softmax(uint64_t seed);
std::vector<Result> parity_layer_norm(uint64_t seed);
std::vector<Result> parity_rms_norm(uint64_t seed);
std::vector<Result> parity_embedding(uint64_t seed);
std::vector<Result> parity_matmul(uint64_t seed);
std::vector<Result> parity_matmul_bf16(uint64_t seed);
std::vector<Result> parity_matmul_group(uint64_t seed);
std::vector<Result> parity_attention(uint64_t seed);
std::vector<Result> parity_attention_bf16(uint64_t seed);
std::vector<Result> parity_attention_bf16_decode(uint64_t seed);
std::vector<Result> parity_rope(uint64_t seed);
std::vector<Result> parity_resample(uint64_t seed);
std::vector<Result> parity_vision_pos_embed(uint64_t seed);
std::vector<Result> parity_finite(uint64_t seed);
std::vector<Result> parity_convert(uint64_t seed);
std::vector<Result> parity_rows(uint64_t seed);
std::vector<Result> parity_rope_gather(uint64_t seed);
std::vector<Result> parity_arena(uint64_t seed);
std::vector<Result> parity_storage(uint64_t seed);
std::vector<Result> parity_placement(uint64_t seed);
std::vector<Result> parity_registry(uint64_t seed);
std::vector<Result> parity_profiler(uint64_t seed);
std::vector<Result> parity_quant_pack(uint64_t seed);
std::vector<Result> parity_unpack_quant(uint64_t seed);
std::vector<Result> parity_dequant_groups(uint64_t seed);
std::vector<Result> parity_quantize_row(uint64_t seed);
std::vector<Result> parity_q4_fit(uint64_t seed);
std::vector<Result> parity_read_stream(uint64_t seed);
std::vector<Result> parity_token_mask(uint64_t seed);

const std::vector<Entry>& suites() {
  static const std::vector<Entry> all = {
      {"vision_window", parity_vision_window},
      {"moe", parity_moe},
      {"sampling", parity_sampling},
      {"activation", parity_activation},
      {"softmax", parity_softmax},
      {"layer_norm", parity_layer_norm},
      {"rms_norm", parity_rms_norm},
      {"embedding", parity_embedding},
      {"attention", parity_attention},
      {"attention_bf16", parity_attention_bf16},
      {"attention_bf16_decode", parity_attention_bf16_decode},
      {"rope", parity_rope},
      {"matmul", parity_matmul},
      {"matmul_bf16", parity_matmul_bf16},
      {"matmul_group", parity_matmul_group},
      {"resample_bicubic", parity_resample},
      {"vision_pos_embed", parity_vision_pos_embed},
      {"finite", parity_finite},
      {"convert", parity_convert},
      {"rows", parity_rows},
      {"rope_gather", parity_rope_gather},
      {"token_mask", parity_token_mask},
      {"arena", parity_arena},
      {"storage", parity_storage},
      {"placement", parity_placement},
      {"registry", parity_registry},
      {"profiler", parity_profiler},
      {"quant_pack", parity_quant_pack},
      {"unpack_quant", parity_unpack_quant},
      {"dequant_groups", parity_dequant_groups},
      {"quantize_row", parity_quantize_row},
      {"q4_fit", parity_q4_fit},
      {"read_stream", parity_read_stream},
  };
  return all;
}

}  // namespace qvl::parity
