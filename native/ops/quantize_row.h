// One dense f32 row into a group-quantized stored row (q8, q4; layout and rounding rules in
// core/weight_quant.h): the per-row step of quantizing weights at load (ops/weight_quant.h). The
// reference is core's q8_quantize / q4_quantize; every variant gives their bytes exactly (codes,
// f16 scales, q4 zero points) and the same overflowing group, for every input, NaN included.
#pragma once
#include <cstdint>

#include "core/weight_format.h"
#include "ops/registry.h"

namespace qvl::ops {

struct QuantizeRowParams {
  WeightFormat format = WeightFormat::Q4;  // Q8 or Q4
  int64_t n = 0;                           // elements, a multiple of group
  int64_t group = 0;                       // a multiple of 32
  const float* src = nullptr;              // [n]
  uint8_t* dst = nullptr;                  // stored codes: n (q8) or n / 2 (q4) bytes
  uint16_t* scales = nullptr;              // [n / group] f16
  uint8_t* zeros = nullptr;                // q4: q4_zero_bytes(n / group) bytes; q8: null
};

// Returns -1, or the first group whose scale overflows f16 (nothing promised about the outputs).
// Called once per row from row-parallel loops: no context, no threads of its own.
using QuantizeRowFn = int64_t (*)(const QuantizeRowParams&);

const OpFamily<QuantizeRowFn>& quantize_row_family();

// Throws E_INPUT unless p is consistent (format, n, group, non-null buffers).
void check_quantize_row(const QuantizeRowParams& p);

}  // namespace qvl::ops
