// rotate_half RoPE with AVX2: 8 frequencies at a time, the tail of half = R/2 under a lane mask;
// threads split the tokens.
#include <immintrin.h>

#include <algorithm>

#include "core/cpu.h"
#include "ops/rope.h"

namespace qvl::cpu {
namespace {

QVL_TARGET_AVX2 void rope_rows(const ops::RopeParams& p, int64_t t0, int64_t t1) {
  const int64_t half = p.rotary_dim / 2;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int64_t t = t0; t < t1; ++t) {
    const float* c = p.cos + t * half;
    const float* s = p.sin + t * half;
    for (int64_t h = 0; h < p.H; ++h) {
      float* x = p.x + t * p.ld + h * p.D;
      int64_t i = 0;
      // Plain moves for whole vectors: AMD's masked moves are microcoded (a masked store costs
      // tens of cycles there), so only the tail takes them.
      for (; i + 8 <= half; i += 8) {
        const __m256 ci = _mm256_loadu_ps(c + i), si = _mm256_loadu_ps(s + i);
        const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + half);
        _mm256_storeu_ps(x + i, _mm256_fmsub_ps(a, ci, _mm256_mul_ps(b, si)));
        _mm256_storeu_ps(x + i + half, _mm256_fmadd_ps(b, ci, _mm256_mul_ps(a, si)));
      }
      if (i < half) {
        const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(half - i)), lane);
        const __m256 ci = _mm256_maskload_ps(c + i, m), si = _mm256_maskload_ps(s + i, m);
        const __m256 a = _mm256_maskload_ps(x + i, m), b = _mm256_maskload_ps(x + i + half, m);
        _mm256_maskstore_ps(x + i, m, _mm256_fmsub_ps(a, ci, _mm256_mul_ps(b, si)));
        _mm256_maskstore_ps(x + i + half, m, _mm256_fmadd_ps(b, ci, _mm256_mul_ps(a, si)));
      }
    }
  }
}

}  // namespace

void rope_avx2(const ops::RopeParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, p.H * p.rotary_dim));
  pool.parallel_for(p.T, grain, [&](int64_t t0, int64_t t1) { rope_rows(p, t0, t1); });
}

}  // namespace qvl::cpu
