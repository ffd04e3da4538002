// Checkpoint tensors -> the weight formats the matmul op reads (core/weight_format.h). The only
// model code that knows how a format is laid out in a checkpoint: today the dense formats (the
// stored f32/bf16/f16 tensor, zero-copy); quantized checkpoints (AWQ, GPTQ, FP8) get their branch
// here, next to the traits row and kernels of the format they convert to.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/placement.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "core/weight_format.h"
#include "models/weights.h"

namespace qvl::models {

class WeightCache;

// A weight reference with the storage it points into (views of the mmap or converted memory).
// `perm`, when not empty, says the weight's column j multiplies input channel perm[j] (GPTQ
// act-order, see official_quant.h): Linear gathers the activations by it before the matmul.
struct ConvertedWeight {
  std::vector<Tensor> storage;
  WeightRef ref;
  std::vector<int32_t> perm;
};

// What the loader makes of a part's (language model, vision tower) dense linear weights: kept as
// stored, or quantized at load into q8/q4, in groups as core's q_load_group sizes them for the
// weight's input size. A weight whose input size is no multiple of 32 stays as stored (e.g. the
// vision patch embedding, K = 1176).
struct WeightPlan {
  bool quantize = false;
  WeightFormat format = WeightFormat::Q8;  // Q8 or Q4 when quantize
  ThreadPool* pool = nullptr;  // where conversions run (the default pool when null)
  // Called after each converted weight with the bytes of stored weights it read (load progress).
  std::function<void(uint64_t)> on_converted;
  // Where converted weights are looked up before converting, and recorded (null: no cache).
  WeightCache* cache = nullptr;
  // Where the weights live (core/placement.h): weights kept as stored are copied out of the
  // mapped checkpoint into owned memory when `copy_stored` (the mapped pages released after each
  // copy); owned weights, converted or copied, get `pages`.
  bool copy_stored = false;
  Pages pages = Pages::Huge;
};

// nn.Linear `<prefix>.weight` [out, in] as a WeightRef; E_MODEL_FORMAT on a missing tensor or a wrong
// shape, E_UNSUPPORTED on a dtype that is no weight format.
ConvertedWeight convert_linear_weight(const WeightStore& w, const std::string& prefix, int64_t in, int64_t out,
                                      const WeightPlan& plan = {});
// A dense tensor viewed as [out, in] (a flattened conv kernel, the tied embedding table). `source`:
// the checkpoint tensor `t` is when nothing but this weight reads it (the plan's cache may then
// vouch for its finite scan, models/weight_cache.h); "" otherwise.
ConvertedWeight convert_dense_weight(const Tensor& t, const std::string& what, int64_t in, int64_t out,
                                     const WeightPlan& plan = {}, const std::string& source = "");

// A converted weight's source, if it is a view of a mapped checkpoint file, leaves this process's
// memory (its pages are dropped; nothing else may still use it as stored): loading converts weight
// by weight without holding both copies of the model.
void release_source(const Tensor& t);

// The routed experts of one MoE layer in the moe op's stacked layout (ops/moe.h): gate_up
// [E·2I, H] or down [E·H, I], from `<prefix>.gate_up_proj` [E, H, 2I] / `<prefix>.down_proj`
// [E, I, H] (the fused "x @ W" tensors of the bf16 releases) or, when those are absent, from
// per-expert linear layers `<prefix>.<e>.gate_proj|up_proj|down_proj` (the official FP8 release).
// Fused dense experts are quantized at load per the plan (q8/q4, through the plan's cache) where
// their input size is a whole number of groups; per-expert layers load as their layout says
// (FP8 stays FP8). The result is owned memory of `plan.pages`; the stored tensors' mapped pages
// are released as they are converted.
enum class MoeProjection { GateUp, Down };
ConvertedWeight convert_moe_experts(const WeightStore& w, const std::string& prefix, MoeProjection which, int64_t E,
                                    int64_t H, int64_t I, const WeightPlan& plan);

}  // namespace qvl::models
