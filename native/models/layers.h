// Small building blocks shared by every family's model file: a checkpoint's norm layer and
// elementwise helpers. Each forwards to the op set; no arithmetic of its own beyond glue.
#pragma once
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/threadpool.h"
#include "models/weights.h"
#include "ops/activation.h"
#include "ops/rows.h"

namespace qvl::models {

class NormLayer {
 public:
  enum class Kind { LayerNorm, RmsNorm };
  NormLayer() = default;
  // `<prefix>.weight` [dim] (and `<prefix>.bias` for LayerNorm when with_bias).
  NormLayer(const WeightStore& w, const std::string& prefix, int64_t dim, Kind kind, double eps, bool with_bias);
  int64_t dim() const { return dim_; }
  // out[rows, dim] = norm(x[rows, dim]); in place allowed (out == x, same stride).
  void apply(const float* x, int64_t ldx, int64_t rows, float* out, int64_t ldo, const ExecContext& ctx) const;

 private:
  Kind kind_ = Kind::RmsNorm;
  std::vector<float> weight_, bias_;
  int64_t dim_ = 0;
  float eps_ = 1e-6f;
};

// x = act(x) in place over rows of dim elements (row stride ld).
void activate_rows(ops::ActKind kind, float* x, int64_t rows, int64_t dim, int64_t ld, const ExecContext& ctx);
// gu [rows, 2·I] holds gate | up per row; its first I columns become silu(gate) · up.
void swiglu_rows(float* gu, int64_t rows, int64_t I, const ExecContext& ctx);
// The activation op's kind for a config's hidden_act; E_UNSUPPORTED for others.
ops::ActKind act_kind(const std::string& hidden_act);

// Rows of `cols` contiguous floats moved or added by index (the rows op's Gather, Scatter or
// AddIndexed; a negative index skips the row): `idx` has n entries of idx_dtype (I32 or I64) and
// addresses a side of `indexed_rows` rows, which the op checks before writing anything.
void index_rows(ops::RowsKind kind, float* dst, const float* src, int64_t n, int64_t cols, const void* idx, DType idx_dtype,
                int64_t indexed_rows, const ExecContext& ctx);

// x[i] += y[i] over rows of dim elements (residual connections): the rows op's Add.
void add_rows(float* x, int64_t ldx, const float* y, int64_t ldy, int64_t rows, int64_t dim, const ExecContext& ctx);

}  // namespace qvl::models
