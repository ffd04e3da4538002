// Tiled attention kernels for AVX2: 8 rows per vector, register tiles of 6 keys (or 6 head
// dimensions) × 2 row vectors = 12 accumulators, K and V elements broadcast from memory.
#include <immintrin.h>

#include <algorithm>

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

struct Avx2 {
  static constexpr int kLanes = 8;
  static constexpr int kRowsTarget = 32;
  static constexpr bool kRowPath = false;

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
};

}  // namespace

void attention_avx2(const ops::AttentionParams& p, const ExecContext& ctx) { attn::run<Avx2>(p, ctx.pool()); }

}  // namespace qvl::cpu
