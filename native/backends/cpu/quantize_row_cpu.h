// The fast row quantizers' shared per-group driver (quantize_row_driver.cpp): the group's scale
// and zero point go through core's own scalar steps (q_group_scale, q4_fit_group), so only the
// element loops below differ per ISA, and each of those is exact: min/max skip NaN the way
// std::min/std::max do in the reference (the SIMD min/max return their second operand when one is
// NaN), the product and round-to-nearest-even are the same IEEE operations, and the clamps send
// NaN to the same bound.
#pragma once
#include <cstdint>

#include "ops/quantize_row.h"

namespace qvl::cpu {

struct QuantRowKernels {
  float (*amax)(const float* x, int64_t n);                        // max(0, |x|...), NaN skipped
  void (*range)(const float* x, int64_t n, float* lo, float* hi);  // min(0, x...), max(0, x...)
  // q8: clamp(rne(x·inv), ±127) + 128; q4: clamp(rne(x·inv) + zf, 0, 15); one code per byte.
  void (*q8_codes)(const float* x, int64_t n, float inv, uint8_t* dst);
  void (*q4_codes)(const float* x, int64_t n, float inv, float zf, uint8_t* q);
  // n (a multiple of 32) one-per-byte q4 codes into the stored pair layout (core/weight_quant.h).
  void (*q4_pack)(const uint8_t* q, int64_t n, uint8_t* dst);
  // q4_group_errors (core/weight_quant.h), its summation order kept: q4_fit_group's measure.
  void (*q4_errors)(const float* x, int64_t n, float inv, float s, const float* zf, int count, float* err);
  // A row's q8 group scales at once, as q_group_scale gives them one by one: the f32 scales
  // s[groups] to stored f16 h and inv = 1 / stored (0 for a zero scale). Returns the first group
  // whose scale overflows f16, or -1. F16C rounds to nearest even and overflows to inf as core's
  // f32_to_f16 does; where they could differ (below 2^-14) the stored scale is raised anyway.
  int64_t (*scales)(const float* s, int64_t groups, uint16_t* h, float* inv);
};

// The scalar steps themselves for groups [g0, groups): the vector scales' tail.
int64_t group_scales_scalar(const float* s, int64_t g0, int64_t groups, uint16_t* h, float* inv);

int64_t quantize_row_with(const ops::QuantizeRowParams& p, const QuantRowKernels& k);

// The 32-byte pair packer (AVX2; the AVX-512 variant uses it too).
void q4_pack_avx2(const uint8_t* q, int64_t n, uint8_t* dst);

}  // namespace qvl::cpu
