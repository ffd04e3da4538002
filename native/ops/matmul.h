// y[M,N] = x[M,K] · wᵀ (+ bias): activations f32, weights in nn.Linear's layout (out × in) in a
// weight format (core/weight_format.h; today f32, bf16 or f16 as stored), accumulated in f32. One
// call covers decode (M=1), prefill and the vision tower (large M); variants are multi-threaded
// over the pool. The dispatcher picks the best variant by (ISA, weight format): each variant
// lists the formats it reads in its mask.
#pragma once
#include <cstdint>

#include "core/cancel.h"
#include "core/dtype.h"
#include "core/weight_format.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

struct MatmulParams {
  int64_t M = 0, N = 0, K = 0;
  const float* x = nullptr;  // [M, K], row stride ldx (elements)
  int64_t ldx = 0;
  WeightRef w;               // [N, K]: w.out == N, w.in == K, row stride w.ld (elements)
  const float* bias = nullptr;  // [N] or null
  float* y = nullptr;           // [M, N], row stride ldy (elements)
  int64_t ldy = 0;
  // Optional: the packed (large M) path polls it between output blocks, so a long prefill's or
  // vision tower's matmul stops early; matmul() then throws the token's error instead of
  // returning y half written.
  const CancelToken* cancel = nullptr;
};

using MatmulFn = void (*)(const MatmulParams&, const ExecContext&);

const OpFamily<MatmulFn>& matmul_family();

// Validates shapes/strides (E_INPUT) and runs the best variant for p.w.format; throws E_ABORTED /
// E_DISPOSED when p.cancel is set.
void matmul(const MatmulParams& p, const ExecContext& ctx);
// Throws E_INPUT unless p describes a consistent problem (the kernels assume it does).
void check_matmul(const MatmulParams& p);
// The variant matmul() runs on device d for weights in format f (E_UNSUPPORTED when none there reads f).
const Variant<MatmulFn>& matmul_variant(Device d, WeightFormat f);

}  // namespace qvl::ops
