// The plain reference: one dot product per output, accumulated in double so that it is the
// exact answer to well within the f32 tolerance the other variants are held to.
#include "backends/cpu/matmul_cpu.h"

namespace qvl::cpu {

namespace {

double weight(const ops::MatmulParams& p, int64_t n, int64_t k) {
  const int64_t i = n * p.ldw + k;
  switch (p.w_dtype) {
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(p.w)[i]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(p.w)[i]);
    default: return static_cast<const float*>(p.w)[i];
  }
}

}  // namespace

void matmul_ref(const ops::MatmulParams& p, ThreadPool&) {
  for (int64_t m = 0; m < p.M; ++m) {
    for (int64_t n = 0; n < p.N; ++n) {
      double acc = p.bias ? p.bias[n] : 0.0;
      for (int64_t k = 0; k < p.K; ++k) acc += static_cast<double>(p.x[m * p.ldx + k]) * weight(p, n, k);
      p.y[m * p.ldy + n] = static_cast<float>(acc);
    }
  }
}

}  // namespace qvl::cpu
