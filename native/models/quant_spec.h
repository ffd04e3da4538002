// How a checkpoint stores its quantized linear layers, as lib/model/quantization.ts validated it
// from config.json's quantization_config. The converter (models/official_quant.cpp) reads it
// together with each layer's tensors; which layers are quantized is decided by the tensors present.
#pragma once
#include <cstdint>

namespace qvl::models {

enum class QuantMethod { None, Awq, Gptq, Fp8 };

struct QuantSpec {
  QuantMethod method = QuantMethod::None;
  int64_t bits = 0;         // AWQ: 4; GPTQ: 4 or 8
  int64_t group = 0;        // AWQ/GPTQ input channels per scale; 0: the whole input (GPTQ -1)
  int64_t zero_offset = 0;  // GPTQ: added to each stored zero point (1 in the classic format)
  int64_t block_out = 0, block_in = 0;  // FP8 scale blocks (weight_block_size)
};

const char* quant_method_name(QuantMethod m);

}  // namespace qvl::models
