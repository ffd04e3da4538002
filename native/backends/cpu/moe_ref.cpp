// Plain MoE: routing and every expert product in double, token by token, slot by slot, no
// grouping. Single-threaded on purpose: this is the yardstick for the grouped variant.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "ops/moe.h"

namespace qvl::cpu {

namespace {

// Row r of expert e's [rows, cols] matrix as f32, through the format's own dequantizer.
void expert_row(const ops::MoeParams& p, const void* base, int64_t e, int64_t rows, int64_t cols, int64_t r,
                std::vector<float>& out) {
  const WeightRef w = ops::moe_expert_weight(p.w_format, base, e, rows, cols);
  out.resize(static_cast<size_t>(cols));
  weight_format_traits(p.w_format).dequantize_row(w, r, 0, cols, out.data());
}

}  // namespace

void moe_ref(const ops::MoeParams& p, const ExecContext& /*ctx*/) {
  const int64_t E = p.E, k = p.k, H = p.H, I = p.I;
  std::vector<int64_t> order(static_cast<size_t>(E));
  std::vector<double> prob(static_cast<size_t>(E)), gu(static_cast<size_t>(2 * I)), h(static_cast<size_t>(I)),
      acc(static_cast<size_t>(H));
  std::vector<float> wrow;
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
        expert_row(p, p.gate_up, e, 2 * I, H, r, wrow);
        double s = 0;
        for (int64_t c = 0; c < H; ++c) s += static_cast<double>(x[c]) * wrow[c];
        gu[r] = s;
      }
      for (int64_t i = 0; i < I; ++i) h[i] = gu[i] / (1.0 + std::exp(-gu[i])) * gu[I + i];
      for (int64_t o = 0; o < H; ++o) {
        expert_row(p, p.down, e, H, I, o, wrow);
        double s = 0;
        for (int64_t i = 0; i < I; ++i) s += h[i] * wrow[i];
        acc[o] += w * s;
      }
    }
    float* out = p.out + t * p.ldo;
    for (int64_t o = 0; o < H; ++o) out[o] = static_cast<float>(acc[o]);
  }
}

}  // namespace qvl::cpu
