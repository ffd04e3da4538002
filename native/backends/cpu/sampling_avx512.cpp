// AVX-512 scans for the fast sampling path: 16 lanes of compares, divisions and compress-stores.
// All of them are exact (IEEE division is correctly rounded in any width), so they agree with the
// generic scans bit for bit.
#include <immintrin.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "backends/cpu/sampling_common.h"
#include "backends/cpu/sampling_fast.h"
#include "core/cpu.h"

namespace qvl::cpu {

namespace {

// GCC 12 warns about the undefined pass-through operand of plain intrinsics; their zero-masked
// forms with a full mask are the same instructions.
constexpr __mmask8 kAll8 = static_cast<__mmask8>(0xff);

// Plain (non-AVX-512) helper: the heap code stays one ordinary copy.
void heap_offer(std::vector<float>& heap, float v) {
  if (v > heap.front()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<float>());
    heap.back() = v;
    std::push_heap(heap.begin(), heap.end(), std::greater<float>());
  }
}

std::vector<float> heap_of(const float* s, int64_t k) {
  std::vector<float> heap(s, s + k);
  std::make_heap(heap.begin(), heap.end(), std::greater<float>());
  return heap;
}

QVL_TARGET_AVX512 static inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
}

QVL_TARGET_AVX512 int64_t scale_avx512(const float* x, int64_t n, float t, float* s) {
  const __m512 vt = _mm512_set1_ps(t);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    const __mmask16 nan = _mm512_mask_cmp_ps_mask(m, v, v, _CMP_UNORD_Q);
    if (nan) return i + __builtin_ctz(nan);
    _mm512_mask_storeu_ps(s + i, m, _mm512_div_ps(v, vt));
  }
  return -1;
}

QVL_TARGET_AVX512 float max_avx512(const float* s, int64_t n) {
  __m512 acc = _mm512_set1_ps(s[0]);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    acc = _mm512_mask_max_ps(acc, m, acc, _mm512_maskz_loadu_ps(m, s + i));
  }
  // (GCC 12's _mm512_reduce_max_ps trips -Wuninitialized inside its own header.)
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc);
  float m = lanes[0];
  for (int j = 1; j < 16; ++j) m = lanes[j] > m ? lanes[j] : m;
  return m;
}

QVL_TARGET_AVX512 int64_t find_avx512(const float* s, int64_t n, float v) {
  const __m512 vv = _mm512_set1_ps(v);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __mmask16 eq = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, s + i), vv, _CMP_EQ_OQ);
    if (eq) return i + __builtin_ctz(eq);
  }
  return n;
}

// The generic heap, but 16 values at a time are first compared with the current threshold; only
// the (rare, once the heap has warmed up) lanes above it go to the heap.
QVL_TARGET_AVX512 float kth_largest_avx512(const float* s, int64_t n, int64_t k) {
  if (k > 4096) return kth_largest_nth_element(s, n, k);
  std::vector<float> heap = heap_of(s, k);
  for (int64_t i = k; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    __mmask16 gt = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, s + i), _mm512_set1_ps(heap.front()), _CMP_GT_OQ);
    while (gt) {
      heap_offer(heap, s[i + __builtin_ctz(gt)]);
      gt = static_cast<__mmask16>(gt & (gt - 1));
    }
  }
  return heap.front();
}

QVL_TARGET_AVX512 int64_t gather_ge_avx512(const float* s, int64_t n, float lo, int32_t* ids, float* vals) {
  const __m512 vlo = _mm512_set1_ps(lo);
  const __m512i step = _mm512_set1_epi32(16);
  __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int64_t c = 0;
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, s + i);
    const __mmask16 ge = _mm512_mask_cmp_ps_mask(m, v, vlo, _CMP_GE_OQ);
    // Compressed in registers and stored whole (into the 16 spare slots past the count): a
    // compress straight to memory costs several times more on Intel cores.
    _mm512_storeu_si512(ids + c, _mm512_maskz_compress_epi32(ge, idx));
    _mm512_storeu_ps(vals + c, _mm512_maskz_compress_ps(ge, v));
    c += __builtin_popcount(ge);
    idx = _mm512_add_epi32(idx, step);
  }
  return c;
}

// The exact weight where the fast one cannot be trusted to round the same way: out of line and
// outside any ISA-attributed function, like the reference's.
__attribute__((noinline)) uint64_t weight_exact(float v, float m) { return sampling_weight(v, m); }

// sampling_weight, 8 lanes at a time: y = exp(-d) * 2^40 by Cody-Waite reduction and a polynomial,
// rounded to the nearest integer, with std::exp only for the lanes where that rounding could differ.
//
// Why the integers are the reference's: write d = m - s (the reference's double subtraction, done
// identically here), x = -d in [-29, 0], k = nearest(x / ln 2) in [-42, 0], r = x - k ln 2 with
// |r| <= 0.35. With ln 2 = L1 + L2 (L1 has 21 trailing zero bits, so k L1 is exact) and two FMAs,
// r carries at most 2 roundings of |r| (2·2^-53·|r|, i.e. 0.7·2^-53 relative in e^r) plus
// |k|·|ln 2 - L1 - L2| < 2^-90. e^r by its Taylor polynomial of degree 13: the remainder is below
// 0.35^14/14! · e^0.35 < 2^-56 relative (e^r >= 0.7); Horner with FMA adds one rounding per step,
// each damped by the powers of r that follow it: below (1.42 + 0.42 + 0.07 + ...)·2^-53 / 0.7 <
// 2.8·2^-53 relative. Scaling by 2^(k+40) is exact (scalef; no subnormals at x >= -29). So the fast
// y is within 3.7·2^-53·y of y* = e^x·2^40, and std::exp's y (an error below one ulp, 2·2^-53·y)
// within 2·2^-53·y of y*: the two are within 6·2^-53·y < 2^-50·y of each other. When y is farther
// than that from every half-integer, both round to the same integer (and neither is a tie). The
// test below uses 2^-48·y, four times the bound; what it catches (about 1 lane in 100 near the
// best token, far fewer below it) goes to std::exp.
QVL_TARGET_AVX512 void weights_avx512(const float* v, int64_t n, float m, uint64_t* q) {
  static constexpr double kTaylor[14] = {1.0,
                                         1.0,
                                         1.0 / 2,
                                         1.0 / 6,
                                         1.0 / 24,
                                         1.0 / 120,
                                         1.0 / 720,
                                         1.0 / 5040,
                                         1.0 / 40320,
                                         1.0 / 362880,
                                         1.0 / 3628800,
                                         1.0 / 39916800,
                                         1.0 / 479001600,
                                         1.0 / 6227020800};
  const __m256 mf = _mm256_set1_ps(m);
  const __m512d md = _mm512_set1_pd(static_cast<double>(m));
  const __m512d log2e = _mm512_set1_pd(1.4426950408889634);
  const __m512d ln2_hi = _mm512_set1_pd(0x1.62e42fee00000p-1), ln2_lo = _mm512_set1_pd(0x1.a39ef35793c76p-33);
  const __m512d cut = _mm512_set1_pd(29.0), half = _mm512_set1_pd(0.5), slack = _mm512_set1_pd(0x1p-48);
  const __m512d plus40 = _mm512_set1_pd(40.0);
  const __m512i one = _mm512_set1_epi64(static_cast<long long>(kSamplingOneU));
  for (int64_t j = 0; j < n; j += 8) {
    const __mmask8 lanes = n - j >= 8 ? static_cast<__mmask8>(0xff) : static_cast<__mmask8>((1u << (n - j)) - 1);
    const __m256 s = _mm256_maskz_loadu_ps(lanes, v + j);
    const __mmask8 top = _mm256_mask_cmp_ps_mask(lanes, s, mf, _CMP_EQ_OQ);
    const __m512d d = _mm512_sub_pd(md, _mm512_maskz_cvtps_pd(kAll8, s));
    const __mmask8 live = _mm512_mask_cmp_pd_mask(static_cast<__mmask8>(lanes & ~top), d, cut, _CMP_LE_OQ);
    const __m512d x = _mm512_maskz_sub_pd(live, _mm512_setzero_pd(), d);
    const __m512d k = _mm512_maskz_roundscale_pd(kAll8, _mm512_mul_pd(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_fnmadd_pd(k, ln2_hi, x);
    r = _mm512_fnmadd_pd(k, ln2_lo, r);
    __m512d p = _mm512_set1_pd(kTaylor[13]);
    for (int i = 12; i >= 0; --i) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(kTaylor[i]));
    const __m512d y = _mm512_maskz_scalef_pd(kAll8, p, _mm512_add_pd(k, plus40));
    const __m512d rounded = _mm512_maskz_roundscale_pd(kAll8, y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512d frac = _mm512_sub_pd(y, _mm512_maskz_roundscale_pd(kAll8, y, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC));
    const __m512d off_half = _mm512_abs_pd(_mm512_sub_pd(frac, half));
    const __mmask8 unsure = _mm512_mask_cmp_pd_mask(live, off_half, _mm512_mul_pd(y, slack), _CMP_LE_OQ);
    __m512i qi = _mm512_maskz_cvtpd_epu64(live, rounded);
    qi = _mm512_mask_mov_epi64(qi, top, one);
    _mm512_mask_storeu_epi64(q + j, lanes, qi);
    for (unsigned u = unsure; u; u &= u - 1) {
      const int l = __builtin_ctz(u);
      q[j + l] = weight_exact(v[j + l], m);
    }
  }
}

const SamplingScan kAvx512 = {scale_avx512, max_avx512, find_avx512, kth_largest_avx512, gather_ge_avx512, weights_avx512};

}  // namespace

const SamplingScan& sampling_scan_avx512() { return kAvx512; }

int32_t sampling_avx512(const ops::SampleArgs& a, ops::SamplingRng& rng) { return sample_fast(a, rng, kAvx512); }

}  // namespace qvl::cpu
