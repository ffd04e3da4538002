// Softmax, 8 lanes: the AVX-512 variant's three passes; tails use maskload, with -inf blended
// into the unused lanes so that they add 0 to the sum.
#include <limits>

#include "backends/cpu/rows_cpu.h"
#include "backends/cpu/vec_math.h"
#include "ops/softmax.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kGrain = 16384;

// e^(x - m) with x - m carried exactly as a float pair (TwoSum); masked (-inf) entries give 0.
QVL_TARGET_AVX2 inline __m256 exp_diff(__m256 x, __m256 m) {
  const __m256 d = _mm256_sub_ps(x, m);
  const __m256 bp = _mm256_sub_ps(d, x);
  const __m256 l = _mm256_add_ps(_mm256_sub_ps(x, _mm256_sub_ps(d, bp)), _mm256_sub_ps(_mm256_setzero_ps(), _mm256_add_ps(m, bp)));
  const __m256 live = _mm256_cmp_ps(d, _mm256_set1_ps(vm::kExpMin), _CMP_GT_OQ);  // l is NaN for -inf
  return vm::exp_avx2(d, _mm256_and_ps(live, l));
}

QVL_TARGET_AVX2 inline __m256d sum_pd(__m256d acc, __m256 e) {
  acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
  return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
}

QVL_TARGET_AVX2 void row(const float* x, float* out, int64_t n) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const int64_t full = n & ~int64_t{7};
  const bool has_tail = full < n;
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - full)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256 tailf = _mm256_castsi256_ps(tail);
  __m256 vmax = ninf;
  for (int64_t i = 0; i < full; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
  __m256 xt = ninf;
  if (has_tail) {
    xt = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + full, tail), tailf);
    vmax = _mm256_max_ps(vmax, xt);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vmax);
  float mx = lanes[0];
  for (int j = 1; j < 8; ++j) mx = lanes[j] > mx ? lanes[j] : mx;
  if (mx == -std::numeric_limits<float>::infinity()) {  // fully masked row: zeros (see softmax.h)
    for (int64_t i = 0; i < full; i += 8) _mm256_storeu_ps(out + i, _mm256_setzero_ps());
    if (has_tail) _mm256_maskstore_ps(out + full, tail, _mm256_setzero_ps());
    return;
  }
  const __m256 m = _mm256_set1_ps(mx);
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 16 <= full; i += 16) {  // two independent sums for latency
    const __m256 e0 = exp_diff(_mm256_loadu_ps(x + i), m);
    const __m256 e1 = exp_diff(_mm256_loadu_ps(x + i + 8), m);
    _mm256_storeu_ps(out + i, e0);
    _mm256_storeu_ps(out + i + 8, e1);
    s0 = sum_pd(s0, e0);
    s1 = sum_pd(s1, e1);
  }
  for (; i < full; i += 8) {
    const __m256 e = exp_diff(_mm256_loadu_ps(x + i), m);
    _mm256_storeu_ps(out + i, e);
    s0 = sum_pd(s0, e);
  }
  if (has_tail) {
    const __m256 e = exp_diff(xt, m);  // 0 in the unused lanes
    _mm256_maskstore_ps(out + full, tail, e);
    s1 = sum_pd(s1, e);
  }
  alignas(32) double dl[4];
  _mm256_store_pd(dl, _mm256_add_pd(s0, s1));
  const double sum = (dl[0] + dl[1]) + (dl[2] + dl[3]);
  const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / sum));
  for (int64_t j = 0; j < full; j += 8) _mm256_storeu_ps(out + j, _mm256_mul_ps(_mm256_loadu_ps(out + j), inv));
  if (has_tail) _mm256_maskstore_ps(out + full, tail, _mm256_mul_ps(_mm256_maskload_ps(out + full, tail), inv));
}

}  // namespace

void softmax_avx2(const ops::SoftmaxParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  parallel_rows(pool, p.rows, p.dim, kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) row(p.x + r * p.ldx, p.out + r * p.ldo, p.dim);
  });
}

}  // namespace qvl::cpu
