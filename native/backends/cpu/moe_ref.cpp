// Plain MoE: routing and every expert product in double, token by token, slot by slot, no
// grouping. Single-threaded on purpose: this is the yardstick for the grouped variant.
// Expert weights in an Int8Dot format (q8, q4) get the matmul op's defined arithmetic: the
// product's input (x for gate/up, the SwiGLU output for down) is first quantized per block of 32
// as ops/quant_act.h says; its dequantized value times the dequantized weight, summed in double,
// is the integer dot of the matmul reference up to double rounding.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/weight_quant.h"
#include "ops/moe.h"
#include "ops/quant_act.h"

namespace qvl::cpu {

namespace {

// Row r of expert e's [rows, cols] matrix as f32, through the format's own dequantizer.
void expert_row(const WeightRef& stacked, int64_t e, int64_t rows, int64_t r, std::vector<float>& out) {
  const WeightRef w = ops::moe_expert_weight(stacked, e, rows);
  out.resize(static_cast<size_t>(w.in));
  weight_format_traits(w.format).dequantize_row(w, r, 0, w.in, out.data());
}

// The input a matmul with weights in format f multiplies: v itself, or for Int8Dot formats v
// quantized per block of 32 and read back (the block's codes times its scale).
void matmul_input(WeightFormat f, const float* v, int64_t n, std::vector<double>& out) {
  out.assign(v, v + n);
  if (weight_format_traits(f).kernel != WeightKernel::Int8Dot) return;
  int8_t q[kQuantBlock];
  for (int64_t b = 0; b + kQuantBlock <= n; b += kQuantBlock) {
    float d;
    int32_t sum;
    ops::quantize_act_block(v + b, q, &d, &sum);
    for (int64_t i = 0; i < kQuantBlock; ++i) out[b + i] = static_cast<double>(d) * q[i];
  }
}

}  // namespace

void moe_ref(const ops::MoeParams& p, const ExecContext& /*ctx*/) {
  const int64_t E = p.E, k = p.k, H = p.H, I = p.I;
  std::vector<int64_t> order(static_cast<size_t>(E));
  std::vector<double> prob(static_cast<size_t>(E)), gu(static_cast<size_t>(2 * I)), acc(static_cast<size_t>(H)), xin, hin;
  std::vector<float> wrow, h(static_cast<size_t>(I));
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
      // Stacked layout: gate_up [E·2I, H], down [E·H, I].
      matmul_input(p.gate_up.format, x, H, xin);
      for (int64_t r = 0; r < 2 * I; ++r) {
        expert_row(p.gate_up, e, 2 * I, r, wrow);
        double s = 0;
        for (int64_t c = 0; c < H; ++c) s += xin[c] * wrow[c];
        gu[r] = s;
      }
      for (int64_t i = 0; i < I; ++i) h[i] = static_cast<float>(gu[i] / (1.0 + std::exp(-gu[i])) * gu[I + i]);
      matmul_input(p.down.format, h.data(), I, hin);
      for (int64_t o = 0; o < H; ++o) {
        expert_row(p.down, e, H, o, wrow);
        double s = 0;
        for (int64_t i = 0; i < I; ++i) s += hin[i] * wrow[i];
        acc[o] += w * s;
      }
    }
    float* out = p.out + t * p.ldo;
    for (int64_t o = 0; o < H; ++o) out[o] = static_cast<float>(acc[o]);
  }
}

}  // namespace qvl::cpu
