// Row quantizer, 16 lanes; codes narrowed to bytes with vpmovdb (every code is 0..255 by then).
#include <immintrin.h>

#include <algorithm>

// GCC 12 warns about the undefined pass-through operand inside plain AVX-512 intrinsics (its own
// header, not this code).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "backends/cpu/quantize_row_cpu.h"
#include "core/cpu.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

namespace {

constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

// Accumulators stay in [0, +inf] (amax) or hold no NaN and no -0 (range), so the reductions'
// order cannot change their result.
QVL_TARGET_AVX512 float amax_avx512(const float* x, int64_t n) {
  __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 32) {
    a = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), a);
    b = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i + 16)), b);
  }
  return _mm512_reduce_max_ps(_mm512_max_ps(a, b));
}

QVL_TARGET_AVX512 void range_avx512(const float* x, int64_t n, float* lo, float* hi) {
  __m512 l = _mm512_setzero_ps(), h = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    l = _mm512_min_ps(v, l);
    h = _mm512_max_ps(v, h);
  }
  *lo = _mm512_reduce_min_ps(l), *hi = _mm512_reduce_max_ps(h);
}

QVL_TARGET_AVX512 void q8_codes_avx512(const float* x, int64_t n, float inv, uint8_t* dst) {
  const __m512 vi = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  const __m512i bias = _mm512_set1_epi32(128);
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vi), kRne);
    const __m512i c = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(r, lo), hi)), bias);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm512_cvtepi32_epi8(c));
  }
}

QVL_TARGET_AVX512 void q4_codes_avx512(const float* x, int64_t n, float inv, float zf, uint8_t* q) {
  const __m512 vi = _mm512_set1_ps(inv), vz = _mm512_set1_ps(zf), zero = _mm512_setzero_ps(), top = _mm512_set1_ps(15.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 r = _mm512_add_ps(_mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vi), kRne), vz);
    const __m512i c = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(r, zero), top));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtepi32_epi8(c));
  }
}

// Element k in lane k % 16, the lanes folded in halves: q4_group_error's order, each zero point
// its own sums; the rounded x·inv shared. code - zf is taken as clamp(r, -zf, 15 - zf): every
// term a small integer, so it equals clamp(r + zf, 0, 15) - zf exactly, NaN included (max gives
// its second operand, -zf, as the reference's clamp gives 0 - zf).
template <int C>
inline QVL_TARGET_AVX512 __attribute__((always_inline)) void q4_errors_c(const float* x, int64_t n, float inv, float s, const float* zf, float* err) {
  const __m512 vi = _mm512_set1_ps(inv), vs = _mm512_set1_ps(s);
  __m512 lo[C], hi[C], acc[C];
  for (int c = 0; c < C; ++c) lo[c] = _mm512_set1_ps(-zf[c]), hi[c] = _mm512_set1_ps(15.0f - zf[c]), acc[c] = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(v, vi), kRne);
    for (int c = 0; c < C; ++c) {
      const __m512 e = _mm512_fnmadd_ps(_mm512_min_ps(_mm512_max_ps(r, lo[c]), hi[c]), vs, v);
      acc[c] = _mm512_fmadd_ps(e, e, acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) {
    const __m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(acc[c]), _mm512_extractf32x8_ps(acc[c], 1));
    __m128 a4 = _mm_add_ps(_mm256_castps256_ps128(a8), _mm256_extractf128_ps(a8, 1));
    a4 = _mm_add_ps(a4, _mm_movehl_ps(a4, a4));
    err[c] = _mm_cvtss_f32(_mm_add_ss(a4, _mm_movehdup_ps(a4)));
  }
}

// Every group's fit (q4_fit_groups) with this ISA's measure: only the `count` candidates the fit
// asks for are measured.
QVL_TARGET_AVX512 int64_t q4_fit_avx512(const float* x, int64_t group, int64_t groups, const Q4FitStep* steps, uint16_t* h, float* inv, float* zf) {
  const auto errors = [](const float* v, int64_t n, float iv, float s, const float* z, int count, float* err) QVL_TARGET_AVX512 {
    if (count == 1) return q4_errors_c<1>(v, n, iv, s, z, err);
    if (count == 2) return q4_errors_c<2>(v, n, iv, s, z, err);
    return q4_errors_c<3>(v, n, iv, s, z, err);
  };
  return q4_fit_groups(x, group, groups, steps, errors, h, inv, zf);
}

// 16 f32 group scales sv as q_group_scale stores them: the f16 bits (raised to 2^-14 below it, 0
// for a zero scale), their values, 1 / value (0 for zero) and the lanes whose scale overflows f16.
struct Scales16 {
  __m512i h;
  __m512 v, inv;
  __mmask16 over;
};
QVL_TARGET_AVX512 inline Scales16 f16_scales(__m512 sv) {
  const __m512i mag = _mm512_set1_epi32(0x7fff), inf = _mm512_set1_epi32(0x7c00), min_h = _mm512_set1_epi32(0x0400);
  const __m512 min_v = _mm512_set1_ps(kQScaleMin), one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
  const __m256i h16 = _mm512_cvtps_ph(sv, kRne);
  Scales16 r;
  r.h = _mm512_cvtepu16_epi32(h16);
  r.over = _mm512_cmpge_epi32_mask(_mm512_and_si512(r.h, mag), inf);
  r.v = _mm512_cvtph_ps(h16);
  const __mmask16 nz = _mm512_cmp_ps_mask(sv, zero, _CMP_NEQ_OQ);
  const __mmask16 raise = _mm512_cmp_ps_mask(r.v, min_v, _CMP_LT_OQ);  // zero scales cleared below
  r.h = _mm512_maskz_mov_epi32(nz, _mm512_mask_mov_epi32(r.h, raise, min_h));
  r.v = _mm512_maskz_mov_ps(nz, _mm512_mask_mov_ps(r.v, raise, min_v));
  r.inv = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(r.v, zero, _CMP_GT_OQ), one, r.v);
  return r;
}

// 16 groups at a time (see QuantRowKernels::scales); the last few through the scalar steps.
QVL_TARGET_AVX512 int64_t scales_avx512(const float* s, int64_t groups, uint16_t* h, float* inv) {
  int64_t g = 0;
  for (; g + 16 <= groups; g += 16) {
    const Scales16 r = f16_scales(_mm512_loadu_ps(s + g));
    if (r.over) return g + __builtin_ctz(r.over);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + g), _mm512_cvtepi32_epi16(r.h));
    _mm512_storeu_ps(inv + g, r.inv);
  }
  return group_scales_scalar(s, g, groups, h, inv);
}

// 16 groups at a time (see QuantRowKernels::q4_steps), q4_fit_step's operations lane by lane:
// the scale as `scales_avx512` stores it, the zero points rounded to nearest even by the
// rounding instruction: the reference's add-and-subtract of 1.5 · 2^23 gives the same integers
// (the arguments are below 20) and the same zero points (a -0 clamps to +0 either way), and a
// multiply followed by an add here could be contracted into one fused rounding by the compiler.
QVL_TARGET_AVX512 void q4_steps_avx512(const float* lo, const float* hi, int64_t groups, Q4FitStep* steps) {
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  const __m512 zero = _mm512_setzero_ps(), top = _mm512_set1_ps(15.0f), half = _mm512_set1_ps(0.5f);
  for (int64_t g = 0; g < groups; g += 16) {
    // The last few groups padded with empty ranges (their steps are not written).
    const int lanes = static_cast<int>(std::min<int64_t>(16, groups - g));
    alignas(64) float lp[16] = {}, up[16] = {};
    std::copy(lo + g, lo + g + lanes, lp);
    std::copy(hi + g, hi + g + lanes, up);
    const __m512 l = _mm512_load_ps(lp), u = _mm512_load_ps(up);
    const __m512 neg_l = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(l), sign));
    const __m512 base = _mm512_div_ps(_mm512_sub_ps(u, l), top);
    Q4StepLanes<16> t;
    for (int j = 0; j < kQ4FitScales; ++j) {
      const Scales16 r = f16_scales(_mm512_mul_ps(base, _mm512_set1_ps(1.0f - static_cast<float>(j) / 32.0f)));
      const __m512 za = _mm512_min_ps(_mm512_max_ps(_mm512_roundscale_ps(_mm512_mul_ps(neg_l, r.inv), kRne), zero), top);
      const __m512 zb = _mm512_min_ps(_mm512_max_ps(_mm512_sub_ps(top, _mm512_roundscale_ps(_mm512_mul_ps(u, r.inv), kRne)), zero), top);
      t.over[j] = r.over;
      _mm256_store_si256(reinterpret_cast<__m256i*>(t.h[j]), _mm512_cvtepi32_epi16(r.h));
      _mm512_store_ps(t.s[j], r.v);
      _mm512_store_ps(t.inv[j], r.inv);
      _mm512_store_ps(t.z[j][0], za);
      _mm512_store_ps(t.z[j][1], zb);
      _mm512_store_ps(t.z[j][2], _mm512_roundscale_ps(_mm512_mul_ps(_mm512_add_ps(za, zb), half), kRne));
    }
    t.put(lanes, steps + g * kQ4FitScales);
  }
}

}  // namespace

int64_t quantize_row_avx512(const ops::QuantizeRowParams& p) {
  static constexpr QuantRowKernels k{amax_avx512, range_avx512, q8_codes_avx512, q4_codes_avx512, q4_pack_avx2, q4_fit_avx512, scales_avx512,
                                        q4_steps_avx512};
  return quantize_row_with(p, k);
}

}  // namespace qvl::cpu
