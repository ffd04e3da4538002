// Plain MoE: routing and every expert product in double, token by token, slot by slot, no
// grouping. Single-threaded on purpose: this is the yardstick for the grouped variant.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "ops/moe.h"

namespace qvl::cpu {

namespace {

double weight_at(const void* w, DType dt, int64_t i) {
  switch (dt) {
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(w)[i]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(w)[i]);
    default: return static_cast<const float*>(w)[i];
  }
}

}  // namespace

void moe_ref(const ops::MoeParams& p, ThreadPool& /*pool*/) {
  const int64_t E = p.E, k = p.k, H = p.H, I = p.I;
  std::vector<int64_t> order(static_cast<size_t>(E));
  std::vector<double> prob(static_cast<size_t>(E)), gu(static_cast<size_t>(2 * I)), h(static_cast<size_t>(I)),
      acc(static_cast<size_t>(H));
  for (int64_t t = 0; t < p.T; ++t) {
    const float* lg = p.router_logits + t * p.ld_logits;
    const float* x = p.x + t * p.ldx;

    double mx = -INFINITY;
    for (int64_t e = 0; e < E; ++e) mx = std::max(mx, static_cast<double>(lg[e]));
    double z = 0;
    for (int64_t e = 0; e < E; ++e) z += (prob[e] = std::exp(lg[e] - mx));
    for (int64_t e = 0; e < E; ++e) prob[e] /= z;
    std::iota(order.begin(), order.end(), int64_t{0});
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return lg[a] > lg[b]; });
    double sel = 0;
    for (int64_t j = 0; j < k; ++j) sel += prob[order[j]];

    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t e = order[j];
      const double w = p.norm_topk_prob ? prob[e] / sel : prob[e];
      if (p.topk_ids) p.topk_ids[t * k + j] = static_cast<int32_t>(e);
      if (p.topk_weights) p.topk_weights[t * k + j] = static_cast<float>(w);
      // Packed layout: gate_up [E, 2I, H], down [E, H, I].
      for (int64_t r = 0; r < 2 * I; ++r) {
        double s = 0;
        for (int64_t c = 0; c < H; ++c) s += x[c] * weight_at(p.gate_up, p.w_dtype, (e * 2 * I + r) * H + c);
        gu[r] = s;
      }
      for (int64_t i = 0; i < I; ++i) h[i] = gu[i] / (1.0 + std::exp(-gu[i])) * gu[I + i];
      for (int64_t o = 0; o < H; ++o) {
        double s = 0;
        for (int64_t i = 0; i < I; ++i) s += h[i] * weight_at(p.down, p.w_dtype, (e * H + o) * I + i);
        acc[o] += w * s;
      }
    }
    float* out = p.out + t * p.ldo;
    for (int64_t o = 0; o < H; ++o) out[o] = static_cast<float>(acc[o]);
  }
}

}  // namespace qvl::cpu
