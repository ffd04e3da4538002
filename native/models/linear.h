// A checkpoint's nn.Linear: a weight reference [out, in] in its weight format (made by
// models/weight_converter; dense formats are the stored tensor, zero-copy) and an optional bias
// converted once to f32. `apply` runs the matmul op into a strided destination.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/cancel.h"
#include "core/tensor.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "models/weight_converter.h"
#include "models/weights.h"
#include "ops/matmul.h"

namespace qvl::models {

class Linear;

// One output of Linear::apply_group: a layer and where its y[rows, layer.out()] goes.
struct LinearOut {
  const Linear* layer = nullptr;
  float* y = nullptr;
  int64_t ldy = 0;
};

// A checkpoint vector (norm scale, bias) as f32, converted once at load.
std::vector<float> load_vector(const WeightStore& w, const std::string& name, int64_t n);

class Linear {
 public:
  Linear() = default;
  // Loads `<prefix>.weight` [out, in] and, when with_bias, `<prefix>.bias` [out].
  // The plan says whether the weight is kept as stored or quantized at load.
  Linear(const WeightStore& w, const std::string& prefix, int64_t in, int64_t out, bool with_bias,
         const WeightPlan& plan = {});
  // A weight viewed as [out, in] (e.g. a conv kernel flattened, or the tied embedding table).
  Linear(const Tensor& weight, int64_t in, int64_t out, std::vector<float> bias = {}, const WeightPlan& plan = {});

  int64_t in() const { return in_; }
  int64_t out() const { return out_; }
  WeightFormat format() const { return weight_.ref.format; }
  // Where the weight's bytes are (core/placement.h): Mmap when it reads the mapped checkpoint.
  std::optional<Placement> placement() const { return placement_of(*weight_.storage.front().storage()); }
  // y[rows, out] (row stride ldy) = x[rows, in] (row stride ldx) · Wᵀ + b; `cancel` (optional)
  // stops a long one early with the token's error.
  void apply(const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy, const ExecContext& ctx,
             const CancelToken* cancel = nullptr) const;
  // apply for layers that read one x (a layer's q, k and v; the MLP's gate and up), as one
  // matmul_group: at decode one pool job instead of one per layer, with the same numbers. Layers
  // that reorder x first (GPTQ act-order) run one apply each.
  static void apply_group(const LinearOut* outs, int64_t n, const float* x, int64_t ldx, int64_t rows,
                          const ExecContext& ctx, const CancelToken* cancel = nullptr);

 private:
  // The matmul problem apply runs, for x already in the weight's column order.
  ops::MatmulParams problem(const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy, const CancelToken* cancel) const;
  ConvertedWeight weight_;
  std::vector<float> bias_;
  int64_t in_ = 0, out_ = 0;
};

}  // namespace qvl::models
