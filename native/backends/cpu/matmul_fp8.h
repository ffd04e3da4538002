// The fp8 matmul family (WeightKernel::Fp8Block: float8_e4m3fn weights with one f32 scale per
// 128-block of a row, f32 activations). Decode-sized problems (M <= kFp8SmallM) stream the bytes
// once: each 128-block's products are summed from the decoded e4m3 values, then scaled. Larger M
// dequantizes a block of weight rows at a time (e4m3 · scale, the reference's own rounding) into
// f32 and hands it to the dense f32 kernels of the same ISA, which pack and tile it: the matmul is
// O(M·N·K) against the O(N·K) decode, so prefill runs at the dense f32 speed.
#pragma once
#include <cstdint>

#include "backends/cpu/matmul_cpu.h"

namespace qvl::cpu {

constexpr int64_t kFp8Block = 128;
constexpr int kFp8SmallM = 4;

struct Fp8Kernels {
  // Full-K rows [m0, m0 + count) x outputs [n0, n1) including bias, count <= kFp8SmallM.
  void (*rows)(const ops::MatmulParams& p, int64_t m0, int count, int64_t n0, int64_t n1);
  // The dense f32 matmul the large-M path runs on dequantized rows.
  void (*dense)(const ops::MatmulParams& p, const ExecContext& ctx);
};

void run_matmul_fp8(const ops::MatmulParams& p, const ExecContext& ctx, const Fp8Kernels& k);

void matmul_fp8_generic(const ops::MatmulParams& p, const ExecContext& ctx);
void matmul_fp8_avx2(const ops::MatmulParams& p, const ExecContext& ctx);
void matmul_fp8_avx512(const ops::MatmulParams& p, const ExecContext& ctx);

}  // namespace qvl::cpu
