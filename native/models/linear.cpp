#include "models/linear.h"

#include "core/error.h"
#include "core/arena.h"
#include "ops/convert.h"
#include "ops/matmul.h"
#include "ops/matmul_group.h"
#include "ops/rows.h"

namespace qvl::models {

std::vector<float> load_vector(const WeightStore& w, const std::string& name, int64_t n) {
  const Tensor& t = w.get(name, {n});  // f32, bf16 or f16 (get refuses the rest)
  std::vector<float> out(static_cast<size_t>(n));
  ops::ConvertParams c;
  c.src = t.raw(), c.src_dtype = t.dtype();
  c.dst = out.data(), c.dst_dtype = DType::F32;
  c.n = n;
  ops::convert(c, ExecContext(*default_pool()));
  return out;
}

Linear::Linear(const WeightStore& w, const std::string& prefix, int64_t in, int64_t out, bool with_bias,
               const WeightPlan& plan)
    : weight_(convert_linear_weight(w, prefix, in, out, plan)), in_(in), out_(out) {
  if (with_bias) bias_ = load_vector(w, prefix + ".bias", out);
}

Linear::Linear(const Tensor& weight, int64_t in, int64_t out, std::vector<float> bias, const WeightPlan& plan)
    : bias_(std::move(bias)), in_(in), out_(out) {
  QVL_CHECK(bias_.empty() || static_cast<int64_t>(bias_.size()) == out, ModelFormat, "bias length differs from the output size");
  weight_ = convert_dense_weight(weight, "weight", in, out, plan);
}

void Linear::apply(const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy, const ExecContext& ctx,
                   const CancelToken* cancel) const {
  ArenaScope scope(ctx.arena());
  if (!weight_.perm.empty() && rows > 0) {
    // GPTQ act-order: the weight's columns are in group order; bring the activations into it.
    Tensor xs = ctx.temp(DType::F32, {rows, in_});
    ops::RowsParams g;
    g.kind = ops::RowsKind::Gather;
    g.n = in_;
    g.cols = 1;
    g.ldd = 1;
    g.lds = 1;
    g.indexed_rows = in_;
    g.idx = weight_.perm.data();
    g.idx_dtype = DType::I32;
    for (int64_t r = 0; r < rows; ++r) {
      g.dst = xs.data<float>() + r * in_;
      g.src = x + r * ldx;
      ops::rows(g, ctx);
    }
    x = xs.data<float>();
    ldx = in_;
  }
  ops::matmul(problem(x, ldx, rows, y, ldy, cancel), ctx);
}

ops::MatmulParams Linear::problem(const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy,
                                  const CancelToken* cancel) const {
  ops::MatmulParams p;
  p.M = rows;
  p.N = out_;
  p.K = in_;
  p.x = x;
  p.ldx = ldx;
  p.w = weight_.ref;
  p.bias = bias_.empty() ? nullptr : bias_.data();
  p.y = y;
  p.ldy = ldy;
  p.cancel = cancel;
  return p;
}

void Linear::apply_group(const LinearOut* outs, int64_t n, const float* x, int64_t ldx, int64_t rows,
                         const ExecContext& ctx, const CancelToken* cancel) {
  bool plain = n <= ops::kMatmulGroupMaxParts;
  for (int64_t i = 0; i < n && plain; ++i) plain = outs[i].layer->weight_.perm.empty();
  if (!plain) {
    for (int64_t i = 0; i < n; ++i) outs[i].layer->apply(x, ldx, rows, outs[i].y, outs[i].ldy, ctx, cancel);
    return;
  }
  ops::MatmulParams parts[ops::kMatmulGroupMaxParts];
  for (int64_t i = 0; i < n; ++i) parts[i] = outs[i].layer->problem(x, ldx, rows, outs[i].y, outs[i].ldy, cancel);
  ops::matmul_group(parts, n, ctx);
}

}  // namespace qvl::models
