// Tiled attention in portable C++ (whatever the baseline target auto-vectorises): the fallback
// for CPUs without AVX2, and a check that the tiling itself is right independent of intrinsics.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/attention_tiled.h"

namespace qvl::cpu {
namespace {

typedef float f4 __attribute__((vector_size(16)));

inline f4 load4(const float* p) {
  f4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store4(float* p, f4 v) { std::memcpy(p, &v, sizeof v); }

struct Generic {
  static constexpr int kLanes = 8;
  static constexpr int kRowsTarget = 32;
  static constexpr bool kRowPath = false;

  // Register tiles of 4 keys (or head dims) × 8 rows in 4-wide vectors (GCC/Clang vector
  // extensions: SSE on x86-64, NEON on arm64), so the compiler needs no auto-vectoriser luck.
  static void qk(const float* Qt, int D, int RP, const float* k, int64_t ldk, int nk, float* St) {
    const float* kp[4];
    for (int j0 = 0; j0 < nk; j0 += 4) {
      for (int j = 0; j < 4; ++j) kp[j] = k + std::min(j0 + j, nk - 1) * ldk;
      for (int r0 = 0; r0 < RP; r0 += 8) {
        f4 a0 = {}, a1 = {}, a2 = {}, a3 = {}, b0 = {}, b1 = {}, b2 = {}, b3 = {};
        for (int d = 0; d < D; ++d) {
          const float* q = Qt + static_cast<size_t>(d) * RP + r0;
          const f4 qa = load4(q), qb = load4(q + 4);
          const float k0 = kp[0][d], k1 = kp[1][d], k2 = kp[2][d], k3 = kp[3][d];
          a0 += qa * k0, b0 += qb * k0;
          a1 += qa * k1, b1 += qb * k1;
          a2 += qa * k2, b2 += qb * k2;
          a3 += qa * k3, b3 += qb * k3;
        }
        float* s = St + static_cast<size_t>(j0) * RP + r0;
        store4(s, a0), store4(s + 4, b0), s += RP;
        store4(s, a1), store4(s + 4, b1), s += RP;
        store4(s, a2), store4(s + 4, b2), s += RP;
        store4(s, a3), store4(s + 4, b3);
      }
    }
  }

  static void softmax(float* St, int RP, int nk, int32_t kt, const int32_t* lim, bool masked, float* m, float* l,
                      float* alpha) {
    const float ninf = -std::numeric_limits<float>::infinity();
    for (int r = 0; r < RP; ++r) {
      const int valid = masked ? std::max(0, std::min(nk, lim[r] - kt)) : nk;
      float mx = m[r];
      for (int j = 0; j < valid; ++j) mx = std::max(mx, St[static_cast<size_t>(j) * RP + r]);
      alpha[r] = mx == ninf ? 1.0f : std::exp2(m[r] - mx);
      float sum = 0;
      for (int j = 0; j < nk; ++j) {
        float& s = St[static_cast<size_t>(j) * RP + r];
        s = j < valid ? std::exp2(s - mx) : 0.0f;
        sum += s;
      }
      m[r] = mx;
      l[r] = l[r] * alpha[r] + sum;
    }
  }

  // n rows of D bf16 values (row stride ld) as f32 rows of D: a bf16 tile widened once.
  static void widen(const uint16_t* src, int64_t ld, int n, int D, float* dst) {
    for (int j = 0; j < n; ++j)
      for (int d = 0; d < D; ++d) dst[static_cast<size_t>(j) * D + d] = bf16_to_f32(src[j * ld + d]);
  }

  static void pv(const float* St, int RP, int nk, const float* v, int64_t ldv, int D, float* Ot, const float* alpha) {
    int dd[4];
    for (int d0 = 0; d0 < D; d0 += 4) {
      for (int i = 0; i < 4; ++i) dd[i] = std::min(d0 + i, D - 1);
      for (int r0 = 0; r0 < RP; r0 += 8) {
        float* o = Ot + static_cast<size_t>(d0) * RP + r0;
        const f4 ma = load4(alpha + r0), mb = load4(alpha + r0 + 4);
        f4 a0 = load4(o) * ma, b0 = load4(o + 4) * mb;
        f4 a1 = load4(o + RP) * ma, b1 = load4(o + RP + 4) * mb;
        f4 a2 = load4(o + 2 * RP) * ma, b2 = load4(o + 2 * RP + 4) * mb;
        f4 a3 = load4(o + 3 * RP) * ma, b3 = load4(o + 3 * RP + 4) * mb;
        for (int j = 0; j < nk; ++j) {
          const float* pj = St + static_cast<size_t>(j) * RP + r0;
          const f4 pa = load4(pj), pb = load4(pj + 4);
          const float* vr = v + j * ldv;
          const float v0 = vr[dd[0]], v1 = vr[dd[1]], v2 = vr[dd[2]], v3 = vr[dd[3]];
          a0 += pa * v0, b0 += pb * v0;
          a1 += pa * v1, b1 += pb * v1;
          a2 += pa * v2, b2 += pb * v2;
          a3 += pa * v3, b3 += pb * v3;
        }
        store4(o, a0), store4(o + 4, b0), o += RP;
        store4(o, a1), store4(o + 4, b1), o += RP;
        store4(o, a2), store4(o + 4, b2), o += RP;
        store4(o, a3), store4(o + 4, b3);
      }
    }
  }
};

}  // namespace

void attention_generic(const ops::AttentionParams& p, const ExecContext& ctx) { attn::run<Generic>(p, ctx.pool()); }

}  // namespace qvl::cpu
