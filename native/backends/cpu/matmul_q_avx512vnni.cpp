// Int8Dot matmul with AVX512-VNNI: one zmm holds a pair of 32-blocks (the q4 layout stores a pair
// in 32 bytes: one broadcast, one variable shift and one mask give the 64 codes in element order;
// q8 is a plain 64-byte load), vpdpbusd multiplies the unsigned codes with the signed activation
// codes into 16 int32 lanes (8 per block), and each pair adds cvt(dot) · (d_x · s_w) to an f32
// accumulator, per block. Up to 4 activation rows share each unpacked weight vector (prefill),
// 4 weight rows share each activation vector.
#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/matmul_q.h"
#include "backends/cpu/matmul_q_gemm.h"
#include "core/cpu.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

namespace {

constexpr __mmask16 kAll = static_cast<__mmask16>(0xffff);
constexpr __mmask64 kLow32 = 0xffffffffull;  // the low 32 bytes of a zmm

QVL_TARGET_AVX512VNNI inline float hsum(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  const __m256 h = _mm256_add_ps(_mm256_load_ps(t), _mm256_load_ps(t + 8));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Bytes identical to ops::quantize_act_block: amax exact, d = amax / 127 and 1 / d in f32 scalar
// arithmetic, codes by cvtps2dq (round half even) of one f32 product each.
QVL_TARGET_AVX512VNNI void quantize(const float* x, int64_t m, QActs& a) {
  int8_t* q = a.q + m * a.K;
  float* d = a.d + m * a.blocks;
  float* gs = a.gs + m * a.groups;
  const int64_t per_group = a.group / kQuantBlock;
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t g = 0; g < a.groups; ++g) {
    float s = 0.0f;
    for (int64_t b = g * per_group; b < (g + 1) * per_group; ++b) {
      const __m512 x0 = _mm512_loadu_ps(x + b * kQuantBlock), x1 = _mm512_loadu_ps(x + b * kQuantBlock + 16);
      const __m512 mx = _mm512_maskz_max_ps(kAll, _mm512_and_ps(x0, abs_mask), _mm512_and_ps(x1, abs_mask));
      alignas(64) float t[16];
      _mm512_store_ps(t, mx);
      float amax = 0.0f;
      for (int i = 0; i < 16; ++i) amax = amax > t[i] ? amax : t[i];
      const float db = amax / 127.0f, inv = db != 0.0f ? 1.0f / db : 0.0f;
      const __m512 iv = _mm512_set1_ps(inv);
      const __m512i q0 = _mm512_maskz_cvtps_epi32(kAll, _mm512_mul_ps(x0, iv)), q1 = _mm512_maskz_cvtps_epi32(kAll, _mm512_mul_ps(x1, iv));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * kQuantBlock), _mm512_maskz_cvtepi32_epi8(kAll, q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * kQuantBlock + 16), _mm512_maskz_cvtepi32_epi8(kAll, q1));
      alignas(64) int32_t qs[16];
      _mm512_store_si512(qs, _mm512_add_epi32(q0, q1));
      int32_t sum = 0;
      for (int i = 0; i < 16; ++i) sum += qs[i];
      d[b] = db;
      s += db * static_cast<float>(sum);
    }
    gs[g] = s;
  }
}

// Σ_g s_w · z · gs for output (m, n), 16 groups at a time.
template <WeightFormat F>
QVL_TARGET_AVX512VNNI inline float zero_term_v(const ops::MatmulParams& p, const QActs& a, int64_t m, int64_t n) {
  const float* sw = p.w.row_scales(n);
  const float* gs = a.gs + m * a.groups;
  const uint8_t* z = F == WeightFormat::Q4 ? p.w.row_zeros(n) : nullptr;
  __m512 acc = _mm512_setzero_ps();
  for (int64_t g = 0; g < a.groups; g += 16) {
    const __mmask16 mk = a.groups - g >= 16 ? kAll : static_cast<__mmask16>((1u << (a.groups - g)) - 1);
    __m512 t = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, sw + g), _mm512_maskz_loadu_ps(mk, gs + g));
    if constexpr (F == WeightFormat::Q4) {
      t = _mm512_mul_ps(t, _mm512_maskz_cvtepi32_ps(kAll, _mm512_maskz_cvtepu8_epi32(kAll, _mm_maskz_loadu_epi8(mk, z + g))));
    }
    acc = _mm512_add_ps(acc, t);
  }
  const float s = hsum(acc);
  return F == WeightFormat::Q8 ? 128.0f * s : s;
}

// The 64 codes of pair `pr` of a stored row (element order: block 2pr in bytes 0..31).
template <WeightFormat F>
QVL_TARGET_AVX512VNNI inline __m512i pair_codes(const uint8_t* row, int64_t pr, __m512i shifts, __m512i low4) {
  if constexpr (F == WeightFormat::Q8) {
    return _mm512_loadu_si512(row + pr * 64);
  } else {
    const __m512i v = _mm512_maskz_broadcast_i64x4(static_cast<__mmask8>(0xff), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + pr * 32)));
    return _mm512_and_si512(_mm512_srlv_epi16(v, shifts), low4);
  }
}

// The codes of block b (the last of K, an even index) in the low 32 bytes, zeros above. For q4 it
// is the first half of a full pair when the stored row (ld) continues past K, else a half pair.
template <WeightFormat F>
QVL_TARGET_AVX512VNNI inline __m512i last_codes(const uint8_t* row, int64_t b, int64_t paired_ld) {
  if constexpr (F == WeightFormat::Q8) {
    return _mm512_maskz_loadu_epi8(kLow32, row + b * 32);
  } else {
    if (b < paired_ld) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b / 2 * 32));
      return _mm512_maskz_inserti64x4(static_cast<__mmask8>(0xff), _mm512_setzero_si512(),
                                      _mm256_and_si256(v, _mm256_set1_epi8(15)), 0);
    }
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + b / 2 * 32));
    const __m128i m4 = _mm_set1_epi8(15);
    const __m256i c = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(v, m4)),
                                              _mm_and_si128(_mm_srli_epi16(v, 4), m4), 1);
    return _mm512_maskz_inserti64x4(static_cast<__mmask8>(0xff), _mm512_setzero_si512(), c, 0);
  }
}

// [lo × 8, hi × 8]
QVL_TARGET_AVX512VNNI inline __m512 halves(float lo, float hi) {
  return _mm512_mask_blend_ps(static_cast<__mmask16>(0xff00), _mm512_set1_ps(lo), _mm512_set1_ps(hi));
}

template <WeightFormat F, int MB, int R>
QVL_TARGET_AVX512VNNI void tile_block(const ops::MatmulParams& p, const QActs& a, int64_t m0, int64_t n) {
  constexpr int64_t kPairBytes = F == WeightFormat::Q8 ? 64 : 32;
  const uint8_t* w[R];
  const float* sw[R];
  for (int j = 0; j < R; ++j) w[j] = static_cast<const uint8_t*>(p.w.row(n + j)), sw[j] = p.w.row_scales(n + j);
  const int8_t* xq[MB];
  const float* xd[MB];
  for (int i = 0; i < MB; ++i) xq[i] = a.q + (m0 + i) * a.K, xd[i] = a.d + (m0 + i) * a.blocks;
  const int64_t pairs = a.blocks / 2, per_group = a.group / kQuantBlock;
  const __m512i shifts = _mm512_maskz_set1_epi16(static_cast<__mmask32>(0xffff0000u), 4);  // 0 low half, 4 high
  const __m512i low4 = _mm512_set1_epi8(15);
  __m512 acc[MB][R];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < R; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t pr = 0; pr < pairs; ++pr) {
    const int64_t b0 = 2 * pr, ga = b0 / per_group, gb = (b0 + 1) / per_group;
    if (pr * kPairBytes % 64 == 0) {
      // Integer arithmetic: the address may lie past the row's end (a prefetch never faults).
      for (int j = 0; j < R; ++j)
        _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(w[j]) + pr * kPairBytes + 1024), _MM_HINT_T0);
    }
    __m512i wv[R];
    __m512 swv[R];
    for (int j = 0; j < R; ++j) {
      wv[j] = pair_codes<F>(w[j], pr, shifts, low4);
      swv[j] = ga == gb ? _mm512_set1_ps(sw[j][ga]) : halves(sw[j][ga], sw[j][gb]);
    }
    for (int i = 0; i < MB; ++i) {
      const __m512i xv = _mm512_loadu_si512(xq[i] + pr * 64);
      const __m512 dv = halves(xd[i][b0], xd[i][b0 + 1]);
      for (int j = 0; j < R; ++j) {
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[j], xv);
        acc[i][j] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAll, dot), _mm512_mul_ps(dv, swv[j]), acc[i][j]);
      }
    }
  }
  if (a.blocks % 2) {  // the trailing unpaired block: upper 32 bytes of codes are zero
    const int64_t b = a.blocks - 1;
    for (int j = 0; j < R; ++j) {
      const __m512i wvj = last_codes<F>(w[j], b, p.w.ld / kQuantBlock / 2 * 2);
      const float s = sw[j][b / per_group];
      for (int i = 0; i < MB; ++i) {
        const __m512i xv = _mm512_maskz_loadu_epi8(kLow32, xq[i] + b * 32);
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wvj, xv);
        acc[i][j] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAll, dot), _mm512_set1_ps(xd[i][b] * s), acc[i][j]);
      }
    }
  }
  for (int i = 0; i < MB; ++i) {
    for (int j = 0; j < R; ++j) {
      p.y[(m0 + i) * p.ldy + n + j] =
          (p.bias ? p.bias[n + j] : 0.0f) + hsum(acc[i][j]) - zero_term_v<F>(p, a, m0 + i, n + j);
    }
  }
}

template <WeightFormat F, int MB>
QVL_TARGET_AVX512VNNI void tile_mb(const ops::MatmulParams& p, const QActs& a, int64_t m0, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) tile_block<F, MB, 4>(p, a, m0, n);
  for (; n < n1; ++n) tile_block<F, MB, 1>(p, a, m0, n);
}

template <WeightFormat F>
QVL_TARGET_AVX512VNNI void tile_f(const ops::MatmulParams& p, const QActs& a, int64_t m0, int rows, int64_t n0, int64_t n1) {
  switch (rows) {
    case 1: return tile_mb<F, 1>(p, a, m0, n0, n1);
    case 2: return tile_mb<F, 2>(p, a, m0, n0, n1);
    case 3: return tile_mb<F, 3>(p, a, m0, n0, n1);
    default: return tile_mb<F, 4>(p, a, m0, n0, n1);
  }
}

QVL_TARGET_AVX512VNNI void tile(const ops::MatmulParams& p, const QActs& a, int64_t m0, int rows, int64_t n0, int64_t n1) {
  switch (p.w.format) {
    case WeightFormat::Q8: return tile_f<WeightFormat::Q8>(p, a, m0, rows, n0, n1);
    case WeightFormat::Q4: return tile_f<WeightFormat::Q4>(p, a, m0, rows, n0, n1);
    case WeightFormat::F32:
    case WeightFormat::F16:
    case WeightFormat::BF16:
    case WeightFormat::F8: return;  // the dispatcher sends only the formats the variant lists
  }
}

const QKernels kKernels = {quantize, tile, qgemm_avx512vnni};

}  // namespace

void matmul_q_avx512vnni(const ops::MatmulParams& p, const ExecContext& ctx) { run_qmatmul(p, ctx.pool(), kKernels); }

}  // namespace qvl::cpu
