// AVX2 fp8 rows (the shared body, matmul_fp8_rows.h, on ymm; F16C's vcvtph2ps widens): the same
// sign-extend, shift and mask as the AVX-512 rows, 16 weights at a time. Without it, AVX2-only
// CPUs ran fp8 checkpoints through the portable table lookup.
#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/matmul_fp8.h"
#include "backends/cpu/row_streams.h"
#include "backends/cpu/vec_math.h"

namespace qvl::cpu {

namespace {

struct Vec {
  static constexpr int kLanes = 8;
  __m256 v;
};

QVL_TARGET_AVX2 inline Vec vzero() { return {_mm256_setzero_ps()}; }
QVL_TARGET_AVX2 inline Vec vset1(float s) { return {_mm256_set1_ps(s)}; }
QVL_TARGET_AVX2 inline Vec vload(const float* x) { return {_mm256_loadu_ps(x)}; }
QVL_TARGET_AVX2 inline Vec vfma(Vec a, Vec b, Vec c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }

QVL_TARGET_AVX2 inline void widen2(const uint8_t* w, Vec* lo, Vec* hi) {
  const __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
  const __m256i h = _mm256_and_si256(_mm256_slli_epi16(b, 7), _mm256_set1_epi16(static_cast<short>(0xbfff)));
  lo->v = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
  hi->v = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}

QVL_TARGET_AVX2 inline float vsum(Vec v) { return vm::hsum_avx2(v.v); }

#define QVL_FP8_TARGET QVL_TARGET_AVX2
#define QVL_FP8_REGS 16
#include "backends/cpu/matmul_fp8_rows.h"
#undef QVL_FP8_TARGET
#undef QVL_FP8_REGS

const Fp8Kernels kKernels = {rows, matmul_avx2};

}  // namespace

void matmul_fp8_avx2(const ops::MatmulParams& p, const ExecContext& ctx) { run_matmul_fp8(p, ctx, kKernels); }

}  // namespace qvl::cpu
