// Plain layer_norm and rms_norm in double: weights converted exactly, every sum and every output
// in double, rounded once. Single-threaded on purpose.
#include <cmath>

#include "ops/norm.h"

namespace qvl::cpu {

namespace {

double param(const void* v, DType t, int64_t i, double absent) {
  if (!v) return absent;
  switch (t) {
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(v)[i]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(v)[i]);
    case DType::F32: return static_cast<const float*>(v)[i];
    case DType::I32:
    case DType::I64:
    case DType::F8E4M3:
    case DType::U8: break;
  }
  fail(ErrorCode::Native, std::string("norm: parameters of ") + dtype_name(t));
}

}  // namespace

void layer_norm_ref(const ops::NormParams& p, const ExecContext& /*ctx*/) {
  const double n = static_cast<double>(p.dim);
  for (int64_t r = 0; r < p.rows; ++r) {
    const float* x = p.x + r * p.ldx;
    float* out = p.out + r * p.ldo;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < p.dim; ++i) mean += x[i];
    mean /= n;
    for (int64_t i = 0; i < p.dim; ++i) var += (x[i] - mean) * (x[i] - mean);
    const double rstd = 1.0 / std::sqrt(var / n + static_cast<double>(p.eps));
    for (int64_t i = 0; i < p.dim; ++i) {
      const double y = (x[i] - mean) * rstd * param(p.weight, p.w_dtype, i, 1.0) + param(p.bias, p.w_dtype, i, 0.0);
      out[i] = static_cast<float>(y);
    }
  }
}

void rms_norm_ref(const ops::NormParams& p, const ExecContext& /*ctx*/) {
  for (int64_t r = 0; r < p.rows; ++r) {
    const float* x = p.x + r * p.ldx;
    float* out = p.out + r * p.ldo;
    double ss = 0;
    for (int64_t i = 0; i < p.dim; ++i) ss += static_cast<double>(x[i]) * x[i];
    const double rs = 1.0 / std::sqrt(ss / static_cast<double>(p.dim) + static_cast<double>(p.eps));
    for (int64_t i = 0; i < p.dim; ++i) out[i] = static_cast<float>(param(p.weight, p.w_dtype, i, 1.0) * (x[i] * rs));
  }
}

}  // namespace qvl::cpu
