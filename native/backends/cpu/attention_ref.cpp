// Plain attention: every score in double, an ordinary two-pass softmax. Single-threaded on
// purpose: this is the yardstick the tiled kernels are measured against. bf16 keys and values are
// widened element by element (exactly), as the kernels widen them.
#include <cmath>
#include <limits>
#include <vector>

#include "ops/attention.h"

namespace qvl::cpu {
namespace {

template <class T>
void attention_ref_kv(const ops::AttentionParams& p) {
  const int64_t D = p.D, group = p.Hq / p.Hkv;
  std::vector<double> w, acc(static_cast<size_t>(D));
  for (int64_t s = 0; s < p.n_segments; ++s) {
    const ops::AttentionSegment& g = p.segments[s];
    const int64_t qlen = g.q_end - g.q_start, klen = g.k_end - g.k_start;
    w.resize(static_cast<size_t>(klen));
    for (int64_t i = 0; i < qlen; ++i) {
      // Keys this query sees: all of them, or under causal the first i + (klen - qlen) + 1.
      const int64_t nk = p.causal ? i + (klen - qlen) + 1 : klen;
      for (int64_t h = 0; h < p.Hq; ++h) {
        const float* qr = p.q + (g.q_start + i) * p.ldq + h * D;
        float* o = p.out + (g.q_start + i) * p.ldo + h * D;
        const int64_t hk = h / group;
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < nk; ++j) {
          const T* kr = ops::segment_keys<T>(p, g) + j * p.ldk + hk * D;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(qr[d]) * ops::kv_widen(kr[d]);
          w[j] = dot * p.scale;
          if (w[j] > mx) mx = w[j];
        }
        double sum = 0;
        for (int64_t j = 0; j < nk; ++j) sum += (w[j] = std::exp(w[j] - mx));
        for (int64_t d = 0; d < D; ++d) acc[d] = 0;
        for (int64_t j = 0; j < nk; ++j) {
          const T* vr = ops::segment_values<T>(p, g) + j * p.ldv + hk * D;
          for (int64_t d = 0; d < D; ++d) acc[d] += w[j] * ops::kv_widen(vr[d]);
        }
        for (int64_t d = 0; d < D; ++d) o[d] = nk > 0 ? static_cast<float>(acc[d] / sum) : 0.0f;
      }
    }
  }
}

}  // namespace

void attention_ref(const ops::AttentionParams& p, const ExecContext& /*ctx*/) {
  ops::visit_kv_type(p.kv_dtype, [&](auto t) { attention_ref_kv<decltype(t)>(p); });
}

}  // namespace qvl::cpu
