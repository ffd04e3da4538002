// Tiled attention kernels for AVX2: 8 rows per vector, register tiles of 6 keys (or 6 head
// dimensions) × 2 row vectors = 12 accumulators, K and V elements broadcast from memory; and
// row-major kernels for decode (head dims along the 8 lanes, at most 16 registers live).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "backends/cpu/attention_tiled.h"
#include "backends/cpu/vec_math.h"
#include "core/cpu.h"

namespace qvl::cpu {
namespace {

constexpr int kGroup = 6;  // keys per qk tile, head dims per pv tile

// 2^x for x <= 0, relative error ~2e-7: x = n + f with |f| <= 1/2, 2^f by its degree-7 Taylor
// series in f·ln2, then scaled by 2^n built in the exponent field. Inputs below -126 give exactly 0
// (true value < 1.2e-38), which also turns the -inf of masked scores into 0.
QVL_TARGET_AVX2 inline __m256 exp2_ps(__m256 x) {
  const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-126.0f), _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-126.0f)), _mm256_set1_ps(127.0f));
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 y = _mm256_set1_ps(1.5252733804059838e-05f);
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(1.5403530393381606e-04f));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(1.3333558146428441e-03f));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(9.6181291076284770e-03f));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(5.5504108664821576e-02f));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(2.4022650695910071e-01f));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(6.9314718055994531e-01f));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(tiny, _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
}

// All-ones lanes where key index j < lim.
QVL_TARGET_AVX2 inline __m256 valid_lanes(int32_t j, __m256i limv) {
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(limv, _mm256_set1_epi32(j)));
}

// The accumulator tiles are flat arrays under explicit unroll pragmas: that is what lets GCC keep
// them in registers (a 2-D array of vectors, or a plain loop, gets spilled to the stack every step).
template <int RV>
QVL_TARGET_AVX2 void qk_tile(const float* Qt, int D, int RP, const float* const* kp, float* St) {
  __m256 acc[kGroup * RV];
#pragma GCC unroll 16
  for (int i = 0; i < kGroup * RV; ++i) acc[i] = _mm256_setzero_ps();
  for (int d = 0; d < D; ++d) {
    __m256 q[RV];
#pragma GCC unroll 2
    for (int v = 0; v < RV; ++v) q[v] = _mm256_loadu_ps(Qt + static_cast<size_t>(d) * RP + 8 * v);
#pragma GCC unroll 8
    for (int j = 0; j < kGroup; ++j) {
      const __m256 b = _mm256_set1_ps(kp[j][d]);
#pragma GCC unroll 2
      for (int v = 0; v < RV; ++v) acc[j * RV + v] = _mm256_fmadd_ps(q[v], b, acc[j * RV + v]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kGroup * RV; ++i) _mm256_storeu_ps(St + static_cast<size_t>(i / RV) * RP + 8 * (i % RV), acc[i]);
}

template <int RV>
QVL_TARGET_AVX2 void pv_tile(const float* St, int RP, int nk, const float* v, int64_t ldv, const int* dd, float* Ot,
                     const float* alpha) {
  __m256 acc[kGroup * RV];
  __m256 a[RV];
#pragma GCC unroll 2
  for (int w = 0; w < RV; ++w) a[w] = _mm256_loadu_ps(alpha + 8 * w);
#pragma GCC unroll 16
  for (int i = 0; i < kGroup * RV; ++i)
    acc[i] = _mm256_mul_ps(_mm256_loadu_ps(Ot + static_cast<size_t>(i / RV) * RP + 8 * (i % RV)), a[i % RV]);
  for (int j = 0; j < nk; ++j) {
    __m256 pj[RV];
#pragma GCC unroll 2
    for (int w = 0; w < RV; ++w) pj[w] = _mm256_loadu_ps(St + static_cast<size_t>(j) * RP + 8 * w);
    const float* vr = v + j * ldv;
#pragma GCC unroll 8
    for (int i = 0; i < kGroup; ++i) {
      const __m256 b = _mm256_set1_ps(vr[dd[i]]);
#pragma GCC unroll 2
      for (int w = 0; w < RV; ++w) acc[i * RV + w] = _mm256_fmadd_ps(pj[w], b, acc[i * RV + w]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kGroup * RV; ++i) _mm256_storeu_ps(Ot + static_cast<size_t>(i / RV) * RP + 8 * (i % RV), acc[i]);
}

// Row-major kernels for items with few rows (decode): head dims along lanes.

// 8 stored K or V elements widened to f32; the _part forms read only the first n (others 0), for a
// head dimension that is not a multiple of 8 (the lanes past D may be the next head's, or past the
// cache's end).
QVL_TARGET_AVX2 inline __m256 load8(const float* x) { return _mm256_loadu_ps(x); }
QVL_TARGET_AVX2 inline __m256 load8(const uint16_t* x) { return vm::load8_avx2<DType::BF16>(x, 0); }
QVL_TARGET_AVX2 inline __m256i first_lanes8(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
QVL_TARGET_AVX2 inline __m256 load8_part(const float* x, int n) { return _mm256_maskload_ps(x, first_lanes8(n)); }
QVL_TARGET_AVX2 inline __m256 load8_part(const uint16_t* x, int n) {
  uint16_t t[8] = {};
  if (n > 0) std::memcpy(t, x, static_cast<size_t>(std::min(n, 8)) * 2);
  return vm::load8_avx2<DType::BF16>(t, 0);
}

// Lane i of the result = the sum of the 8 lanes of v[i].
QVL_TARGET_AVX2 inline __m256 hsum8(const __m256* v) {
  const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

QVL_TARGET_AVX2 inline float hmax8(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  return _mm_cvtss_f32(_mm_max_ss(x, _mm_movehdup_ps(x)));
}

// S[r][j0..j0+8) for R rows against the 8 keys kp, KB keys at a time (R·KB sums, KB key vectors and
// a query vector in the 16 registers), each key vector widened once for all R rows; the 8·R sums
// go through L1 and leave as R horizontal sums of 8. D in nv vectors, the last `tail` lanes long;
// NV: nv when fixed at compile time (D's loop unrolled), else 0.
template <int R, int NV, class T>
QVL_TARGET_AVX2 void qk_rows_block(const float* Q, int ldq, int nv_rt, int tail, const T* const* kp, float* S, int lds) {
  constexpr int KB = R == 1 ? 8 : R == 2 ? 4 : R <= 6 ? 2 : 1;
  const int nv = NV > 0 ? NV : nv_rt;
  alignas(32) __m256 sums[8 * R];
  for (int jb = 0; jb < 8; jb += KB) {
    __m256 acc[R * KB];
#pragma GCC unroll 16
    for (int i = 0; i < R * KB; ++i) acc[i] = _mm256_setzero_ps();
#pragma GCC unroll 16
    for (int w = 0; w < nv; ++w) {
      __m256 kv[KB];
      if (w < nv - 1 || tail == 8) {
#pragma GCC unroll 8
        for (int j = 0; j < KB; ++j) kv[j] = load8(kp[jb + j] + 8 * w);
      } else {
#pragma GCC unroll 8
        for (int j = 0; j < KB; ++j) kv[j] = load8_part(kp[jb + j] + 8 * w, tail);
      }
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m256 q = _mm256_loadu_ps(Q + static_cast<size_t>(r) * ldq + 8 * w);
#pragma GCC unroll 8
        for (int j = 0; j < KB; ++j) acc[r * KB + j] = _mm256_fmadd_ps(q, kv[j], acc[r * KB + j]);
      }
    }
#pragma GCC unroll 16
    for (int i = 0; i < R * KB; ++i) sums[(i / KB) * 8 + jb + i % KB] = acc[i];
  }
  for (int r = 0; r < R; ++r) _mm256_storeu_ps(S + static_cast<size_t>(r) * lds, hsum8(sums + 8 * r));
}

template <int R, class T>
void qk_rows_r(const float* Q, int ldq, int D, const T* k, int64_t ldk, int nk, float* S, int lds) {
  const int nv = (D + 7) / 8, tail = D - 8 * (nv - 1);
  const T* kp[8];
  for (int j0 = 0; j0 < nk; j0 += 8) {
    for (int j = 0; j < 8; ++j) {
      kp[j] = k + std::min(j0 + j, nk - 1) * ldk;  // past the last key, repeat it (scratch scores)
      if (j0 + j < nk) attn::prefetch_next_tile(kp[j], ldk, D * static_cast<int>(sizeof(T)));
    }
    // The common head sizes (64, 128: 8 and 16 vectors, no tail) get D's loop unrolled.
    if (nv == 16 && tail == 8) qk_rows_block<R, 16, T>(Q, ldq, nv, tail, kp, S + j0, lds);
    else if (nv == 8 && tail == 8) qk_rows_block<R, 8, T>(Q, ldq, nv, tail, kp, S + j0, lds);
    else qk_rows_block<R, 0, T>(Q, ldq, nv, tail, kp, S + j0, lds);
  }
}

// O[r][d] = alpha[r]·O[r][d] + Σ_j S[r][j]·v[j][d] for R rows, D in chunks of 8·W lanes (R·W sums,
// W value vectors and a broadcast in the 16 registers). A chunk reaching past D (Full false) reads
// and writes only its lanes below D.
template <int R, int W, bool Full, class T>
QVL_TARGET_AVX2 void pv_rows_chunk(const float* S, int lds, int nk, const T* v, int64_t ldv, int d0, int D, float* O,
                                   int ldo, const float* alpha) {
  __m256i mk[W];
  for (int c = 0; c < W; ++c) mk[c] = first_lanes8(D - d0 - 8 * c);
  __m256 acc[R * W];
#pragma GCC unroll 16
  for (int i = 0; i < R * W; ++i) {
    float* o = O + static_cast<size_t>(i / W) * ldo + d0 + 8 * (i % W);
    const __m256 x = Full ? _mm256_loadu_ps(o) : _mm256_maskload_ps(o, mk[i % W]);
    acc[i] = _mm256_mul_ps(x, _mm256_set1_ps(alpha[i / W]));
  }
  for (int j = 0; j < nk; ++j) {
    const T* vr = v + j * ldv + d0;
    attn::prefetch_next_tile(vr, ldv, 8 * W * static_cast<int>(sizeof(T)));
    __m256 vv[W];
#pragma GCC unroll 4
    for (int c = 0; c < W; ++c) vv[c] = Full ? load8(vr + 8 * c) : load8_part(vr + 8 * c, D - d0 - 8 * c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 b = _mm256_broadcast_ss(S + static_cast<size_t>(r) * lds + j);
#pragma GCC unroll 4
      for (int c = 0; c < W; ++c) acc[W * r + c] = _mm256_fmadd_ps(vv[c], b, acc[W * r + c]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R * W; ++i) {
    float* o = O + static_cast<size_t>(i / W) * ldo + d0 + 8 * (i % W);
    if (Full) _mm256_storeu_ps(o, acc[i]);
    else _mm256_maskstore_ps(o, mk[i % W], acc[i]);
  }
}

template <int R, class T>
void pv_rows_r(const float* S, int lds, int nk, const T* v, int64_t ldv, int D, float* O, int ldo, const float* alpha) {
  constexpr int W = R <= 2 ? 4 : R <= 6 ? 2 : 1;
  for (int d0 = 0; d0 < D; d0 += 8 * W) {
    if (d0 + 8 * W <= D) pv_rows_chunk<R, W, true, T>(S, lds, nk, v, ldv, d0, D, O, ldo, alpha);
    else pv_rows_chunk<R, W, false, T>(S, lds, nk, v, ldv, d0, D, O, ldo, alpha);
  }
}

// The R-row instance of kernel F (a template over R, then T) for R in [1, 8].
#define QVL_AVX2_ROWS(F, T, ...)                    \
  switch (R) {                                      \
    case 1: return F<1, T>(__VA_ARGS__);            \
    case 2: return F<2, T>(__VA_ARGS__);            \
    case 3: return F<3, T>(__VA_ARGS__);            \
    case 4: return F<4, T>(__VA_ARGS__);            \
    case 5: return F<5, T>(__VA_ARGS__);            \
    case 6: return F<6, T>(__VA_ARGS__);            \
    case 7: return F<7, T>(__VA_ARGS__);            \
    default: return F<8, T>(__VA_ARGS__);           \
  }

struct Avx2 {
  static constexpr int kLanes = 8;
  static constexpr int kRowsTarget = 32;
  // Decode on the row-major kernels rather than the transposed ones (8 lanes for 6 rows, each bf16
  // tile widened into L1 first): a step's attention at the 2B shape, this variant on 2 Zen 5
  // threads, bf16 cache 576 keys 1.45 -> 0.95 ms, 2048 keys 5.4 -> 2.9 ms; f32 cache 2048 keys 6.6
  // -> 4.0 ms.
  static constexpr bool kRowPath = true;
  static constexpr int kRowMax = 8;
  static constexpr int kRowDimPad = 32;

  static void qk(const float* Qt, int D, int RP, const float* k, int64_t ldk, int nk, float* St) {
    const float* kp[kGroup];
    for (int j0 = 0; j0 < nk; j0 += kGroup) {
      // Past the last key, repeat it: the extra St rows are scratch nobody reads.
      for (int j = 0; j < kGroup; ++j) kp[j] = k + std::min(j0 + j, nk - 1) * ldk;
      float* s = St + static_cast<size_t>(j0) * RP;
      int r = 0;
      for (; r + 16 <= RP; r += 16) qk_tile<2>(Qt + r, D, RP, kp, s + r);
      if (r < RP) qk_tile<1>(Qt + r, D, RP, kp, s + r);
    }
  }

  QVL_TARGET_AVX2 static void softmax(float* St, int RP, int nk, int32_t kt, const int32_t* lim, bool masked,
                                        float* m, float* l, float* alpha) {
    const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
    for (int r = 0; r < RP; r += 8) {
      const __m256i limv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lim + r));
      const __m256 m_old = _mm256_loadu_ps(m + r);
      __m256 mx = m_old;
      for (int j = 0; j < nk; ++j) {
        __m256 s = _mm256_loadu_ps(St + static_cast<size_t>(j) * RP + r);
        if (masked) s = _mm256_blendv_ps(ninf, s, valid_lanes(kt + j, limv));
        mx = _mm256_max_ps(mx, s);
      }
      // A row with no valid key yet keeps m = -inf; its alpha must stay finite (1) to avoid NaN.
      const __m256 empty = _mm256_cmp_ps(mx, ninf, _CMP_EQ_OQ);
      const __m256 a = _mm256_blendv_ps(exp2_ps(_mm256_sub_ps(m_old, mx)), _mm256_set1_ps(1.0f), empty);
      __m256 sum = _mm256_setzero_ps();
      for (int j = 0; j < nk; ++j) {
        float* sp = St + static_cast<size_t>(j) * RP + r;
        __m256 pj = exp2_ps(_mm256_sub_ps(_mm256_loadu_ps(sp), mx));
        if (masked) pj = _mm256_and_ps(pj, valid_lanes(kt + j, limv));
        _mm256_storeu_ps(sp, pj);
        sum = _mm256_add_ps(sum, pj);
      }
      _mm256_storeu_ps(m + r, mx);
      _mm256_storeu_ps(alpha + r, a);
      _mm256_storeu_ps(l + r, _mm256_fmadd_ps(_mm256_loadu_ps(l + r), a, sum));
    }
  }

  // n rows of D bf16 values (row stride ld) as f32 rows of D: a bf16 tile widened once.
  QVL_TARGET_AVX2 static void widen(const uint16_t* src, int64_t ld, int n, int D, float* dst) {
    for (int j = 0; j < n; ++j) {
      const uint16_t* s = src + j * ld;
      float* o = dst + static_cast<size_t>(j) * D;
      int d = 0;
      for (; d + 8 <= D; d += 8) {
        _mm256_storeu_ps(o + d, vm::load8_avx2<DType::BF16>(s, d));
      }
      for (; d < D; ++d) o[d] = bf16_to_f32(s[d]);
    }
  }

  static void pv(const float* St, int RP, int nk, const float* v, int64_t ldv, int D, float* Ot, const float* alpha) {
    int dd[kGroup];
    for (int d0 = 0; d0 < D; d0 += kGroup) {
      // Past the last dimension, repeat it into the spare Ot rows.
      for (int i = 0; i < kGroup; ++i) dd[i] = std::min(d0 + i, D - 1);
      float* o = Ot + static_cast<size_t>(d0) * RP;
      int r = 0;
      for (; r + 16 <= RP; r += 16) pv_tile<2>(St + r, RP, nk, v, ldv, dd, o + r, alpha + r);
      if (r < RP) pv_tile<1>(St + r, RP, nk, v, ldv, dd, o + r, alpha + r);
    }
  }

  template <class T>
  static void qk_rows(const float* Q, int ldq, int D, int R, const T* k, int64_t ldk, int nk, float* S, int lds) {
    QVL_AVX2_ROWS(qk_rows_r, T, Q, ldq, D, k, ldk, nk, S, lds)
  }

  QVL_TARGET_AVX2 static void softmax_rows(float* S, int lds, int R, int nk, int32_t kt, const int32_t* lim,
                                           bool masked, float* m, float* l, float* alpha) {
    const float ninf = -__builtin_inff();
    for (int r = 0; r < R; ++r) {
      float* s = S + static_cast<size_t>(r) * lds;
      const int valid = masked ? std::max(0, std::min(nk, lim[r] - kt)) : nk;
      __m256 mxv = _mm256_set1_ps(ninf);
      for (int j = 0; j < valid; j += 8) {
        const __m256 in = _mm256_castsi256_ps(first_lanes8(valid - j));
        mxv = _mm256_max_ps(mxv, _mm256_blendv_ps(_mm256_set1_ps(ninf), _mm256_loadu_ps(s + j), in));
      }
      const float mx = std::max(m[r], hmax8(mxv));
      // A row with no valid key yet keeps m = -inf; its alpha must stay finite (1) to avoid NaN.
      const float a = mx == ninf ? 1.0f : std::exp2(m[r] - mx);
      const __m256 mxb = _mm256_set1_ps(mx);
      __m256 sum = _mm256_setzero_ps();
      for (int j = 0; j < nk; j += 8) {
        const __m256 in = _mm256_castsi256_ps(first_lanes8(valid - j));
        const __m256 pj = _mm256_and_ps(exp2_ps(_mm256_sub_ps(_mm256_loadu_ps(s + j), mxb)), in);
        _mm256_storeu_ps(s + j, pj);
        sum = _mm256_add_ps(sum, pj);
      }
      m[r] = mx;
      l[r] = l[r] * a + vm::hsum_avx2(sum);
      alpha[r] = a;
    }
  }

  template <class T>
  static void pv_rows(const float* S, int lds, int R, int nk, const T* v, int64_t ldv, int D, float* O, int ldo,
                      const float* alpha) {
    QVL_AVX2_ROWS(pv_rows_r, T, S, lds, nk, v, ldv, D, O, ldo, alpha)
  }
};

#undef QVL_AVX2_ROWS

}  // namespace

void attention_avx2(const ops::AttentionParams& p, const ExecContext& ctx) { attn::run<Avx2>(p, ctx.pool()); }

}  // namespace qvl::cpu
