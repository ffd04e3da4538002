// What every vision_pos_embed variant shares to stay bit-exact with transformers: the float32
// rounding of each product, the table element load, and one grid axis's corner indexes and weights.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "ops/vision_pos_embed.h"

namespace qvl::cpu::pos_embed {

// torch rounds every product to float32 before the following add (separate tensor ops). Where the
// target has a fused multiply-add, GCC's default -ffp-contract=fast may fuse them into one
// rounding; a volatile round trip forces the intermediate rounding there.
#if defined(__FP_FAST_FMAF)
inline float rounded(float v) {
  volatile float r = v;
  return r;
}
#else
inline float rounded(float v) { return v; }
#endif

inline int64_t exact_sqrt(int64_t n) {
  int64_t r = 0;
  while ((r + 1) * (r + 1) <= n) ++r;  // n is a table row count: a few thousand at most (checked)
  return r;
}

// One axis of the resampling: for each output coordinate the lower and upper source index and
// the two float32 weights (1 − d, d), computed exactly as transformers does.
struct Axis {
  std::vector<int64_t> lo, hi;
  std::vector<float> w_lo, w_hi;
};

inline Axis make_axis(int64_t n, int64_t side) {
  std::vector<float> x(static_cast<size_t>(n));
  ops::linspace_f32(0.0f, static_cast<float>(side - 1), n, x.data());
  Axis a;
  a.lo.resize(x.size()), a.hi.resize(x.size()), a.w_lo.resize(x.size()), a.w_hi.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const int32_t f = static_cast<int32_t>(x[i]);  // Tensor.int(): truncation, x >= 0
    const float d = x[i] - static_cast<float>(f);
    a.lo[i] = f;
    a.hi[i] = std::min<int64_t>(f + 1, side - 1);
    a.w_lo[i] = 1.0f - d;
    a.w_hi[i] = d;
  }
  return a;
}

template <DType D>
inline float load(const void* base, int64_t ld, int64_t row, int64_t c) {
  if constexpr (D == DType::F32) {
    return static_cast<const float*>(base)[row * ld + c];
  } else if constexpr (D == DType::BF16) {
    return bf16_to_f32(static_cast<const uint16_t*>(base)[row * ld + c]);
  } else {
    return f16_to_f32(static_cast<const uint16_t*>(base)[row * ld + c]);
  }
}

}  // namespace qvl::cpu::pos_embed
