// The Int8Dot matmul kernels (q8, q4 weights; layout in core/weight_quant.h) and the driver they
// share. Every variant first quantizes the activation rows (ops/quant_act.h: the same bytes in
// every variant), then computes, for output (m, n),
//   y = bias + Σ_blocks d_x·s_w·dot(codes_w, codes_x) − Σ_groups s_w·z·Σ_{blocks of the group} d_x·Σcodes_x
// with z = the q4 zero point, or the +128 bias of the stored q8 bytes (a kernel that multiplies
// signed q8 codes directly drops that term). The integer dots are exact; only the f32 sums of the
// scale products differ from the reference.
#pragma once
#include <cstdint>

#include "ops/matmul.h"

namespace qvl::cpu {

void matmul_q_generic(const ops::MatmulParams& p, const ExecContext& ctx);
void matmul_q_avx2(const ops::MatmulParams& p, const ExecContext& ctx);
void matmul_q_avxvnni(const ops::MatmulParams& p, const ExecContext& ctx);
void matmul_q_avx512vnni(const ops::MatmulParams& p, const ExecContext& ctx);

// Quantized activation rows (row stride K for q, blocks for d, groups for gs).
struct QActs {
  int64_t M = 0, K = 0, blocks = 0, groups = 0, group = 0;
  int8_t* q = nullptr;  // [M, K] codes
  float* d = nullptr;   // [M, blocks] block scales
  float* gs = nullptr;  // [M, groups] Σ over the weight group's blocks of d · Σ codes
  // [M, blocks] uninitialised room for a GEMM's per-row, per-block integer sums (the AVX512-VNNI
  // GEMM's −offset·Σ codes); null where run_qmatmul takes the row tiles.
  int32_t* xsum = nullptr;
};

struct QKernels {
  // Row m of x (K elements) into row m of a (q, d, gs), bytes identical to ops::quantize_act_block.
  void (*quantize)(const float* x, int64_t m, QActs& a);
  // y rows [m0, m0 + rows) x outputs [n0, n1), full K, bias included; rows <= 4. n0 is a multiple
  // of 16 (a panel's first row: core/weight_quant.h); n1 <= N need not be.
  void (*tile)(const ops::MatmulParams& p, const QActs& a, int64_t m0, int rows, int64_t n0, int64_t n1);
  // Optional: the whole product for M >= kQGemmMinRows (matmul_q_gemm.h); it may rewrite a.
  void (*gemm)(const ops::MatmulParams& p, QActs& a, ThreadPool& pool) = nullptr;
};

// Quantizes the activations, then threads the tiles over outputs (and rows for large M).
void run_qmatmul(const ops::MatmulParams& p, const ExecContext& ctx, const QKernels& k);

// While one lives on the calling thread, run_qmatmul takes the row tiles even where the variant
// has a GEMM: the benchmark's baseline for the GEMM, timed in the same process.
struct QGemmOff {
  QGemmOff();
  ~QGemmOff();
  QGemmOff(const QGemmOff&) = delete;
  QGemmOff& operator=(const QGemmOff&) = delete;
};

}  // namespace qvl::cpu
