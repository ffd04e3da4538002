// AVX512-BF16 pieces the bf16 kernels share (matmul_bf16's driver, both attention_bf16 kernels):
// tail masks, loads that widen stored k/v to f32, and packing f32 pairs into bf16.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "core/cpu.h"

namespace qvl::cpu {

// The first n of 16 lanes (none for n <= 0, all for n >= 16).
QVL_TARGET_AVX512BF16 inline __mmask16 lanes16(int64_t n) {
  return n <= 0 ? static_cast<__mmask16>(0) : n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1);
}

// The first n of 32 lanes.
QVL_TARGET_AVX512BF16 inline __mmask32 lanes32(int64_t n) {
  return n <= 0 ? static_cast<__mmask32>(0) : n >= 32 ? static_cast<__mmask32>(0xffffffffu) : static_cast<__mmask32>((1u << n) - 1);
}

// The lanes in m of 16 stored values (f32, or bf16 widened exactly), others 0.
QVL_TARGET_AVX512BF16 inline __m512 load_v16(const float* x, __mmask16 m) { return _mm512_maskz_loadu_ps(m, x); }
QVL_TARGET_AVX512BF16 inline __m512 load_v16(const uint16_t* x, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x)), 16));
}

// 32 values as bf16, in order: lo's 16, then hi's (so 16 pairs of neighbours).
QVL_TARGET_AVX512BF16 inline __m512i bf16x32(__m512 lo, __m512 hi) {
  return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
}

// 32 stored values from x (the first n real, the rest 0) as bf16: bf16 as stored, f32 rounded as
// bf16x32 rounds them.
QVL_TARGET_AVX512BF16 inline __m512i load_bf16x32(const uint16_t* x, int64_t n) { return _mm512_maskz_loadu_epi16(lanes32(n), x); }
QVL_TARGET_AVX512BF16 inline __m512i load_bf16x32(const float* x, int64_t n) {
  return bf16x32(_mm512_maskz_loadu_ps(lanes16(n), x), _mm512_maskz_loadu_ps(lanes16(n - 16), x + 16));
}

// The index that interleaves bf16x32's halves: [a0..a15, b0..b15] -> [a0, b0, a1, b1, ...].
QVL_TARGET_AVX512BF16 inline __m512i pair_index() {
  alignas(64) uint16_t v[32];
  for (int i = 0; i < 16; ++i) v[2 * i] = static_cast<uint16_t>(i), v[2 * i + 1] = static_cast<uint16_t>(16 + i);
  return _mm512_load_si512(v);
}

// Lane i: (bf16(a[i]) low, bf16(b[i]) high), VDPBF16PS's pair; idx = pair_index().
QVL_TARGET_AVX512BF16 inline __m512i pairs(__m512 a, __m512 b, __m512i idx) {
  return _mm512_permutexvar_epi16(idx, bf16x32(a, b));
}

}  // namespace qvl::cpu
