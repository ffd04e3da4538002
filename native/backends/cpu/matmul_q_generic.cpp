// Int8Dot matmul in plain C++ (any CPU): each weight row's blocks are gathered from its panel
// (core/weight_quant.h) once and dotted with every activation row of the tile.
#include <cstdint>

#include "backends/cpu/matmul_q.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

namespace {

// Codes of block b of row i of a panel (q8: the stored biased byte; q4: the nibble).
inline void block_codes(WeightFormat f, const uint8_t* panel, int64_t i, int64_t b, uint8_t* out) {
  for (int64_t k = 0; k < kQuantBlock; ++k)
    out[k] = f == WeightFormat::Q8 ? q8_panel_code(panel, i, b * kQuantBlock + k) : q4_panel_code(panel, i, b * kQuantBlock + k);
}

void quantize(const float* x, int64_t m, QActs& a) { quantize_row_scalar(x, m, a); }

void tile(const ops::MatmulParams& p, const QActs& a, int64_t m0, int rows, int64_t n0, int64_t n1) {
  uint8_t codes[kQuantBlock];
  const int64_t per_group = a.group / kQuantBlock;
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t P = n / kQPanelRows, i = n % kQPanelRows;
    const uint8_t* panel = q_panel_codes(p.w, P);
    const uint16_t* sw = q_panel_scales(p.w, P);
    float acc[4] = {0, 0, 0, 0};
    float s = 0.0f;
    for (int64_t b = 0; b < a.blocks; ++b) {
      block_codes(p.w.format, panel, i, b, codes);
      if (b % per_group == 0) s = q_panel_scale(sw, i, b / per_group);  // one conversion per group
      for (int r = 0; r < rows; ++r) {
        const int8_t* xq = a.q + (m0 + r) * a.K + b * kQuantBlock;
        int32_t dot = 0;
        for (int i = 0; i < kQuantBlock; ++i) dot += static_cast<int32_t>(codes[i]) * xq[i];
        acc[r] += s * a.d[(m0 + r) * a.blocks + b] * static_cast<float>(dot);
      }
    }
    for (int r = 0; r < rows; ++r)
      p.y[(m0 + r) * p.ldy + n] = (p.bias ? p.bias[n] : 0.0f) + acc[r] - zero_term(p, a, m0 + r, n);
  }
}

const QKernels kKernels = {quantize, tile};

}  // namespace

const QKernels& q_generic_kernels() { return kKernels; }

void matmul_q_generic(const ops::MatmulParams& p, const ExecContext& ctx) { run_qmatmul(p, ctx.pool(), kKernels); }

}  // namespace qvl::cpu
