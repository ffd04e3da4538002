// Element type conversion: n values from one float format to another (f32 <-> bf16, f32 <-> f16),
// rounding to nearest even with NaN kept quiet (core/dtype.h), exactly as torch's .to() does.
// The KV pool stores keys and values in bf16 with it, and widens them back for attention.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

struct ConvertParams {
  const void* src = nullptr;  // [n] of src_dtype, aligned to its element size
  DType src_dtype = DType::F32;
  void* dst = nullptr;  // [n] of dst_dtype, aligned; must not overlap src
  DType dst_dtype = DType::BF16;
  int64_t n = 0;
};

using ConvertFn = void (*)(const ConvertParams&, const ExecContext&);

const OpFamily<ConvertFn>& convert_family();

// Throws E_INPUT unless p is a supported, consistent problem (one side f32, the other f32, bf16 or f16).
void check_convert(const ConvertParams& p);
// Validates and runs the best variant.
void convert(const ConvertParams& p, const ExecContext& ctx);

}  // namespace qvl::ops
