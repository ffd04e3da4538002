// AVX-512 fp8 rows. float8_e4m3fn widens to f16 by moving its 7 exponent+mantissa bits up 7
// places (exponent bias 7 against f16's 15: the f16 is the value times 2^-8, subnormals included)
// and vcvtph2ps widens that exactly; the 2^8 is folded into the block's scale (a power of two, so
// exact). NaN bytes are refused at load (WeightStore::check_finite), so they never reach here.
#include <immintrin.h>

#include "backends/cpu/matmul_fp8.h"

namespace qvl::cpu {

namespace {

// GCC 12 warns about the undefined pass-through operand of plain intrinsics; their zero-masked
// forms with a full mask are the same instructions.
constexpr __mmask16 kAll = static_cast<__mmask16>(0xffff);

QVL_TARGET_AVX512 inline __m512 widen16(const uint8_t* w, __mmask16 mask) {
  const __m256i b = _mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(mask, w));
  const __m256i sign = _mm256_slli_epi16(_mm256_and_si256(b, _mm256_set1_epi16(0x80)), 8);
  const __m256i mag = _mm256_slli_epi16(_mm256_and_si256(b, _mm256_set1_epi16(0x7f)), 7);
  return _mm512_maskz_cvtph_ps(kAll, _mm256_or_si256(sign, mag));
}

// Store-and-add: GCC 12 warns spuriously inside _mm512_reduce_add_ps under -Wextra.
QVL_TARGET_AVX512 inline float hsum(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  float s = 0.0f;
  for (int i = 0; i < 16; ++i) s += t[i];
  return s;
}

QVL_TARGET_AVX512 inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1);
}

// R rows of x against NR weight rows at a time: each x vector is loaded once for NR weight rows
// and the R·NR block sums are independent FMA chains (one chain alone is latency-bound).
template <int R, int NR>
QVL_TARGET_AVX512 void rows_rn(const ops::MatmulParams& p, int64_t m0, int64_t n0) {
  const int64_t blocks_per_row = p.w.ld / kFp8Block;
  const float* x[R];
  for (int r = 0; r < R; ++r) x[r] = p.x + (m0 + r) * p.ldx;
  const uint8_t* w[NR];
  const float* s[NR];
  for (int j = 0; j < NR; ++j) {
    w[j] = static_cast<const uint8_t*>(p.w.data) + (n0 + j) * p.w.ld;
    s[j] = static_cast<const float*>(p.w.scales) + (n0 + j) * blocks_per_row;
  }
  __m512 total[R][NR];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NR; ++j) total[r][j] = _mm512_setzero_ps();
  for (int64_t k0 = 0, b = 0; k0 < p.K; k0 += kFp8Block, ++b) {
    const int64_t end = p.K - k0 < kFp8Block ? p.K : k0 + kFp8Block;
    __m512 acc[R][NR];
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < NR; ++j) acc[r][j] = _mm512_setzero_ps();
    for (int64_t k = k0; k < end; k += 16) {
      const __mmask16 m = first_lanes(end - k);
      __m512 xv[R];
      for (int r = 0; r < R; ++r) xv[r] = _mm512_maskz_loadu_ps(m, x[r] + k);
      for (int j = 0; j < NR; ++j) {
        const __m512 wv = widen16(w[j] + k, m);
        for (int r = 0; r < R; ++r) acc[r][j] = _mm512_fmadd_ps(xv[r], wv, acc[r][j]);
      }
    }
    for (int j = 0; j < NR; ++j) {
      const __m512 sv = _mm512_set1_ps(s[j][b] * 256.0f);
      for (int r = 0; r < R; ++r) total[r][j] = _mm512_fmadd_ps(acc[r][j], sv, total[r][j]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NR; ++j)
      p.y[(m0 + r) * p.ldy + n0 + j] = (p.bias ? p.bias[n0 + j] : 0.0f) + hsum(total[r][j]);
}

template <int R>
QVL_TARGET_AVX512 void rows_r(const ops::MatmulParams& p, int64_t m0, int64_t n0, int64_t n1) {
  constexpr int NR = R <= 2 ? 4 : 2;  // R·NR·2 accumulators stay within the 32 zmm registers
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) rows_rn<R, NR>(p, m0, n);
  for (; n < n1; ++n) rows_rn<R, 1>(p, m0, n);
}

void rows(const ops::MatmulParams& p, int64_t m0, int count, int64_t n0, int64_t n1) {
  if (count == 1) return rows_r<1>(p, m0, n0, n1);
  if (count == 2) return rows_r<2>(p, m0, n0, n1);
  if (count == 3) return rows_r<3>(p, m0, n0, n1);
  return rows_r<4>(p, m0, n0, n1);  // count <= kFp8SmallM = 4
}

const Fp8Kernels kKernels = {rows, matmul_avx512};

}  // namespace

void matmul_fp8_avx512(const ops::MatmulParams& p, const ExecContext& ctx) { run_matmul_fp8(p, ctx, kKernels); }

}  // namespace qvl::cpu
