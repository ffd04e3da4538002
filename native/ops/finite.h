// Non-finite scan: the index of the first NaN or ±inf among n values of x (f32, bf16, f16, or
// f8_e4m3, whose only non-finite values are its two NaNs),
// or -1 when all are finite. Used to refuse a checkpoint with corrupt weights at load, and to
// tell a model that overflows at run time from a bad request. Reads bit patterns only, so it is
// exact for every dtype and never raises floating-point exceptions.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

struct FiniteParams {
  const void* x = nullptr;  // [n] of dtype, aligned to its element size
  DType dtype = DType::F32;  // F32, BF16, F16 or F8E4M3
  int64_t n = 0;
};

using FiniteFn = int64_t (*)(const FiniteParams&, const ExecContext&);

const OpFamily<FiniteFn>& finite_family();

// Throws E_INPUT unless p is a consistent problem.
void check_finite(const FiniteParams& p);
// Validates and runs the best variant: the first non-finite index, or -1.
int64_t first_nonfinite(const FiniteParams& p, const ExecContext& ctx);

}  // namespace qvl::ops
