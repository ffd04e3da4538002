// The activation side of the Int8Dot matmul kernels (q8, q4 weights): each row of x is quantized
// in blocks of 32 to int8 with one f32 scale per block, and the block's sum of codes is kept for
// the weights' zero-point correction. Every variant (reference, generic, SIMD) must produce these
// exact bytes, so that they differ from the reference only in the f32 rounding of the per-block
// scale products: d = amax / 127 and q = nearbyint(x · (1 / d)), all in f32, round-half-even
// (what cvtps2dq does under the default MXCSR); an all-zero block has d = 0 and codes 0.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/weight_quant.h"

namespace qvl::ops {

// x[0, 32) -> q[0, 32), *d, *sum (Σ q).
inline void quantize_act_block(const float* x, int8_t* q, float* d, int32_t* sum) {
  float amax = 0.0f;
  for (int64_t i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float s = amax / 127.0f, inv = s != 0.0f ? 1.0f / s : 0.0f;
  int32_t total = 0;
  for (int64_t i = 0; i < kQuantBlock; ++i) {
    const int32_t v = static_cast<int32_t>(std::nearbyint(x[i] * inv));
    q[i] = static_cast<int8_t>(v);
    total += v;
  }
  *d = s;
  *sum = total;
}

}  // namespace qvl::ops
