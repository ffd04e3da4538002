// The bf16 matmul's plain reference: x and w rounded to bf16 exactly as the kernels round them
// (w read through its format's dequantize_row first: q8, q4 and f8 rows become f32 rows),
// every product (exact in f32: 8-bit by 8-bit significands) summed in double. What remains
// between it and a kernel is only the kernel's f32 accumulation order.
#include <cstring>
#include <vector>

#include "backends/cpu/matmul_bf16_cpu.h"

namespace qvl::cpu {

uint16_t bf16_round(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);  // zero, subnormal
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN stays quiet
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float bf16_rounded(float f) {
  const uint32_t u = static_cast<uint32_t>(bf16_round(f)) << 16;
  float out;
  std::memcpy(&out, &u, 4);
  return out;
}

void matmul_bf16_ref(const ops::MatmulParams& p, const ExecContext&) {
  std::vector<float> w(static_cast<size_t>(p.K));
  std::vector<float> x(static_cast<size_t>(p.M * p.K));
  for (int64_t m = 0; m < p.M; ++m)
    for (int64_t k = 0; k < p.K; ++k) x[m * p.K + k] = bf16_rounded(p.x[m * p.ldx + k]);
  for (int64_t n = 0; n < p.N; ++n) {
    weight_format_traits(p.w.format).dequantize_row(p.w, n, 0, p.K, w.data());
    for (auto& v : w) v = bf16_rounded(v);
    for (int64_t m = 0; m < p.M; ++m) {
      double acc = 0;
      for (int64_t k = 0; k < p.K; ++k) acc += static_cast<double>(x[m * p.K + k]) * w[k];
      p.y[m * p.ldy + n] = static_cast<float>(acc + (p.bias ? p.bias[n] : 0.0));
    }
  }
}

}  // namespace qvl::cpu
