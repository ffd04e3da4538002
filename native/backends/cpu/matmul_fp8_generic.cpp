// Portable fp8 rows: e4m3 bytes decoded through a 256-entry table, kLanes partial sums per block
// (the form GCC vectorises), each 128-block's sum times its scale.
#include "backends/cpu/matmul_fp8.h"

namespace qvl::cpu {

namespace {

constexpr int kLanes = 8;

struct Table {
  float v[256];
  Table() {
    for (int b = 0; b < 256; ++b) v[b] = f8e4m3_to_f32(static_cast<uint8_t>(b));
  }
};

float block_dot(const float* t, const uint8_t* w, const float* x, int64_t len) {
  float acc[kLanes] = {};
  const int64_t full = len - len % kLanes;
  for (int64_t k = 0; k < full; k += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += x[k + l] * t[w[k + l]];
  for (int64_t k = full; k < len; ++k) acc[k - full] += x[k] * t[w[k]];
  float s = 0.0f;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

void rows(const ops::MatmulParams& p, int64_t m0, int count, int64_t n0, int64_t n1) {
  static const Table table;
  const int64_t blocks_per_row = p.w.ld / kFp8Block;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* w = static_cast<const uint8_t*>(p.w.data) + n * p.w.ld;
    const float* s = static_cast<const float*>(p.w.scales) + n * blocks_per_row;
    for (int i = 0; i < count; ++i) {
      const float* x = p.x + (m0 + i) * p.ldx;
      float acc = 0.0f;
      for (int64_t k0 = 0, b = 0; k0 < p.K; k0 += kFp8Block, ++b) {
        const int64_t len = p.K - k0 < kFp8Block ? p.K - k0 : kFp8Block;
        acc += block_dot(table.v, w + k0, x + k0, len) * s[b];
      }
      p.y[(m0 + i) * p.ldy + n] = (p.bias ? p.bias[n] : 0.0f) + acc;
    }
  }
}

const Fp8Kernels kKernels = {rows, matmul_generic};

}  // namespace

void matmul_fp8_generic(const ops::MatmulParams& p, const ExecContext& ctx) { run_matmul_fp8(p, ctx, kKernels); }

}  // namespace qvl::cpu
