// Softmax over the last dimension of fp32 rows: out = exp(x - max) / Σ exp(x - max), computed in
// fp32 in the fast variants (~1e-6 relative to the double reference).
//
// -inf entries are allowed (masked positions) and give 0. A row that is -inf everywhere has no
// defined softmax (torch returns NaN); here its output is all zeros, so a fully masked row
// contributes nothing downstream instead of poisoning it. NaN or +inf entries make the row's
// result unspecified (NaN in practice); they are not an error.
#pragma once
#include <cstdint>

#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

struct SoftmaxParams {
  int64_t rows = 0, dim = 0;
  const float* x = nullptr;  // [rows, dim], row stride ldx
  int64_t ldx = 0;
  float* out = nullptr;  // [rows, dim], row stride ldo; may be x (same stride), else no overlap
  int64_t ldo = 0;
};

using SoftmaxFn = void (*)(const SoftmaxParams&, const ExecContext&);

const OpFamily<SoftmaxFn>& softmax_family();

// Throws E_INPUT unless p describes a consistent problem (the kernels assume it does).
void check_softmax(const SoftmaxParams& p);
// Validates (E_INPUT) and runs the best variant.
void softmax(const SoftmaxParams& p, const ExecContext& ctx);

}  // namespace qvl::ops
