// Group-quantized weights back to f32, for layers the packed formats cannot hold (a group that is
// not a multiple of their 32-wide blocks, an FP8 layer narrower than its 128-wide scale block):
//
//   Q4  dst[n, k] = float(q[n, k] − zero[n, g]) · scale[n, g]      q, zero in 0..15
//   Q8  dst[n, k] = float(int8(q[n, k])) · scale[n, g]
//   F8  dst[n, k] = e4m3(q[n, k]) · scale[n, g]
//
// with g = k / group; the last group of a row may be partial. One f32 product per element, so the
// result is exact for the integer codes (a small integer times a scale) and matches the F8
// format's own reference rounding.
#pragma once
#include <cstdint>

#include "core/exec_context.h"
#include "core/threadpool.h"
#include "core/weight_format.h"
#include "ops/registry.h"

namespace qvl::ops {

struct DequantGroupsParams {
  WeightFormat format = WeightFormat::Q4;  // Q4, Q8 or F8
  int64_t out = 0, in = 0;
  int64_t group = 0;               // input elements per scale, >= 1; groups = ceil(in / group)
  const uint8_t* codes = nullptr;  // [out, in], one per byte
  const float* scales = nullptr;   // [out, groups]
  const uint8_t* zeros = nullptr;  // Q4: [out, groups]; else null
  float* dst = nullptr;            // [out, in]
};

using DequantGroupsFn = void (*)(const DequantGroupsParams&, const ExecContext&);

const OpFamily<DequantGroupsFn>& dequant_groups_family();

// Throws E_INPUT unless p is consistent (format, sizes, pointers non-null and aligned).
void check_dequant_groups(const DequantGroupsParams& p);
// Validates and runs the best variant.
void dequant_groups(const DequantGroupsParams& p, const ExecContext& ctx);

}  // namespace qvl::ops
