// Row normalisations over fp32 rows of length dim, as transformers computes them:
//   layer_norm  (x - mean) / sqrt(var + eps) · weight + bias      nn.LayerNorm (biased variance)
//   rms_norm    weight · (x · rsqrt(mean(x²) + eps))              Qwen2/Qwen3 RMSNorm, fp32 inside
// weight and bias are [dim] vectors stored as in the checkpoint (f32, bf16 or f16) and converted
// on the fly; a null weight means 1 and a null bias 0 (elementwise_affine=False). rms_norm takes
// no bias. The fast variants keep every element in fp32 and the per-row sums in double, and
// carry the mean as a float pair, so rows with a large mean keep full accuracy.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

struct NormParams {
  int64_t rows = 0, dim = 0;
  const float* x = nullptr;  // [rows, dim], row stride ldx
  int64_t ldx = 0;
  float* out = nullptr;  // [rows, dim], row stride ldo; may be x (same stride), else no overlap
  int64_t ldo = 0;
  const void* weight = nullptr;  // [dim] of w_dtype, or null
  const void* bias = nullptr;    // layer_norm only: [dim] of w_dtype, or null
  DType w_dtype = DType::F32;    // F32, BF16 or F16, for weight and bias alike
  float eps = 1e-6f;             // finite, >= 0
};

using NormFn = void (*)(const NormParams&, const ExecContext&);

const OpFamily<NormFn>& layer_norm_family();
const OpFamily<NormFn>& rms_norm_family();

// Throw E_INPUT unless p describes a consistent problem (the kernels assume it does).
void check_layer_norm(const NormParams& p);
void check_rms_norm(const NormParams& p);
// Validate (E_INPUT) and run the best variant.
void layer_norm(const NormParams& p, const ExecContext& ctx);
void rms_norm(const NormParams& p, const ExecContext& ctx);

}  // namespace qvl::ops
