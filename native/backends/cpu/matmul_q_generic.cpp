// Int8Dot matmul in plain C++ (any CPU): each weight row's blocks are gathered from its panel
// (core/weight_quant.h) once and dotted with every activation row of the tile.
#include <cstdint>

#include "backends/cpu/matmul_q.h"
#include "core/weight_quant.h"
#include "ops/quant_act.h"

namespace qvl::cpu {

namespace {

// Codes of block b of row i of a panel (q8: the stored biased byte; q4: the nibble).
inline void block_codes(WeightFormat f, const uint8_t* panel, int64_t i, int64_t b, uint8_t* out) {
  for (int64_t k = 0; k < kQuantBlock; ++k)
    out[k] = f == WeightFormat::Q8 ? q8_panel_code(panel, i, b * kQuantBlock + k) : q4_panel_code(panel, i, b * kQuantBlock + k);
}

// The reference activation quantizer for one row (ops/quant_act.h), with its group sums.
void quantize(const float* x, int64_t m, QActs& a) {
  int8_t* q = a.q + m * a.K;
  float* d = a.d + m * a.blocks;
  float* gs = a.gs + m * a.groups;
  const int64_t per_group = a.group / kQuantBlock;
  for (int64_t g = 0; g < a.groups; ++g) {
    float s = 0.0f;
    for (int64_t b = g * per_group; b < (g + 1) * per_group; ++b) {
      int32_t sum = 0;
      ops::quantize_act_block(x + b * kQuantBlock, q + b * kQuantBlock, d + b, &sum);
      s += d[b] * static_cast<float>(sum);
    }
    gs[g] = s;
  }
}

// The zero-point term Σ_g s_w·z·gs of output (m, n) (q8: z = the +128 bias).
float zero_term(const ops::MatmulParams& p, const QActs& a, int64_t m, int64_t n) {
  const int64_t P = n / kQPanelRows, i = n % kQPanelRows;
  const uint16_t* sw = q_panel_scales(p.w, P);
  const float* gs = a.gs + m * a.groups;
  float acc = 0.0f;
  switch (p.w.format) {
    case WeightFormat::Q8:
      for (int64_t g = 0; g < a.groups; ++g) acc += q_panel_scale(sw, i, g) * gs[g];
      return 128.0f * acc;
    case WeightFormat::Q4: {
      const uint8_t* z = q_panel_zeros(p.w, P);
      for (int64_t g = 0; g < a.groups; ++g) acc += q_panel_scale(sw, i, g) * static_cast<float>(q4_panel_zero(z, i, g)) * gs[g];
      return acc;
    }
    case WeightFormat::F32:
    case WeightFormat::F16:
    case WeightFormat::BF16:
    case WeightFormat::F8: break;
  }
  return 0.0f;
}

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

void matmul_q_generic(const ops::MatmulParams& p, const ExecContext& ctx) { run_qmatmul(p, ctx, kKernels); }

}  // namespace qvl::cpu
