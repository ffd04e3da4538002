// The plain reference: one dot product per output, accumulated in double so that it is the
// exact answer to well within the f32 tolerance the other variants are held to.
//
// Dense formats: f32 activations times the weights read back through the format's dequantizer.
// Int8Dot formats (q8, q4): the activations are quantized as ops/quant_act.h says (the op's
// defined arithmetic, shared by every variant), then each block's integer dot is exact and the
// block scale products are summed in double. The error of that arithmetic against the exact
// product with the dequantized weights is bounded separately (tests/parity_qmatmul.cpp).
#include <vector>

#include "backends/cpu/matmul_cpu.h"
#include "core/weight_quant.h"
#include "ops/quant_act.h"

namespace qvl::cpu {

namespace {

void dense_ref(const ops::MatmulParams& p) {
  std::vector<float> w(static_cast<size_t>(p.K));
  for (int64_t n = 0; n < p.N; ++n) {
    weight_format_traits(p.w.format).dequantize_row(p.w, n, 0, p.K, w.data());
    for (int64_t m = 0; m < p.M; ++m) {
      double acc = p.bias ? p.bias[n] : 0.0;
      for (int64_t k = 0; k < p.K; ++k) acc += static_cast<double>(p.x[m * p.ldx + k]) * w[k];
      p.y[m * p.ldy + n] = static_cast<float>(acc);
    }
  }
}

// Row n's integer codes and per-element zero points (q8: the +128 bias; q4: its group's zero).
void weight_codes(const ops::MatmulParams& p, int64_t n, std::vector<int32_t>& code, std::vector<int32_t>& zero) {
  const int64_t P = n / kQPanelRows, i = n % kQPanelRows;
  const uint8_t* codes = q_panel_codes(p.w, P);
  for (int64_t k = 0; k < p.K; ++k) {
    switch (p.w.format) {
      case WeightFormat::Q8: code[k] = q8_panel_code(codes, i, k), zero[k] = 128; break;
      case WeightFormat::Q4:
        code[k] = q4_panel_code(codes, i, k), zero[k] = q4_panel_zero(q_panel_zeros(p.w, P), i, k / p.w.group);
        break;
      case WeightFormat::F32:
      case WeightFormat::F16:
      case WeightFormat::BF16:
      case WeightFormat::F8: fail(ErrorCode::Native, "matmul_ref: a dense format has no integer codes");
    }
  }
}

void int8dot_ref(const ops::MatmulParams& p) {
  const int64_t blocks = p.K / kQuantBlock;
  std::vector<int8_t> xq(static_cast<size_t>(p.M * p.K));
  std::vector<float> xd(static_cast<size_t>(p.M * blocks));
  std::vector<int32_t> xs(static_cast<size_t>(p.M * blocks));
  for (int64_t m = 0; m < p.M; ++m)
    for (int64_t b = 0; b < blocks; ++b)
      ops::quantize_act_block(p.x + m * p.ldx + b * kQuantBlock, &xq[m * p.K + b * kQuantBlock], &xd[m * blocks + b],
                              &xs[m * blocks + b]);
  std::vector<int32_t> code(static_cast<size_t>(p.K)), zero(static_cast<size_t>(p.K));
  for (int64_t n = 0; n < p.N; ++n) {
    weight_codes(p, n, code, zero);
    const uint16_t* sw = q_panel_scales(p.w, n / kQPanelRows);
    for (int64_t m = 0; m < p.M; ++m) {
      double acc = p.bias ? p.bias[n] : 0.0;
      for (int64_t b = 0; b < blocks; ++b) {
        int64_t dot = 0;
        for (int64_t i = b * kQuantBlock; i < (b + 1) * kQuantBlock; ++i) dot += (code[i] - zero[i]) * int64_t{xq[m * p.K + i]};
        acc += static_cast<double>(q_panel_scale(sw, n % kQPanelRows, b * kQuantBlock / p.w.group)) * xd[m * blocks + b] *
               static_cast<double>(dot);
      }
      p.y[m * p.ldy + n] = static_cast<float>(acc);
    }
  }
}

}  // namespace

void matmul_ref(const ops::MatmulParams& p, const ExecContext&) {
  switch (weight_format_traits(p.w.format).kernel) {
    case WeightKernel::DenseF32:
    case WeightKernel::Fp8Block: return dense_ref(p);  // f32 activations, weights through dequantize_row
    case WeightKernel::Int8Dot: return int8dot_ref(p);
  }
}

}  // namespace qvl::cpu
