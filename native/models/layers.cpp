#include "models/layers.h"

#include "models/linear.h"
#include "core/error.h"
#include "ops/norm.h"
#include "ops/rows.h"

namespace qvl::models {

NormLayer::NormLayer(const WeightStore& w, const std::string& prefix, int64_t dim, Kind kind, double eps,
                     bool with_bias)
    : kind_(kind), dim_(dim), eps_(static_cast<float>(eps)) {
  weight_ = load_vector(w, prefix + ".weight", dim);
  if (with_bias) bias_ = load_vector(w, prefix + ".bias", dim);
}

void NormLayer::apply(const float* x, int64_t ldx, int64_t rows, float* out, int64_t ldo, const ExecContext& ctx) const {
  ops::NormParams p;
  p.rows = rows;
  p.dim = dim_;
  p.x = x;
  p.ldx = ldx;
  p.out = out;
  p.ldo = ldo;
  p.weight = weight_.data();
  p.bias = bias_.empty() ? nullptr : bias_.data();
  p.w_dtype = DType::F32;
  p.eps = eps_;
  if (kind_ == Kind::LayerNorm) {
    ops::layer_norm(p, ctx);
  } else {
    ops::rms_norm(p, ctx);
  }
}

void activate_rows(ops::ActKind kind, float* x, int64_t rows, int64_t dim, int64_t ld, const ExecContext& ctx) {
  ops::ActivationParams a;
  a.kind = kind;
  a.rows = rows;
  a.dim = dim;
  a.x = x;
  a.ldx = ld;
  a.out = x;
  a.ldo = ld;
  ops::activation(a, ctx);
}

void swiglu_rows(float* gu, int64_t rows, int64_t I, const ExecContext& ctx) {
  ops::ActivationParams a;
  a.kind = ops::ActKind::SwiGlu;
  a.rows = rows;
  a.dim = I;
  a.x = gu;
  a.ldx = 2 * I;
  a.up = gu + I;
  a.ldu = 2 * I;
  a.out = gu;
  a.ldo = 2 * I;
  ops::activation(a, ctx);
}

ops::ActKind act_kind(const std::string& name) {
  if (name == "quick_gelu") return ops::ActKind::QuickGelu;
  if (name == "silu") return ops::ActKind::Silu;
  if (name == "gelu_pytorch_tanh" || name == "gelu_new") return ops::ActKind::GeluTanh;
  if (name == "gelu") return ops::ActKind::GeluErf;
  fail(ErrorCode::Unsupported, "hidden_act '" + name + "' is not supported");
}

void index_rows(ops::RowsKind kind, float* dst, const float* src, int64_t n, int64_t cols, const void* idx, DType idx_dtype,
                int64_t indexed_rows, const ExecContext& ctx) {
  ops::RowsParams p;
  p.kind = kind;
  p.n = n;
  p.cols = cols;
  p.dst = dst;
  p.ldd = cols;
  p.src = src;
  p.lds = cols;
  p.indexed_rows = indexed_rows;
  p.idx = idx;
  p.idx_dtype = idx_dtype;
  ops::rows(p, ctx);
}

void add_rows(float* x, int64_t ldx, const float* y, int64_t ldy, int64_t rows, int64_t dim, const ExecContext& ctx) {
  ops::RowsParams p;
  p.kind = ops::RowsKind::Add;
  p.n = rows;
  p.cols = dim;
  p.dst = x;
  p.ldd = ldx;
  p.src = y;
  p.lds = ldy;
  ops::rows(p, ctx);
}

}  // namespace qvl::models
