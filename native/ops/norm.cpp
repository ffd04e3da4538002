#include "ops/norm.h"

#include "ops/backends.h"

#include <cmath>
#include <string>

#include "ops/rows_check.h"
#include "ops/backends.h"

namespace qvl::ops {

const OpFamily<NormFn>& layer_norm_family() {
  static const OpFamily<NormFn> family("layer_norm", QVL_BACKEND_VARIANTS(layer_norm));
  return family;
}

const OpFamily<NormFn>& rms_norm_family() {
  static const OpFamily<NormFn> family("rms_norm", QVL_BACKEND_VARIANTS(rms_norm));
  return family;
}

namespace {

void check_norm(const NormParams& p, const char* op) {
  const std::string o = op;
  check_rows(op, "x", p.x, p.rows, p.dim, p.ldx, sizeof(float));
  check_rows(op, "out", p.out, p.rows, p.dim, p.ldo, sizeof(float));
  QVL_CHECK(p.out != p.x || p.ldo == p.ldx, Input,
            o + ": in place needs ldo == ldx (got " + std::to_string(p.ldo) + " and " + std::to_string(p.ldx) + ")");
  QVL_CHECK(p.w_dtype == DType::F32 || p.w_dtype == DType::BF16 || p.w_dtype == DType::F16, Input,
            o + ": weight dtype must be f32, bf16 or f16 (got " + dtype_name(p.w_dtype) + ")");
  if (p.weight) check_rows(op, "weight", p.weight, 1, p.dim, p.dim, dtype_size(p.w_dtype));
  if (p.bias) check_rows(op, "bias", p.bias, 1, p.dim, p.dim, dtype_size(p.w_dtype));
  QVL_CHECK(std::isfinite(p.eps) && p.eps >= 0, Input, o + ": eps must be finite and >= 0 (got " + std::to_string(p.eps) + ")");
}

}  // namespace

void check_layer_norm(const NormParams& p) { check_norm(p, "layer_norm"); }

void check_rms_norm(const NormParams& p) {
  check_norm(p, "rms_norm");
  QVL_CHECK(p.bias == nullptr, Input, "rms_norm: takes no bias");
}

void layer_norm(const NormParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "layer_norm");
  check_layer_norm(p);
  layer_norm_family().best(ctx.device()).fn(p, ctx);
}

void rms_norm(const NormParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "rms_norm");
  check_rms_norm(p);
  rms_norm_family().best(ctx.device()).fn(p, ctx);
}

}  // namespace qvl::ops
