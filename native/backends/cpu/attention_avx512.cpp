// Tiled attention kernels for AVX-512: 16 rows per vector, register tiles of 8 keys (or 8 head
// dimensions) × 2 row vectors = 16 accumulators, K and V elements broadcast from memory.
#include <immintrin.h>

// GCC 12 reports the _mm512_undefined_ps() inside its own unmasked AVX-512 intrinsics as
// "maybe uninitialized" once they are inlined; the warning is about the header, not this code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <cmath>

#include "backends/cpu/attention_tiled.h"
#include "backends/cpu/vec_math.h"
#include "core/cpu.h"

namespace qvl::cpu {
namespace {

constexpr int kGroup = 8;  // keys per qk tile, head dims per pv tile

// 2^x where x may be −∞ (a row's running max before its first valid key): that gives 0, and so
// does NaN (VMAXPS returns its second operand), as this kernel's exp2 always did.
QVL_TARGET_AVX512 inline __m512 exp2_ps(__m512 x) { return vm::exp2_avx512(_mm512_max_ps(x, _mm512_set1_ps(-200.0f))); }

// 16 stored K or V elements (only the lanes in m are read; others 0), widened to f32.
QVL_TARGET_AVX512 inline __m512 load16(const float* x, __mmask16 m) { return vm::load16_avx512<DType::F32>(x, 0, m); }
QVL_TARGET_AVX512 inline __m512 load16(const uint16_t* x, __mmask16 m) { return vm::load16_avx512<DType::BF16>(x, 0, m); }

// The accumulator tiles are flat arrays under explicit unroll pragmas: that is what lets GCC keep
// them in registers (a 2-D array of vectors, or a plain loop, gets spilled to the stack every step).
template <int RV>
QVL_TARGET_AVX512 void qk_tile(const float* Qt, int D, int RP, const float* const* kp, float* St) {
  __m512 acc[kGroup * RV];
#pragma GCC unroll 16
  for (int i = 0; i < kGroup * RV; ++i) acc[i] = _mm512_setzero_ps();
  for (int d = 0; d < D; ++d) {
    __m512 q[RV];
#pragma GCC unroll 2
    for (int v = 0; v < RV; ++v) q[v] = _mm512_loadu_ps(Qt + static_cast<size_t>(d) * RP + 16 * v);
#pragma GCC unroll 8
    for (int j = 0; j < kGroup; ++j) {
      const __m512 b = _mm512_set1_ps(kp[j][d]);
#pragma GCC unroll 2
      for (int v = 0; v < RV; ++v) acc[j * RV + v] = _mm512_fmadd_ps(q[v], b, acc[j * RV + v]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kGroup * RV; ++i) _mm512_storeu_ps(St + static_cast<size_t>(i / RV) * RP + 16 * (i % RV), acc[i]);
}

template <int RV>
QVL_TARGET_AVX512 void pv_tile(const float* St, int RP, int nk, const float* v, int64_t ldv, const int* dd, float* Ot,
                     const float* alpha) {
  __m512 acc[kGroup * RV];
  __m512 a[RV];
#pragma GCC unroll 2
  for (int w = 0; w < RV; ++w) a[w] = _mm512_loadu_ps(alpha + 16 * w);
#pragma GCC unroll 16
  for (int i = 0; i < kGroup * RV; ++i)
    acc[i] = _mm512_mul_ps(_mm512_loadu_ps(Ot + static_cast<size_t>(i / RV) * RP + 16 * (i % RV)), a[i % RV]);
  for (int j = 0; j < nk; ++j) {
    __m512 pj[RV];
#pragma GCC unroll 2
    for (int w = 0; w < RV; ++w) pj[w] = _mm512_loadu_ps(St + static_cast<size_t>(j) * RP + 16 * w);
    const float* vr = v + j * ldv;
#pragma GCC unroll 8
    for (int i = 0; i < kGroup; ++i) {
      const __m512 b = _mm512_set1_ps(vr[dd[i]]);
#pragma GCC unroll 2
      for (int w = 0; w < RV; ++w) acc[i * RV + w] = _mm512_fmadd_ps(pj[w], b, acc[i * RV + w]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kGroup * RV; ++i) _mm512_storeu_ps(Ot + static_cast<size_t>(i / RV) * RP + 16 * (i % RV), acc[i]);
}

// Row-major kernels for items with few rows (decode): head dims along lanes.

inline __mmask16 first_lanes(int n) {
  return static_cast<__mmask16>(n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1);
}

// O[r][d] = alpha[r]·O[r][d] + Σ_j S[r][j]·v[j][d] for R rows, D in chunks of 16·W lanes: each
// chunk's R·W sums stay in registers while every key's V vectors feed all R rows. Lanes past D are
// masked (neither read nor written), so any D works with O rows padded to kRowDimPad.
template <int R, int W, class T>
QVL_TARGET_AVX512 void pv_rows_tile(const float* S, int lds, int nk, const T* v, int64_t ldv, int D, float* O,
                                    int ldo, const float* alpha) {
  for (int d0 = 0; d0 < D; d0 += 16 * W) {
    __mmask16 mk[W];
#pragma GCC unroll 4
    for (int c = 0; c < W; ++c) mk[c] = first_lanes(D - d0 - 16 * c);
    __m512 acc[R * W];
#pragma GCC unroll 32
    for (int i = 0; i < R * W; ++i)
      acc[i] = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk[i % W], O + static_cast<size_t>(i / W) * ldo + d0 + 16 * (i % W)),
                             _mm512_set1_ps(alpha[i / W]));
    for (int j = 0; j < nk; ++j) {
      const T* vr = v + j * ldv + d0;
      attn::prefetch_next_tile(vr, ldv, 16 * W * static_cast<int>(sizeof(T)));
      __m512 vv[W];
#pragma GCC unroll 4
      for (int c = 0; c < W; ++c) vv[c] = load16(vr + 16 * c, mk[c]);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512 b = _mm512_set1_ps(S[static_cast<size_t>(r) * lds + j]);
#pragma GCC unroll 4
        for (int c = 0; c < W; ++c) acc[W * r + c] = _mm512_fmadd_ps(vv[c], b, acc[W * r + c]);
      }
    }
#pragma GCC unroll 32
    for (int i = 0; i < R * W; ++i) _mm512_mask_storeu_ps(O + static_cast<size_t>(i / W) * ldo + d0 + 16 * (i % W), mk[i % W], acc[i]);
  }
}

struct Avx512 {
  static constexpr int kLanes = 16;
  static constexpr int kRowsTarget = 64;
  static constexpr bool kRowPath = true;
  static constexpr int kRowMax = 8;
  static constexpr int kRowDimPad = 48;

  static void qk(const float* Qt, int D, int RP, const float* k, int64_t ldk, int nk, float* St) {
    const float* kp[kGroup];
    for (int j0 = 0; j0 < nk; j0 += kGroup) {
      // Past the last key, repeat it: the extra St rows are scratch nobody reads.
      for (int j = 0; j < kGroup; ++j) kp[j] = k + std::min(j0 + j, nk - 1) * ldk;
      float* s = St + static_cast<size_t>(j0) * RP;
      int r = 0;
      for (; r + 32 <= RP; r += 32) qk_tile<2>(Qt + r, D, RP, kp, s + r);
      if (r < RP) qk_tile<1>(Qt + r, D, RP, kp, s + r);
    }
  }

  QVL_TARGET_AVX512 static void softmax(float* St, int RP, int nk, int32_t kt, const int32_t* lim, bool masked,
                                        float* m, float* l, float* alpha) {
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    for (int r = 0; r < RP; r += 16) {
      const __m512i limv = _mm512_loadu_si512(lim + r);
      const __m512 m_old = _mm512_loadu_ps(m + r);
      __m512 mx = m_old;
      for (int j = 0; j < nk; ++j) {
        __m512 s = _mm512_loadu_ps(St + static_cast<size_t>(j) * RP + r);
        if (masked) s = _mm512_mask_blend_ps(_mm512_cmplt_epi32_mask(_mm512_set1_epi32(kt + j), limv), ninf, s);
        mx = _mm512_max_ps(mx, s);
      }
      // A row with no valid key yet keeps m = -inf; its alpha must stay finite (1) to avoid NaN.
      const __mmask16 empty = _mm512_cmpeq_ps_mask(mx, ninf);
      const __m512 a = _mm512_mask_blend_ps(empty, exp2_ps(_mm512_sub_ps(m_old, mx)), _mm512_set1_ps(1.0f));
      __m512 sum = _mm512_setzero_ps();
      for (int j = 0; j < nk; ++j) {
        float* sp = St + static_cast<size_t>(j) * RP + r;
        __m512 pj = exp2_ps(_mm512_sub_ps(_mm512_loadu_ps(sp), mx));
        if (masked) pj = _mm512_maskz_mov_ps(_mm512_cmplt_epi32_mask(_mm512_set1_epi32(kt + j), limv), pj);
        _mm512_storeu_ps(sp, pj);
        sum = _mm512_add_ps(sum, pj);
      }
      _mm512_storeu_ps(m + r, mx);
      _mm512_storeu_ps(alpha + r, a);
      _mm512_storeu_ps(l + r, _mm512_fmadd_ps(_mm512_loadu_ps(l + r), a, sum));
    }
  }

  // n rows of D bf16 values (row stride ld) as f32 rows of D: a bf16 tile widened once.
  QVL_TARGET_AVX512 static void widen(const uint16_t* src, int64_t ld, int n, int D, float* dst) {
    for (int j = 0; j < n; ++j)
      for (int d = 0; d < D; d += 16)
        _mm512_mask_storeu_ps(dst + static_cast<size_t>(j) * D + d, first_lanes(D - d), load16(src + j * ld + d, first_lanes(D - d)));
  }

  static void pv(const float* St, int RP, int nk, const float* v, int64_t ldv, int D, float* Ot, const float* alpha) {
    int dd[kGroup];
    for (int d0 = 0; d0 < D; d0 += kGroup) {
      // Past the last dimension, repeat it into the spare Ot rows.
      for (int i = 0; i < kGroup; ++i) dd[i] = std::min(d0 + i, D - 1);
      float* o = Ot + static_cast<size_t>(d0) * RP;
      int r = 0;
      for (; r + 32 <= RP; r += 32) pv_tile<2>(St + r, RP, nk, v, ldv, dd, o + r, alpha + r);
      if (r < RP) pv_tile<1>(St + r, RP, nk, v, ldv, dd, o + r, alpha + r);
    }
  }

  template <class T>
  static void qk_rows(const float* Q, int ldq, int D, int R, const T* k, int64_t ldk, int nk, float* S, int lds) {
    switch (R) {
      case 1: return qk_rows_nv<1, T>(Q, ldq, D, k, ldk, nk, S, lds);
      case 2: return qk_rows_nv<2, T>(Q, ldq, D, k, ldk, nk, S, lds);
      case 3: return qk_rows_nv<3, T>(Q, ldq, D, k, ldk, nk, S, lds);
      case 4: return qk_rows_nv<4, T>(Q, ldq, D, k, ldk, nk, S, lds);
      case 5: return qk_rows_nv<5, T>(Q, ldq, D, k, ldk, nk, S, lds);
      case 6: return qk_rows_nv<6, T>(Q, ldq, D, k, ldk, nk, S, lds);
      case 7: return qk_rows_nv<7, T>(Q, ldq, D, k, ldk, nk, S, lds);
      default: return qk_rows_nv<8, T>(Q, ldq, D, k, ldk, nk, S, lds);
    }
  }

  // The common head sizes (64, 128: 4 and 8 vectors) get the D loop unrolled; others run it.
  template <int R, class T>
  static void qk_rows_nv(const float* Q, int ldq, int D, const T* k, int64_t ldk, int nk, float* S, int lds) {
    switch (ldq / 16) {
      case 4: return qk_rows_tile<R, 4, T>(Q, ldq, D, k, ldk, nk, S, lds);
      case 8: return qk_rows_tile<R, 8, T>(Q, ldq, D, k, ldk, nk, S, lds);
      default: return qk_rows_tile<R, 0, T>(Q, ldq, D, k, ldk, nk, S, lds);
    }
  }

  // S[r][j] for R rows against nk keys, 16 keys a block. Every row takes KB keys at a time (KB·R
  // sums in registers), each key vector widened in a register once and fed to all R rows; a
  // block's 16·R sums go through L1 and leave as R horizontal sums of 16 (vm::hsum16_avx512).
  // NV: D's vector count when fixed at compile time, 0 when read from ldq. Against rows in pairs
  // over a bf16 block widened first into L1 (each key vector loaded again per pair, D's loop not
  // unrolled): one decode step's attention at the 2B shape (6 rows, D = 128), one Zen 5 thread,
  // 256 cached keys, bf16 cache: 28.3 -> 25.2 ns per key and kv head.
  template <int R, int NV, class T>
  QVL_TARGET_AVX512 static void qk_rows_tile(const float* Q, int ldq, int D, const T* k, int64_t ldk, int nk, float* S,
                                             int lds) {
    constexpr int KB = R <= 2 ? 8 : R <= 4 ? 4 : 2;
    const int nv = NV > 0 ? NV : ldq / 16;
    const __mmask16 tail = first_lanes(D - 16 * (nv - 1));
    alignas(64) __m512 sums[16 * R];
    const T* kp[16];
    for (int j0 = 0; j0 < nk; j0 += 16) {
      for (int j = 0; j < 16; ++j) {
        kp[j] = k + std::min(j0 + j, nk - 1) * ldk;
        if (j0 + j < nk) attn::prefetch_next_tile(kp[j], ldk, D * static_cast<int>(sizeof(T)));  // not the repeats
      }
      for (int jb = 0; jb < 16; jb += KB) {
        __m512 acc[R * KB];
#pragma GCC unroll 16
        for (int i = 0; i < R * KB; ++i) acc[i] = _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int w = 0; w < nv; ++w) {
          const __mmask16 mk = w == nv - 1 ? tail : static_cast<__mmask16>(0xFFFF);
          __m512 kv[KB];
#pragma GCC unroll 8
          for (int j = 0; j < KB; ++j) kv[j] = load16(kp[jb + j] + 16 * w, mk);
#pragma GCC unroll 8
          for (int r = 0; r < R; ++r) {
            const __m512 q = _mm512_loadu_ps(Q + static_cast<size_t>(r) * ldq + 16 * w);
#pragma GCC unroll 8
            for (int j = 0; j < KB; ++j) acc[r * KB + j] = _mm512_fmadd_ps(q, kv[j], acc[r * KB + j]);
          }
        }
#pragma GCC unroll 16
        for (int i = 0; i < R * KB; ++i) sums[(i / KB) * 16 + jb + i % KB] = acc[i];
      }
      for (int r = 0; r < R; ++r) _mm512_storeu_ps(S + static_cast<size_t>(r) * lds + j0, vm::hsum16_avx512(sums + 16 * r));
    }
  }

  QVL_TARGET_AVX512 static void softmax_rows(float* S, int lds, int R, int nk, int32_t kt, const int32_t* lim,
                                             bool masked, float* m, float* l, float* alpha) {
    const float ninf = -__builtin_inff();
    for (int r = 0; r < R; ++r) {
      float* s = S + static_cast<size_t>(r) * lds;
      const int valid = masked ? std::max(0, std::min(nk, lim[r] - kt)) : nk;
      __m512 mxv = _mm512_set1_ps(ninf);
      for (int j = 0; j < valid; j += 16) mxv = _mm512_mask_max_ps(mxv, first_lanes(valid - j), mxv, _mm512_loadu_ps(s + j));
      const float mx = std::max(m[r], _mm512_reduce_max_ps(mxv));
      // A row with no valid key yet keeps m = -inf; its alpha must stay finite (1) to avoid NaN.
      const float a = mx == ninf ? 1.0f : std::exp2(m[r] - mx);
      const __m512 mxb = _mm512_set1_ps(mx);
      __m512 sum = _mm512_setzero_ps();
      for (int j = 0; j < nk; j += 16) {
        const __mmask16 mk = first_lanes(valid - j);
        const __m512 pj = _mm512_maskz_mov_ps(mk, exp2_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, s + j), mxb)));
        _mm512_storeu_ps(s + j, pj);
        sum = _mm512_add_ps(sum, pj);
      }
      m[r] = mx;
      l[r] = l[r] * a + _mm512_reduce_add_ps(sum);
      alpha[r] = a;
    }
  }

  template <class T>
  static void pv_rows(const float* S, int lds, int R, int nk, const T* v, int64_t ldv, int D, float* O, int ldo,
                      const float* alpha) {
    // Up to 6 rows take D 64 lanes at a time (4·R sums, 4 V vectors and a broadcast fit the 32
    // registers): at D = 128 two full chunks, where 48 lanes at a time made three, the last a third
    // masked off, each broadcasting every S element again. At the 2B decode shape (6 rows), one
    // Sapphire Rapids thread: this kernel 12-15 -> 10-12 ns per key and kv head; a whole step's
    // attention with the cache in L2 46 -> 42-44 (f32), 51 -> 47-48 (bf16); from DRAM at 4096
    // cached tokens f32 127 -> 122-125, bf16 even. 7 and 8 rows keep 48 (3·R sums).
    switch (R) {
      case 1: return pv_rows_tile<1, 4, T>(S, lds, nk, v, ldv, D, O, ldo, alpha);
      case 2: return pv_rows_tile<2, 4, T>(S, lds, nk, v, ldv, D, O, ldo, alpha);
      case 3: return pv_rows_tile<3, 4, T>(S, lds, nk, v, ldv, D, O, ldo, alpha);
      case 4: return pv_rows_tile<4, 4, T>(S, lds, nk, v, ldv, D, O, ldo, alpha);
      case 5: return pv_rows_tile<5, 4, T>(S, lds, nk, v, ldv, D, O, ldo, alpha);
      case 6: return pv_rows_tile<6, 4, T>(S, lds, nk, v, ldv, D, O, ldo, alpha);
      case 7: return pv_rows_tile<7, 3, T>(S, lds, nk, v, ldv, D, O, ldo, alpha);
      default: return pv_rows_tile<8, 3, T>(S, lds, nk, v, ldv, D, O, ldo, alpha);
    }
  }
};

}  // namespace

void attention_avx512(const ops::AttentionParams& p, const ExecContext& ctx) { attn::run<Avx512>(p, ctx.pool()); }

}  // namespace qvl::cpu
