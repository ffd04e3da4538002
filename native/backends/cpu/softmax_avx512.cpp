// Softmax, 16 lanes: a max pass, an exp pass that stores e and sums it in double lanes (so the
// sum's rounding does not grow with the row length), a scaling pass. Error ~2.5e-7 relative. Tails use masked loads
// that read -inf, which exp() turns into 0.
#include <limits>

#include "backends/cpu/rows_cpu.h"
#include "backends/cpu/vec_math.h"
#include "ops/softmax.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kGrain = 16384;

// e^(x - m) with x - m carried exactly as a float pair (TwoSum): the rounding of an fp32
// difference would cost up to |x - m|·2^-24 relative. Masked (-inf) entries give 0.
QVL_TARGET_AVX512 inline __m512 exp_diff(__m512 x, __m512 m) {
  const __m512 d = _mm512_sub_ps(x, m);
  const __m512 bp = _mm512_sub_ps(d, x);
  const __m512 l = _mm512_add_ps(_mm512_sub_ps(x, _mm512_sub_ps(d, bp)), _mm512_sub_ps(_mm512_setzero_ps(), _mm512_add_ps(m, bp)));
  const __mmask16 live = _mm512_cmp_ps_mask(d, _mm512_set1_ps(vm::kExpMin), _CMP_GT_OQ);  // l is NaN for -inf
  return vm::exp_avx512(d, _mm512_maskz_mov_ps(live, l));
}

QVL_TARGET_AVX512 void row(const float* x, float* out, int64_t n) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const int64_t full = n & ~int64_t{15};
  const __mmask16 tail = static_cast<__mmask16>((1u << (n - full)) - 1);
  __m512 vmax = ninf;
  for (int64_t i = 0; i < full; i += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(x + i));
  if (tail) vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(ninf, tail, x + full));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, vmax);
  float mx = lanes[0];
  for (int j = 1; j < 16; ++j) mx = lanes[j] > mx ? lanes[j] : mx;
  if (mx == -std::numeric_limits<float>::infinity()) {  // fully masked row: zeros (see softmax.h)
    for (int64_t i = 0; i < full; i += 16) _mm512_storeu_ps(out + i, _mm512_setzero_ps());
    if (tail) _mm512_mask_storeu_ps(out + full, tail, _mm512_setzero_ps());
    return;
  }
  const __m512 m = _mm512_set1_ps(mx);
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  for (int64_t i = 0; i < full; i += 16) {
    const __m512 e = exp_diff(_mm512_loadu_ps(x + i), m);
    _mm512_storeu_ps(out + i, e);
    s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  if (tail) {
    const __m512 e = exp_diff(_mm512_mask_loadu_ps(ninf, tail, x + full), m);
    _mm512_mask_storeu_ps(out + full, tail, e);
    s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  alignas(64) double dl[8];
  _mm512_store_pd(dl, _mm512_add_pd(s0, s1));
  double sum = 0;
  for (int j = 0; j < 8; ++j) sum += dl[j];
  const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / sum));
  for (int64_t i = 0; i < full; i += 16) _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_loadu_ps(out + i), inv));
  if (tail) _mm512_mask_storeu_ps(out + full, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, out + full), inv));
}

}  // namespace

void softmax_avx512(const ops::SoftmaxParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  parallel_rows(pool, p.rows, p.dim, kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) row(p.x + r * p.ldx, p.out + r * p.ldo, p.dim);
  });
}

}  // namespace qvl::cpu
