// The fast row quantizers' shared per-group driver (quantize_row_driver.cpp): the group's scale
// and zero point come from core's own steps (q_group_scale, q4_fit_pick), fed by vector kernels
// that compute those steps' arithmetic for many groups at once, so only the kernels below differ
// per ISA, and each of those is exact: min/max skip NaN the way
// std::min/std::max do in the reference (the SIMD min/max return their second operand when one is
// NaN), the product and round-to-nearest-even are the same IEEE operations, and the clamps send
// NaN to the same bound.
#pragma once
#include <cstdint>

#include "core/weight_quant.h"
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
  // Each of `groups` groups of `group` elements fitted (q4_fit_pick over its steps, [groups]
  // [kQ4FitScales]) with the vector q4_group_errors (core/weight_quant.h, its summation order
  // kept) inlined: h, inv and zf per group. Returns the first group whose fit overflows, or -1.
  int64_t (*q4_fit)(const float* x, int64_t group, int64_t groups, const Q4FitStep* steps, uint16_t* h, float* inv, float* zf);
  // A row's q8 group scales at once, as q_group_scale gives them one by one: the f32 scales
  // s[groups] to stored f16 h and inv = 1 / stored (0 for a zero scale). Returns the first group
  // whose scale overflows f16, or -1. F16C rounds to nearest even and overflows to inf as core's
  // f32_to_f16 does; where they could differ (below 2^-14) the stored scale is raised anyway.
  int64_t (*scales)(const float* s, int64_t groups, uint16_t* h, float* inv);
  // Every q4 fit step of a row's groups at once, as q4_fit_step gives them one by one: steps
  // [groups][kQ4FitScales] from each group's range lo[g], hi[g]. The same IEEE operations in
  // the same order (f16 conversion as for `scales`), so the same bits. The last few groups go
  // through the vector steps padded with empty ranges.
  void (*q4_steps)(const float* lo, const float* hi, int64_t groups, Q4FitStep* steps);
};

// The scalar steps themselves for groups [g0, groups): the vector scales' tail.
int64_t group_scales_scalar(const float* s, int64_t g0, int64_t groups, uint16_t* h, float* inv);

int64_t quantize_row_with(const ops::QuantizeRowParams& p, const QuantRowKernels& k);

// The q4 fit steps of W groups as the vector q4_steps kernels compute them, lane by lane ([j][lane];
// over[j]: a bit per lane whose step j overflows f16), written out as the Q4FitStep table.
template <int W>
struct Q4StepLanes {
  alignas(64) float s[kQ4FitScales][W], inv[kQ4FitScales][W], z[kQ4FitScales][3][W];
  alignas(32) uint16_t h[kQ4FitScales][W];
  uint32_t over[kQ4FitScales];
  // Lanes [0, lanes) into steps[lane · kQ4FitScales + j].
  void put(int lanes, Q4FitStep* steps) const {
    for (int i = 0; i < lanes; ++i) {
      for (int j = 0; j < kQ4FitScales; ++j) {
        Q4FitStep& st = steps[i * kQ4FitScales + j];
        st = Q4FitStep{};
        if (over[j] >> i & 1) continue;
        st.ok = true, st.h = h[j][i], st.s = s[j][i], st.inv = inv[j][i];
        for (int c = 0; c < 3; ++c) st.z[c] = z[j][c][i];
      }
    }
  }
};

// Each of `groups` groups of x fitted over its steps with the measure `err` (q4_fit_pick); returns
// the first group whose fit overflows, or -1. The ISA variants' q4_fit.
template <class Errors>
inline int64_t q4_fit_groups(const float* x, int64_t group, int64_t groups, const Q4FitStep* steps, Errors&& err, uint16_t* h,
                             float* inv, float* zf) {
  for (int64_t g = 0; g < groups; ++g) {
    if (!q4_fit_pick(x + g * group, group, steps + g * kQ4FitScales, err, &h[g], &inv[g], &zf[g])) return g;
  }
  return -1;
}

// The 32-byte pair packer (AVX2; the AVX-512 variant uses it too).
void q4_pack_avx2(const uint8_t* q, int64_t n, uint8_t* dst);

}  // namespace qvl::cpu
