// rotate_half RoPE with AVX-512: 16 frequencies at a time, the tail of half = R/2 under a lane
// mask (R/2 is 20 for Qwen2-VL's vision heads, 64 for the text heads); threads split the tokens.
#include <immintrin.h>

#include <algorithm>

#include "core/cpu.h"
#include "ops/rope.h"

namespace qvl::cpu {
namespace {

QVL_TARGET_AVX512 void rope_rows(const ops::RopeParams& p, int64_t t0, int64_t t1) {
  const int64_t half = p.rotary_dim / 2;
  for (int64_t t = t0; t < t1; ++t) {
    const float* c = p.cos + t * half;
    const float* s = p.sin + t * half;
    for (int64_t h = 0; h < p.H; ++h) {
      float* x = p.x + t * p.ld + h * p.D;
      for (int64_t i = 0; i < half; i += 16) {
        const __mmask16 m = static_cast<__mmask16>(half - i >= 16 ? 0xFFFF : (1u << (half - i)) - 1);
        const __m512 ci = _mm512_maskz_loadu_ps(m, c + i), si = _mm512_maskz_loadu_ps(m, s + i);
        const __m512 a = _mm512_maskz_loadu_ps(m, x + i), b = _mm512_maskz_loadu_ps(m, x + i + half);
        _mm512_mask_storeu_ps(x + i, m, _mm512_fmsub_ps(a, ci, _mm512_mul_ps(b, si)));
        _mm512_mask_storeu_ps(x + i + half, m, _mm512_fmadd_ps(b, ci, _mm512_mul_ps(a, si)));
      }
    }
  }
}

}  // namespace

void rope_avx512(const ops::RopeParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  // Enough tokens per task that a task is worth waking a thread for (~16k elements).
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, p.H * p.rotary_dim));
  pool.parallel_for(p.T, grain, [&](int64_t t0, int64_t t1) { rope_rows(p, t0, t1); });
}

}  // namespace qvl::cpu
