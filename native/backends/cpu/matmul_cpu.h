// The CPU matmul variants and the blocking driver they share. Each ISA file supplies three
// small kernels (a weight-panel packer, a register-blocked tile, a few-rows streaming kernel);
// matmul_driver.cpp owns the loop nest and the threading, so the variants differ only where
// the instructions do.
#pragma once
#include <cstdint>

#include "ops/matmul.h"

namespace qvl::cpu {

void matmul_ref(const ops::MatmulParams& p, const ExecContext& ctx);
void matmul_generic(const ops::MatmulParams& p, const ExecContext& ctx);
void matmul_avx2(const ops::MatmulParams& p, const ExecContext& ctx);
void matmul_avx512(const ops::MatmulParams& p, const ExecContext& ctx);

// The dense kernel family (WeightKernel::DenseF32: weights widened to f32, f32 FMA) sees the
// problem with its weights' element type resolved once per call from the format's traits, so the
// kernels switch over the storage dtype and never over the format list: adding a format (with its
// own kernels) leaves these files alone.
struct DenseMatmul : ops::MatmulParams {
  DType dense = DType::F32;  // F32, BF16 or F16
};
// The element type of a dense format's weights; E_UNSUPPORTED for a format of another kernel family
// or a storage dtype the dense kernels do not widen (the dispatcher never sends one).
DType dense_storage(WeightFormat f);

struct MatmulKernels {
  // Register tile: mr rows of x by nr outputs. Panels are kc x nr f32, k-major, nr contiguous.
  int mr, nr;
  // Cache blocking: kc (k per panel: a panel stays in L1), nc (outputs packed per task: the
  // packed block stays in L2), mc (rows of x per pass over a packed block: they stay in L2).
  int kc, nc, mc;
  // M <= small_m skips packing and streams the weights once per call (decode).
  int small_m;
  // panel[k][j] = w[n0 + j][k0 + k] as f32 for k < kc, j < nvalid; columns nvalid..nr-1 are 0.
  // May write rows kc..round_up(kc, 16)-1 (the driver leaves room).
  void (*pack)(const DenseMatmul& p, int64_t n0, int64_t nvalid, int64_t k0, int64_t kc, float* panel);
  // y[r][j] (r < rows <= mr, j < nvalid <= nr) = (first ? bias[j] or 0 : y[r][j]) + x[r][0..kc) . panel[..][j].
  void (*tile)(int rows, int64_t kc, const float* x, int64_t ldx, const float* panel, float* y, int64_t ldy,
               int64_t nvalid, const float* bias, bool first);
  // Full-K rows [m0, m0 + rows) x outputs [n0, n1) including bias, rows <= small_m.
  void (*rows)(const DenseMatmul& p, int64_t m0, int rows, int64_t n0, int64_t n1);
  // Whether `tile` reads x packed by the driver, xp[k * mr + r] (rows past `rows` zero; ldx
  // unused), rather than in place: one contiguous stream instead of mr strided rows, 5-20% faster
  // for AVX2's 6x16 tile on Zen 1, for M x K floats of scratch (in passes of at most 16 MiB).
  bool packed_x = false;
};

// Handles the empty cases (M, N or K zero), picks the small-M or packed path and threads it on
// the context's pool (packed x in the context's scratch).
void run_matmul(const ops::MatmulParams& p, const ExecContext& ctx, const MatmulKernels& k);

}  // namespace qvl::cpu
