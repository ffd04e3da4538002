// The plain reference: one dot product per output, accumulated in double so that it is the
// exact answer to well within the f32 tolerance the other variants are held to.
#include <vector>

#include "backends/cpu/matmul_cpu.h"

namespace qvl::cpu {

namespace {

// Weight row n as f32, through the format's own dequantizer: the reference reads every format
// the table lists, so each new format's kernels have a yardstick from its first day.
void weight_row(const ops::MatmulParams& p, int64_t n, std::vector<float>& out) {
  out.resize(static_cast<size_t>(p.K));
  weight_format_traits(p.w.format).dequantize_row(p.w, n, 0, p.K, out.data());
}

}  // namespace

void matmul_ref(const ops::MatmulParams& p, const ExecContext&) {
  std::vector<float> w;
  for (int64_t n = 0; n < p.N; ++n) {
    weight_row(p, n, w);
    for (int64_t m = 0; m < p.M; ++m) {
      double acc = p.bias ? p.bias[n] : 0.0;
      for (int64_t k = 0; k < p.K; ++k) acc += static_cast<double>(p.x[m * p.ldx + k]) * w[k];
      p.y[m * p.ldy + n] = static_cast<float>(acc);
    }
  }
}

}  // namespace qvl::cpu
