// Row quantizer, 8 lanes; 32 codes at a time narrowed to bytes with two saturating packs and one
// lane permute (every code is 0..255 by then, so the packs never saturate).
#include <immintrin.h>

#include <algorithm>

#include "backends/cpu/quantize_row_cpu.h"
#include "core/cpu.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

namespace {

constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

QVL_TARGET_AVX2 float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

QVL_TARGET_AVX2 float hmin(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// Accumulators stay in [0, +inf] (amax) or hold no NaN and no -0 (range), so the reductions'
// order cannot change their result.
QVL_TARGET_AVX2 float amax_avx2(const float* x, int64_t n) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    a = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask), a);
    b = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i + 8), abs_mask), b);
  }
  return hmax(_mm256_max_ps(a, b));
}

QVL_TARGET_AVX2 void range_avx2(const float* x, int64_t n, float* lo, float* hi) {
  __m256 l = _mm256_setzero_ps(), h = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    l = _mm256_min_ps(v, l);
    h = _mm256_max_ps(v, h);
  }
  *lo = hmin(l), *hi = hmax(h);
}

QVL_TARGET_AVX2 __m256i bytes32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i w = _mm256_packus_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  return _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

QVL_TARGET_AVX2 void q8_codes_avx2(const float* x, int64_t n, float inv, uint8_t* dst) {
  const __m256 vi = _mm256_set1_ps(inv), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  const __m256i bias = _mm256_set1_epi32(128);
  for (int64_t i = 0; i < n; i += 32) {
    __m256i c[4];
    for (int j = 0; j < 4; ++j) {
      const __m256 r = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), vi), kRne);
      c[j] = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi)), bias);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), bytes32(c[0], c[1], c[2], c[3]));
  }
}

QVL_TARGET_AVX2 void q4_codes_avx2(const float* x, int64_t n, float inv, float zf, uint8_t* q) {
  const __m256 vi = _mm256_set1_ps(inv), vz = _mm256_set1_ps(zf), zero = _mm256_setzero_ps(), top = _mm256_set1_ps(15.0f);
  for (int64_t i = 0; i < n; i += 32) {
    __m256i c[4];
    for (int j = 0; j < 4; ++j) {
      const __m256 r = _mm256_add_ps(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), vi), kRne), vz);
      c[j] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, zero), top));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), bytes32(c[0], c[1], c[2], c[3]));
  }
}

// Elements k % 16 < 8 in acc[c][0], the others in acc[c][1] (lane k % 8): together
// q4_group_error's 16 lanes, folded in its order; each zero point its own sums, the rounded x·inv
// shared; code - zf as clamp(r, -zf, 15 - zf), exactly as the AVX-512 variant says.
template <int C>
inline QVL_TARGET_AVX2 __attribute__((always_inline)) void q4_errors_c(const float* x, int64_t n, float inv, float s, const float* zf, float* err) {
  const __m256 vi = _mm256_set1_ps(inv), vs = _mm256_set1_ps(s);
  __m256 lo[C], hi[C], acc[C][2];
  for (int c = 0; c < C; ++c) {
    lo[c] = _mm256_set1_ps(-zf[c]), hi[c] = _mm256_set1_ps(15.0f - zf[c]), acc[c][0] = acc[c][1] = _mm256_setzero_ps();
  }
  for (int64_t i = 0; i < n; i += 16) {
    for (int j = 0; j < 2; ++j) {
      const __m256 v = _mm256_loadu_ps(x + i + 8 * j);
      const __m256 r = _mm256_round_ps(_mm256_mul_ps(v, vi), kRne);
      for (int c = 0; c < C; ++c) {
        const __m256 e = _mm256_fnmadd_ps(_mm256_min_ps(_mm256_max_ps(r, lo[c]), hi[c]), vs, v);
        acc[c][j] = _mm256_fmadd_ps(e, e, acc[c][j]);
      }
    }
  }
  for (int c = 0; c < C; ++c) {
    const __m256 a8 = _mm256_add_ps(acc[c][0], acc[c][1]);
    __m128 a4 = _mm_add_ps(_mm256_castps256_ps128(a8), _mm256_extractf128_ps(a8, 1));
    a4 = _mm_add_ps(a4, _mm_movehl_ps(a4, a4));
    err[c] = _mm_cvtss_f32(_mm_add_ss(a4, _mm_movehdup_ps(a4)));
  }
}

// Every group's fit (q4_fit_groups) with this ISA's measure: only the `count` candidates the fit
// asks for are measured.
QVL_TARGET_AVX2 int64_t q4_fit_avx2(const float* x, int64_t group, int64_t groups, const Q4FitStep* steps, uint16_t* h, float* inv, float* zf) {
  const auto errors = [](const float* v, int64_t n, float iv, float s, const float* z, int count, float* err) QVL_TARGET_AVX2 {
    if (count == 1) return q4_errors_c<1>(v, n, iv, s, z, err);
    if (count == 2) return q4_errors_c<2>(v, n, iv, s, z, err);
    return q4_errors_c<3>(v, n, iv, s, z, err);
  };
  return q4_fit_groups(x, group, groups, steps, errors, h, inv, zf);
}

// 8 f32 group scales sv as q_group_scale stores them: the f16 bits (raised to 2^-14 below it, 0
// for a zero scale), their values, 1 / value (0 for zero) and the lanes whose scale overflows f16
// (a bit each).
struct Scales8 {
  __m256i h;
  __m256 v, inv;
  int over;
};
QVL_TARGET_AVX2 inline Scales8 f16_scales(__m256 sv) {
  const __m256i mag = _mm256_set1_epi32(0x7fff), below_inf = _mm256_set1_epi32(0x7bff), min_h = _mm256_set1_epi32(0x0400);
  const __m256 min_v = _mm256_set1_ps(kQScaleMin), one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  const __m128i h8 = _mm256_cvtps_ph(sv, kRne);
  Scales8 r;
  r.h = _mm256_cvtepu16_epi32(h8);
  r.over = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_and_si256(r.h, mag), below_inf)));
  const __m256 nz = _mm256_cmp_ps(sv, zero, _CMP_NEQ_OQ);
  const __m256 raise = _mm256_cmp_ps(_mm256_cvtph_ps(h8), min_v, _CMP_LT_OQ);  // zero scales cleared below
  r.h = _mm256_and_si256(_mm256_blendv_epi8(r.h, min_h, _mm256_castps_si256(raise)), _mm256_castps_si256(nz));
  r.v = _mm256_and_ps(_mm256_blendv_ps(_mm256_cvtph_ps(h8), min_v, raise), nz);
  r.inv = _mm256_and_ps(_mm256_div_ps(one, r.v), _mm256_cmp_ps(r.v, zero, _CMP_GT_OQ));  // 1/0 masked to 0
  return r;
}

// The 8 stored f16 bits of a Scales8.
QVL_TARGET_AVX2 inline __m128i f16_bits(const Scales8& r) {
  return _mm_packus_epi32(_mm256_castsi256_si128(r.h), _mm256_extracti128_si256(r.h, 1));
}

// 8 groups at a time (see QuantRowKernels::scales); the last few through the scalar steps.
QVL_TARGET_AVX2 int64_t scales_avx2(const float* s, int64_t groups, uint16_t* h, float* inv) {
  int64_t g = 0;
  for (; g + 8 <= groups; g += 8) {
    const Scales8 r = f16_scales(_mm256_loadu_ps(s + g));
    if (r.over) return g + __builtin_ctz(static_cast<unsigned>(r.over));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h + g), f16_bits(r));
    _mm256_storeu_ps(inv + g, r.inv);
  }
  return group_scales_scalar(s, g, groups, h, inv);
}

// 8 groups at a time (see QuantRowKernels::q4_steps), q4_fit_step's operations lane by lane: the
// scale as `scales_avx2` stores it, the zero points rounded to nearest even by the rounding
// instruction, as the AVX-512 variant says.
QVL_TARGET_AVX2 void q4_steps_avx2(const float* lo, const float* hi, int64_t groups, Q4FitStep* steps) {
  const __m256 sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps(), top = _mm256_set1_ps(15.0f), half = _mm256_set1_ps(0.5f);
  for (int64_t g = 0; g < groups; g += 8) {
    // The last few groups padded with empty ranges (their steps are not written).
    const int lanes = static_cast<int>(std::min<int64_t>(8, groups - g));
    alignas(32) float lp[8] = {}, up[8] = {};
    std::copy(lo + g, lo + g + lanes, lp);
    std::copy(hi + g, hi + g + lanes, up);
    const __m256 l = _mm256_load_ps(lp), u = _mm256_load_ps(up);
    const __m256 neg_l = _mm256_xor_ps(l, sign);
    const __m256 base = _mm256_div_ps(_mm256_sub_ps(u, l), top);
    Q4StepLanes<8> t;
    for (int j = 0; j < kQ4FitScales; ++j) {
      const Scales8 r = f16_scales(_mm256_mul_ps(base, _mm256_set1_ps(1.0f - static_cast<float>(j) / 32.0f)));
      const __m256 za = _mm256_min_ps(_mm256_max_ps(_mm256_round_ps(_mm256_mul_ps(neg_l, r.inv), kRne), zero), top);
      const __m256 zb = _mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(top, _mm256_round_ps(_mm256_mul_ps(u, r.inv), kRne)), zero), top);
      t.over[j] = static_cast<uint32_t>(r.over);
      _mm_store_si128(reinterpret_cast<__m128i*>(t.h[j]), f16_bits(r));
      _mm256_store_ps(t.s[j], r.v);
      _mm256_store_ps(t.inv[j], r.inv);
      _mm256_store_ps(t.z[j][0], za);
      _mm256_store_ps(t.z[j][1], zb);
      _mm256_store_ps(t.z[j][2], _mm256_round_ps(_mm256_mul_ps(_mm256_add_ps(za, zb), half), kRne));
    }
    t.put(lanes, steps + g * kQ4FitScales);
  }
}

}  // namespace

// Codes are at most 15, so a 16-bit shift by 4 moves no bit into the neighbouring byte.
QVL_TARGET_AVX2 void q4_pack_avx2(const uint8_t* q, int64_t n, uint8_t* dst) {
  const int64_t blocks = n / 32, paired = blocks / 2 * 2;
  for (int64_t b = 0; b < paired; b += 2) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + b * 32));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + b * 32 + 32));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + b * 16), _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)));
  }
  if (blocks > paired) {  // the half pair: element i low, 16 + i high
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + paired * 32));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + paired * 32 + 16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + paired * 16), _mm_or_si128(lo, _mm_slli_epi16(hi, 4)));
  }
}

int64_t quantize_row_avx2(const ops::QuantizeRowParams& p) {
  static constexpr QuantRowKernels k{amax_avx2, range_avx2, q8_codes_avx2, q4_codes_avx2, q4_pack_avx2, q4_fit_avx2, scales_avx2,
                                        q4_steps_avx2};
  return quantize_row_with(p, k);
}

}  // namespace qvl::cpu
