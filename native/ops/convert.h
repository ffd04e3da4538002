// Element type conversion: n values from one dtype to another.
//   to f32, bf16 or f16, from any dtype: through its f32 value (integers rounded to nearest by the
//     cast, f8_e4m3 exactly), then rounded to nearest even with NaN kept quiet (core/dtype.h),
//     exactly as torch's .to() does;
//   integer to integer (i32, i64, u8): exact, range-checked;
//   same to same: a copy of the bytes.
// Float to integer (the rounding a caller wants is not ours to pick) and anything else to f8_e4m3
// (that needs a scale) are refused. The KV pool stores keys and values in bf16 with it and widens
// them back for attention; castTensor runs on it.
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

// Returns -1, or (integer to integer) the first element whose value does not fit dst_dtype; dst
// is then only partly written.
using ConvertFn = int64_t (*)(const ConvertParams&, const ExecContext&);

const OpFamily<ConvertFn>& convert_family();

// Throws E_INPUT unless p is a supported, consistent problem (a pair listed above).
void check_convert(const ConvertParams& p);
// Validates and runs the best variant: -1, or the first element that does not fit (see ConvertFn).
int64_t convert(const ConvertParams& p, const ExecContext& ctx);

}  // namespace qvl::ops
