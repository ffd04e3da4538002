// Int8Dot matmul in plain C++ (any CPU): each weight row's blocks are decoded to codes once and
// dotted with every activation row of the tile.
#include <cstdint>

#include "backends/cpu/matmul_q.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

namespace {

// Codes of block b of row `row` (q8: the stored biased byte; q4: the nibble).
inline void block_codes(WeightFormat f, const uint8_t* row, int64_t ld, int64_t b, uint8_t* out) {
  if (f == WeightFormat::Q8) {
    for (int i = 0; i < kQuantBlock; ++i) out[i] = row[b * kQuantBlock + i];
    return;
  }
  const int64_t paired = ld / kQuantBlock / 2 * 2;
  if (b < paired) {
    const uint8_t* src = row + b / 2 * 32;
    const int shift = b % 2 ? 4 : 0;
    for (int i = 0; i < kQuantBlock; ++i) out[i] = static_cast<uint8_t>((src[i] >> shift) & 15);
  } else {
    const uint8_t* src = row + paired / 2 * 32;
    for (int i = 0; i < 16; ++i) out[i] = src[i] & 15, out[16 + i] = static_cast<uint8_t>(src[i] >> 4);
  }
}

void quantize(const float* x, int64_t m, QActs& a) { quantize_row_scalar(x, m, a); }

void tile(const ops::MatmulParams& p, const QActs& a, int64_t m0, int rows, int64_t n0, int64_t n1) {
  uint8_t codes[kQuantBlock];
  const int64_t per_group = a.group / kQuantBlock;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = static_cast<const uint8_t*>(p.w.row(n));
    const uint16_t* sw = q_row_scales(p.w, n);
    float acc[4] = {0, 0, 0, 0};
    float s = 0.0f;
    for (int64_t b = 0; b < a.blocks; ++b) {
      block_codes(p.w.format, row, p.w.ld, b, codes);
      if (b % per_group == 0) s = q_scale(sw[b / per_group]);  // one conversion per group
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

void matmul_q_generic(const ops::MatmulParams& p, const ExecContext& ctx) { run_qmatmul(p, ctx.pool(), kKernels); }

}  // namespace qvl::cpu
