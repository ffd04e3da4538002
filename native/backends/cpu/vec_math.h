// Accurate fp32 exp and erfc for the activation and softmax kernels, and f32/bf16/f16 loads for
// the norm and embedding kernels, each in up to three builds: scalar (generic, no FMA assumed),
// AVX2 (8 lanes) and AVX-512 (16 lanes). Every vector function carries its ISA attribute so that
// it inlines only into callers of that ISA.
//
// exp(h + l): h is the argument, l a small correction (|l| <= ulp(h)) so that callers can pass an
// argument they formed to more than fp32 precision, as a float pair. The result is then good to
// ~1.2 ulp for any argument, instead of |h|·2^-24 relative from the argument's own rounding; that
// is what keeps x·sigmoid(z) and the GELUs within a few 1e-7 of a double reference deep into
// their tails (see activation.h for the measured errors).
//   range reduction: n = round(h·log2 e), r = (h - n·ln2_hi) - n·ln2_lo + l, |r| <= ln2/2 (+ tiny);
//   n·ln2_hi is exact (ln2_hi has 9 significant bits) and so is the subtraction (Sterbenz).
//   e^r: degree-6 polynomial with relative error 1.9e-9 in exact arithmetic, 7e-8 in fp32.
//   2^n is applied as two factors 2^(n>>1)·2^(n-(n>>1)) so that results down to the smallest
//   subnormal, and overflow to +inf, come out right without branches.
// h is clamped to [-104, 89] first: e^-104 is below half the smallest subnormal and e^89 above
// FLT_MAX, so the clamp changes no result. NaN propagates.
//
// erfc(|x|/√2) = exp(-x²/2)·g(|x|), where g(s) = erfc(s/√2)·exp(s²/2) is smooth and slowly varying
// (~0.8/s for large s): g is a rational P4(s)/Q5(s) with positive coefficients (so Horner loses
// nothing to cancellation), relative error 5.6e-9 on [0, 14] in exact arithmetic, 3.2e-7 in fp32;
// x² goes into exp() exactly, as a float pair. For |x| > 14 the exp factor is below fp32's
// range (erfc underflows past |x| ~ 13.2), so s is clamped there, and x at 20 to keep x² finite.
//
// Both sets of coefficients were fitted for this file (iteratively reweighted least squares on
// dense grids, near-minimax for relative error) and checked in fp32 arithmetic before rounding.
#pragma once
// GCC 12 reports the deliberately undefined _mm512_undefined_ps() operand inside many AVX-512
// intrinsics as maybe-uninitialized; silence that for the intrinsic headers' own code only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>
#include <cstring>

#include "core/cpu.h"
#include "core/dtype.h"

namespace qvl::cpu::vm {

constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440054690583e-4f;
constexpr float kExpMin = -104.0f, kExpMax = 89.0f;
// e^r on [-ln2/2, ln2/2]: 1 + r + c2 r² + ... + c6 r⁶.
constexpr float kExpC2 = 4.999999106e-01f, kExpC3 = 1.666641980e-01f, kExpC4 = 4.166822881e-02f,
                kExpC5 = 8.374829777e-03f, kExpC6 = 1.383669092e-03f;
// 2^f on [-1/2, 1/2]: 1 + c1 f + ... + c5 f⁵, fitted to relative error (below 1.8e-7 in f32
// arithmetic).
constexpr float kExp2C1 = 6.931470036506653e-01f, kExp2C2 = 2.402224242687225e-01f, kExp2C3 = 5.550722032785416e-02f,
                kExp2C4 = 9.671513922512532e-03f, kExp2C5 = 1.326814643107355e-03f;
// erfcx(s/√2) ≈ P(s)/Q(s).
constexpr float kErfP0 = 1.0f, kErfP1 = 8.744841218e-01f, kErfP2 = 3.649101853e-01f, kErfP3 = 8.074046671e-02f,
                kErfP4 = 8.154501207e-03f;
constexpr float kErfQ0 = 1.0f, kErfQ1 = 1.672369123e+00f, kErfQ2 = 1.199263096e+00f, kErfQ3 = 4.674112797e-01f,
                kErfQ4 = 1.011999846e-01f, kErfQ5 = 1.022002287e-02f;
constexpr float kErfcMaxS = 14.0f;
constexpr float kErfcSquareMax = 20.0f;
// gelu_tanh: 0.5x(1 + tanh(u)) = x·sigmoid(2u), 2u = k1·x + k3·x³ with k1 = 2√(2/π), k3 = k1·0.044715.
constexpr double kTanhK1 = 1.5957691216057308, kTanhK3 = 1.5957691216057308 * 0.044715;
constexpr double kQuickGelu = 1.702;

// The high and low fp32 parts of a double constant: hi + lo carries ~48 bits.
constexpr float hi_part(double v) { return static_cast<float>(v); }
constexpr float lo_part(double v) { return static_cast<float>(v - static_cast<double>(static_cast<float>(v))); }

// ---------------------------------------------------------------------------------------------
// Scalar (generic). No FMA is assumed here, so callers form double-float arguments in double.

inline float pow2i_scalar(int32_t n) {  // 2^n for n in [-126, 127]
  const uint32_t bits = static_cast<uint32_t>(n + 127) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float exp_scalar(float h, float l = 0.0f) {
  if (h != h) return h;
  h = h < kExpMin ? kExpMin : (h > kExpMax ? kExpMax : h);
  // 1.5·2^23 rounds to an integer in round-to-nearest (|h·log2 e| < 2^22).
  const float n = (h * kLog2e + 12582912.0f) - 12582912.0f;
  float r = (h - n * kLn2Hi) - n * kLn2Lo;
  r += l;
  float p = kExpC6;
  p = p * r + kExpC5;
  p = p * r + kExpC4;
  p = p * r + kExpC3;
  p = p * r + kExpC2;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t ni = static_cast<int32_t>(n), n1 = ni >> 1;
  return p * pow2i_scalar(n1) * pow2i_scalar(ni - n1);
}

// erfc(|x|/√2), relative error ~5e-7. x² enters exp() as an exact double-float.
inline float erfc_abs_scalar(float x) {
  float s = x < 0 ? -x : x;
  if (s > kErfcSquareMax) s = kErfcSquareMax;  // keeps x² finite; the result is 0 from here on
  const double x2 = static_cast<double>(s) * s;
  const float x2h = static_cast<float>(x2), x2l = static_cast<float>(x2 - x2h);
  if (s > kErfcMaxS) s = kErfcMaxS;
  const float p = (((kErfP4 * s + kErfP3) * s + kErfP2) * s + kErfP1) * s + kErfP0;
  const float q = ((((kErfQ5 * s + kErfQ4) * s + kErfQ3) * s + kErfQ2) * s + kErfQ1) * s + kErfQ0;
  return p * exp_scalar(-0.5f * x2h, -0.5f * x2l) / q;
}

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA (8 lanes).

QVL_TARGET_AVX2 inline __m256 exp_avx2(__m256 h, __m256 l) {
  h = _mm256_min_ps(_mm256_set1_ps(kExpMax), _mm256_max_ps(_mm256_set1_ps(kExpMin), h));  // NaN stays
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(h, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), h);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  r = _mm256_add_ps(r, l);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(kExpC6), r, _mm256_set1_ps(kExpC5));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpC4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpC3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpC2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

QVL_TARGET_AVX2 inline __m256 erfc_abs_avx2(__m256 x) {
  const __m256 a = _mm256_min_ps(_mm256_set1_ps(kErfcSquareMax), _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x));
  const __m256 x2h = _mm256_mul_ps(a, a), x2l = _mm256_fmsub_ps(a, a, x2h);
  const __m256 s = _mm256_min_ps(a, _mm256_set1_ps(kErfcMaxS));
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(kErfP4), s, _mm256_set1_ps(kErfP3));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(kErfP2));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(kErfP1));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(kErfP0));
  __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(kErfQ5), s, _mm256_set1_ps(kErfQ4));
  q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(kErfQ3));
  q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(kErfQ2));
  q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(kErfQ1));
  q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(kErfQ0));
  const __m256 half = _mm256_set1_ps(-0.5f);
  const __m256 e = exp_avx2(_mm256_mul_ps(half, x2h), _mm256_mul_ps(half, x2l));
  return _mm256_div_ps(_mm256_mul_ps(p, e), q);
}

// ---------------------------------------------------------------------------------------------
// AVX-512 (16 lanes).

QVL_TARGET_AVX512 inline __m512 exp_avx512(__m512 h, __m512 l) {
  h = _mm512_min_ps(_mm512_set1_ps(kExpMax), _mm512_max_ps(_mm512_set1_ps(kExpMin), h));  // NaN stays
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(h, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), h);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  r = _mm512_add_ps(r, l);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(kExpC6), r, _mm512_set1_ps(kExpC5));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpC4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpC3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpC2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512i ni = _mm512_cvtps_epi32(n);
  const __m512i n1 = _mm512_srai_epi32(ni, 1), n2 = _mm512_sub_epi32(ni, n1);
  const __m512i bias = _mm512_set1_epi32(127);
  const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
  const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
  return _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
}

// 2^y for finite y, relative error below 2e-7 where the result is normal (VSCALEFPS takes any
// exponent: no clamp, 0 far below; NaN stays, −∞ gives NaN). Half exp_avx512's work, for callers
// that fold log2(e) into a scale they apply anyway (softmax weights).
QVL_TARGET_AVX512 inline __m512 exp2_avx512(__m512 y) {
  const __m512 n = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(y, n);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(kExp2C5), f, _mm512_set1_ps(kExp2C4));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C3));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C2));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C1));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

QVL_TARGET_AVX512 inline __m512 erfc_abs_avx512(__m512 x) {
  const __m512 a = _mm512_min_ps(_mm512_set1_ps(kErfcSquareMax), _mm512_abs_ps(x));
  const __m512 x2h = _mm512_mul_ps(a, a), x2l = _mm512_fmsub_ps(a, a, x2h);
  const __m512 s = _mm512_min_ps(a, _mm512_set1_ps(kErfcMaxS));
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(kErfP4), s, _mm512_set1_ps(kErfP3));
  p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(kErfP2));
  p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(kErfP1));
  p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(kErfP0));
  __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(kErfQ5), s, _mm512_set1_ps(kErfQ4));
  q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(kErfQ3));
  q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(kErfQ2));
  q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(kErfQ1));
  q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(kErfQ0));
  const __m512 half = _mm512_set1_ps(-0.5f);
  const __m512 e = exp_avx512(_mm512_mul_ps(half, x2h), _mm512_mul_ps(half, x2l));
  return _mm512_div_ps(_mm512_mul_ps(p, e), q);
}

// ---------------------------------------------------------------------------------------------
// Element i.. of a vector stored as f32, bf16 or f16, as f32 (every conversion is exact).

template <DType T>
inline float load1(const void* base, int64_t i) {
  if constexpr (T == DType::BF16) return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
  if constexpr (T == DType::F16) return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
  return static_cast<const float*>(base)[i];
}

template <DType T>
QVL_TARGET_AVX2 inline __m256 load8_avx2(const void* base, int64_t i) {
  if constexpr (T == DType::F32) {
    return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i));
    if constexpr (T == DType::BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
  }
}

template <DType T>
QVL_TARGET_AVX512 inline __m512 load16_avx512(const void* base, int64_t i) {
  if constexpr (T == DType::F32) {
    return _mm512_loadu_ps(static_cast<const float*>(base) + i);
  } else {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + i));
    if constexpr (T == DType::BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
  }
}

// The lanes in m only (others 0); nothing outside them is read.
template <DType T>
QVL_TARGET_AVX512 inline __m512 load16_avx512(const void* base, int64_t i, __mmask16 m) {
  if constexpr (T == DType::F32) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(base) + i);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + i);
    if constexpr (T == DType::BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
  }
}

// Sum of 8 lanes, halves added pairwise (the order every AVX2 matmul kernel reduces in).
QVL_TARGET_AVX2 inline float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Sum of 16 lanes, halves added pairwise (the order every AVX-512 matmul kernel reduces in).
// Store-and-add: GCC 12 warns spuriously inside _mm512_reduce_add_ps and the 512->256 casts
// under -Wextra.
QVL_TARGET_AVX512 inline float hsum_avx512(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  const __m256 h = _mm256_add_ps(_mm256_load_ps(t), _mm256_load_ps(t + 8));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Lane i of the result = the sum of the 16 lanes of v[i]: pairwise unpack/shuffle adds, ~3 ops per
// input vector instead of a full horizontal reduction each.
QVL_TARGET_AVX512 inline __m512 hsum16_avx512(const __m512* v) {
  __m512 a[8], b[4];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i)
    a[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    const __m512d x = _mm512_castps_pd(a[2 * i]), y = _mm512_castps_pd(a[2 * i + 1]);
    b[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
  const __m512 c0 = _mm512_add_ps(_mm512_shuffle_f32x4(b[0], b[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                  _mm512_shuffle_f32x4(b[0], b[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512 c1 = _mm512_add_ps(_mm512_shuffle_f32x4(b[2], b[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                  _mm512_shuffle_f32x4(b[2], b[3], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(c0, c1, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(c0, c1, _MM_SHUFFLE(3, 1, 3, 1)));
}

}  // namespace qvl::cpu::vm
