// attention_bf16's plain reference: q, k, v rounded to bf16 as the kernel rounds them, scores in
// double, the exact two-pass softmax in base 2 with the maximum exponent rounded up to an integer
// (weights 2^(y − ceil max y), y = score · log2 e), each weight rounded to bf16 before it
// multiplies v (as the kernel feeds it to the tiles), the sum taken over the rounded weights.
// With an integer reference the rounded weights do not depend on which integer it is (rounding
// commutes with scaling by 2^n), which is what lets the kernel use a running maximum per key block.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/matmul_bf16_cpu.h"
#include "core/error.h"
#include "ops/attention.h"

namespace qvl::cpu {

namespace {
constexpr double kLog2e = 1.4426950408889634;
}  // namespace

void attention_bf16_ref(const ops::AttentionParams& p, const ExecContext&) {
  const int64_t D = p.D, group = p.Hq / p.Hkv;
  std::vector<double> w, acc(static_cast<size_t>(D));
  std::vector<float> q(static_cast<size_t>(D)), kb, vb;
  for (int64_t s = 0; s < p.n_segments; ++s) {
    const ops::AttentionSegment& g = p.segments[s];
    const int64_t qlen = g.q_end - g.q_start, klen = g.k_end - g.k_start;
    w.resize(static_cast<size_t>(klen));
    kb.resize(static_cast<size_t>(klen * D));
    vb.resize(static_cast<size_t>(klen * D));
    for (int64_t h = 0; h < p.Hq; ++h) {
      const int64_t hk = h / group;
      ops::visit_kv_type(p.kv_dtype, [&](auto t) {
        using T = decltype(t);
        for (int64_t j = 0; j < klen; ++j) {
          for (int64_t d = 0; d < D; ++d) {
            kb[j * D + d] = bf16_rounded(ops::kv_widen(ops::segment_keys<T>(p, g)[j * p.ldk + hk * D + d]));
            vb[j * D + d] = bf16_rounded(ops::kv_widen(ops::segment_values<T>(p, g)[j * p.ldv + hk * D + d]));
          }
        }
      });
      for (int64_t i = 0; i < qlen; ++i) {
        for (int64_t d = 0; d < D; ++d) q[d] = bf16_rounded(p.q[(g.q_start + i) * p.ldq + h * D + d]);
        float* o = p.out + (g.q_start + i) * p.ldo + h * D;
        // Causal: query i is the segment's key i + klen - qlen and sees the keys up to it.
        const int64_t seen = p.causal ? std::min(klen, i + klen - qlen + 1) : klen;
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < seen; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(q[d]) * kb[j * D + d];
          w[j] = dot * p.scale * kLog2e;
          if (w[j] > mx) mx = w[j];
        }
        mx = std::ceil(mx);
        double sum = 0;
        for (int64_t d = 0; d < D; ++d) acc[d] = 0;
        for (int64_t j = 0; j < seen; ++j) {
          const double pw = bf16_rounded(static_cast<float>(std::exp2(w[j] - mx)));
          sum += pw;
          for (int64_t d = 0; d < D; ++d) acc[d] += pw * vb[j * D + d];
        }
        for (int64_t d = 0; d < D; ++d) o[d] = seen > 0 ? static_cast<float>(acc[d] / sum) : 0.0f;
      }
    }
  }
}

}  // namespace qvl::cpu
