// layer_norm and rms_norm, 8 lanes: the AVX-512 variant's passes (row sums in double lanes, the
// elementwise pass in fp32); the last dim % 8 elements go through the same formulas in scalar.
#include <cmath>

#include "backends/cpu/rows_cpu.h"
#include "backends/cpu/vec_math.h"
#include "ops/norm.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kGrain = 16384;

QVL_TARGET_AVX2 inline __m256d lo_pd(__m256 v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
QVL_TARGET_AVX2 inline __m256d hi_pd(__m256 v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }
QVL_TARGET_AVX2 inline double hsum(__m256d v) {
  alignas(32) double l[4];
  _mm256_store_pd(l, v);
  return (l[0] + l[1]) + (l[2] + l[3]);
}

template <DType T>
QVL_TARGET_AVX2 void layer_row(const ops::NormParams& p, const float* x, float* out) {
  const int64_t n = p.dim, full = n & ~int64_t{7};
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  for (int64_t i = 0; i < full; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    s0 = _mm256_add_pd(s0, lo_pd(v));
    s1 = _mm256_add_pd(s1, hi_pd(v));
  }
  double s = hsum(_mm256_add_pd(s0, s1));
  for (int64_t i = full; i < n; ++i) s += x[i];
  const double mean = s / static_cast<double>(n);
  const __m256d md = _mm256_set1_pd(mean);
  __m256d v0 = _mm256_setzero_pd(), v1 = _mm256_setzero_pd();
  for (int64_t i = 0; i < full; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256d d0 = _mm256_sub_pd(lo_pd(v), md), d1 = _mm256_sub_pd(hi_pd(v), md);
    v0 = _mm256_fmadd_pd(d0, d0, v0);
    v1 = _mm256_fmadd_pd(d1, d1, v1);
  }
  double var = hsum(_mm256_add_pd(v0, v1));
  for (int64_t i = full; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= static_cast<double>(n);
  const float rstdf = static_cast<float>(1.0 / std::sqrt(var + p.eps));
  const float mhf = static_cast<float>(mean), mlf = static_cast<float>(mean - mhf);
  const __m256 rstd = _mm256_set1_ps(rstdf), mh = _mm256_set1_ps(mhf), ml = _mm256_set1_ps(mlf);
  for (int64_t i = 0; i < full; i += 8) {
    const __m256 y = _mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mh), ml), rstd);
    const __m256 b = p.bias ? vm::load8_avx2<T>(p.bias, i) : _mm256_setzero_ps();
    _mm256_storeu_ps(out + i, p.weight ? _mm256_fmadd_ps(y, vm::load8_avx2<T>(p.weight, i), b) : _mm256_add_ps(y, b));
  }
  for (int64_t i = full; i < n; ++i) {
    const float y = ((x[i] - mhf) - mlf) * rstdf;
    const float b = p.bias ? vm::load1<T>(p.bias, i) : 0.0f;
    out[i] = p.weight ? std::fma(y, vm::load1<T>(p.weight, i), b) : y + b;
  }
}

template <DType T>
QVL_TARGET_AVX2 void rms_row(const ops::NormParams& p, const float* x, float* out) {
  const int64_t n = p.dim, full = n & ~int64_t{7};
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  for (int64_t i = 0; i < full; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256d a = lo_pd(v), b = hi_pd(v);
    s0 = _mm256_fmadd_pd(a, a, s0);
    s1 = _mm256_fmadd_pd(b, b, s1);
  }
  double ss = hsum(_mm256_add_pd(s0, s1));
  for (int64_t i = full; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float rsf = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + p.eps));
  const __m256 rs = _mm256_set1_ps(rsf);
  // weight · (x · rs), rounded in that order as in Qwen's RMSNorm.
  for (int64_t i = 0; i < full; i += 8) {
    const __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x + i), rs);
    _mm256_storeu_ps(out + i, p.weight ? _mm256_mul_ps(vm::load8_avx2<T>(p.weight, i), y) : y);
  }
  for (int64_t i = full; i < n; ++i) {
    const float y = x[i] * rsf;
    out[i] = p.weight ? vm::load1<T>(p.weight, i) * y : y;
  }
}

using RowFn = void (*)(const ops::NormParams&, const float*, float*);

void run(const ops::NormParams& p, ThreadPool& pool, RowFn fn) {
  parallel_rows(pool, p.rows, p.dim, kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) fn(p, p.x + r * p.ldx, p.out + r * p.ldo);
  });
}

}  // namespace

void layer_norm_avx2(const ops::NormParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  run(p, pool, p.w_dtype == DType::BF16 ? &layer_row<DType::BF16> : p.w_dtype == DType::F16 ? &layer_row<DType::F16> : &layer_row<DType::F32>);
}

void rms_norm_avx2(const ops::NormParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  run(p, pool, p.w_dtype == DType::BF16 ? &rms_row<DType::BF16> : p.w_dtype == DType::F16 ? &rms_row<DType::F16> : &rms_row<DType::F32>);
}

}  // namespace qvl::cpu
