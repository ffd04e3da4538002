// AVX-512 scans for the fast sampling path: 16 lanes of compares, divisions and compress-stores.
// All of them are exact (IEEE division is correctly rounded in any width), so they agree with the
// generic scans bit for bit.
#include <immintrin.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "backends/cpu/sampling_fast.h"
#include "core/cpu.h"

namespace qvl::cpu {

namespace {

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

QVL_TARGET_AVX512 int64_t gather_ge_avx512(const float* s, int64_t n, float lo, int32_t* ids) {
  const __m512 vlo = _mm512_set1_ps(lo);
  const __m512i step = _mm512_set1_epi32(16);
  __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int64_t c = 0;
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __mmask16 ge = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, s + i), vlo, _CMP_GE_OQ);
    _mm512_mask_compressstoreu_epi32(ids + c, ge, idx);
    c += __builtin_popcount(ge);
    idx = _mm512_add_epi32(idx, step);
  }
  return c;
}

const SamplingScan kAvx512 = {scale_avx512, max_avx512, find_avx512, kth_largest_avx512, gather_ge_avx512};

}  // namespace

int32_t sampling_avx512(const ops::SampleArgs& a, ops::SamplingRng& rng) { return sample_fast(a, rng, kAvx512); }

}  // namespace qvl::cpu
