// layer_norm and rms_norm, 16 lanes: the row sums in double lanes (exact squares, no growth of
// rounding with the row length), the elementwise pass in fp32 with on-the-fly weight conversion.
#include <cmath>

#include "backends/cpu/rows_cpu.h"
#include "backends/cpu/vec_math.h"
#include "ops/norm.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kGrain = 16384;

QVL_TARGET_AVX512 inline __m512d lo_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
QVL_TARGET_AVX512 inline __m512d hi_pd(__m512 v) {
  return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}
QVL_TARGET_AVX512 inline double hsum(__m512d v) {
  alignas(64) double l[8];
  _mm512_store_pd(l, v);
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

struct Tail {
  int64_t full;
  __mmask16 m;  // the lanes of the last partial vector (0 when none)
  explicit Tail(int64_t n) : full(n & ~int64_t{15}), m(static_cast<__mmask16>((1u << (n - full)) - 1)) {}
};

// ((v - mh) - ml) · rstd · w + b for lanes m of element i..
template <DType T>
QVL_TARGET_AVX512 inline __m512 layer_out(const ops::NormParams& p, __m512 v, int64_t i, __mmask16 m, __m512 mh, __m512 ml,
                                          __m512 rstd) {
  const __m512 y = _mm512_mul_ps(_mm512_sub_ps(_mm512_sub_ps(v, mh), ml), rstd);
  const __m512 b = p.bias ? vm::load16_avx512<T>(p.bias, i, m) : _mm512_setzero_ps();
  return p.weight ? _mm512_fmadd_ps(y, vm::load16_avx512<T>(p.weight, i, m), b) : _mm512_add_ps(y, b);
}

// weight · (v · rs), rounded in that order as in Qwen's RMSNorm.
template <DType T>
QVL_TARGET_AVX512 inline __m512 rms_out(const ops::NormParams& p, __m512 v, int64_t i, __mmask16 m, __m512 rs) {
  const __m512 y = _mm512_mul_ps(v, rs);
  return p.weight ? _mm512_mul_ps(vm::load16_avx512<T>(p.weight, i, m), y) : y;
}

template <DType T>
QVL_TARGET_AVX512 void layer_row(const ops::NormParams& p, const float* x, float* out) {
  const int64_t n = p.dim;
  const Tail t(n);
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  for (int64_t i = 0; i < t.full; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    s0 = _mm512_add_pd(s0, lo_pd(v));
    s1 = _mm512_add_pd(s1, hi_pd(v));
  }
  if (t.m) {
    const __m512 v = _mm512_maskz_loadu_ps(t.m, x + t.full);
    s0 = _mm512_add_pd(s0, lo_pd(v));
    s1 = _mm512_add_pd(s1, hi_pd(v));
  }
  const double mean = hsum(_mm512_add_pd(s0, s1)) / static_cast<double>(n);
  const __m512d md = _mm512_set1_pd(mean);
  __m512d v0 = _mm512_setzero_pd(), v1 = _mm512_setzero_pd();
  for (int64_t i = 0; i < t.full; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512d d0 = _mm512_sub_pd(lo_pd(v), md), d1 = _mm512_sub_pd(hi_pd(v), md);
    v0 = _mm512_fmadd_pd(d0, d0, v0);
    v1 = _mm512_fmadd_pd(d1, d1, v1);
  }
  if (t.m) {
    const __m512 v = _mm512_maskz_loadu_ps(t.m, x + t.full);
    const __m512d d0 = _mm512_sub_pd(lo_pd(v), md), d1 = _mm512_sub_pd(hi_pd(v), md);
    v0 = _mm512_mask3_fmadd_pd(d0, d0, v0, static_cast<__mmask8>(t.m));
    v1 = _mm512_mask3_fmadd_pd(d1, d1, v1, static_cast<__mmask8>(t.m >> 8));
  }
  const double var = hsum(_mm512_add_pd(v0, v1)) / static_cast<double>(n);
  const __m512 rstd = _mm512_set1_ps(static_cast<float>(1.0 / std::sqrt(var + p.eps)));
  const float mhf = static_cast<float>(mean);
  const __m512 mh = _mm512_set1_ps(mhf), ml = _mm512_set1_ps(static_cast<float>(mean - mhf));
  for (int64_t i = 0; i < t.full; i += 16)
    _mm512_storeu_ps(out + i, layer_out<T>(p, _mm512_loadu_ps(x + i), i, 0xffff, mh, ml, rstd));
  if (t.m)
    _mm512_mask_storeu_ps(out + t.full, t.m, layer_out<T>(p, _mm512_maskz_loadu_ps(t.m, x + t.full), t.full, t.m, mh, ml, rstd));
}

template <DType T>
QVL_TARGET_AVX512 void rms_row(const ops::NormParams& p, const float* x, float* out) {
  const Tail t(p.dim);
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  for (int64_t i = 0; i < t.full; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512d a = lo_pd(v), b = hi_pd(v);
    s0 = _mm512_fmadd_pd(a, a, s0);
    s1 = _mm512_fmadd_pd(b, b, s1);
  }
  if (t.m) {
    const __m512 v = _mm512_maskz_loadu_ps(t.m, x + t.full);
    const __m512d a = lo_pd(v), b = hi_pd(v);
    s0 = _mm512_fmadd_pd(a, a, s0);
    s1 = _mm512_fmadd_pd(b, b, s1);
  }
  const double ms = hsum(_mm512_add_pd(s0, s1)) / static_cast<double>(p.dim);
  const __m512 rs = _mm512_set1_ps(static_cast<float>(1.0 / std::sqrt(ms + p.eps)));
  for (int64_t i = 0; i < t.full; i += 16) _mm512_storeu_ps(out + i, rms_out<T>(p, _mm512_loadu_ps(x + i), i, 0xffff, rs));
  if (t.m) _mm512_mask_storeu_ps(out + t.full, t.m, rms_out<T>(p, _mm512_maskz_loadu_ps(t.m, x + t.full), t.full, t.m, rs));
}

using RowFn = void (*)(const ops::NormParams&, const float*, float*);

void run(const ops::NormParams& p, ThreadPool& pool, RowFn fn) {
  parallel_rows(pool, p.rows, p.dim, kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) fn(p, p.x + r * p.ldx, p.out + r * p.ldo);
  });
}

}  // namespace

void layer_norm_avx512(const ops::NormParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  run(p, pool, p.w_dtype == DType::BF16 ? &layer_row<DType::BF16> : p.w_dtype == DType::F16 ? &layer_row<DType::F16> : &layer_row<DType::F32>);
}

void rms_norm_avx512(const ops::NormParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  run(p, pool, p.w_dtype == DType::BF16 ? &rms_row<DType::BF16> : p.w_dtype == DType::F16 ? &rms_row<DType::F16> : &rms_row<DType::F32>);
}

}  // namespace qvl::cpu
