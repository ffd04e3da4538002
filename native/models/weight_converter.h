// Checkpoint tensors -> the weight formats the matmul op reads (core/weight_format.h). The only
// model code that knows how a format is laid out in a checkpoint: today the dense formats (the
// stored f32/bf16/f16 tensor, zero-copy); quantized checkpoints (AWQ, GPTQ, FP8) get their branch
// here, next to the traits row and kernels of the format they convert to.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/threadpool.h"
#include "core/weight_format.h"
#include "models/weights.h"

namespace qvl::models {

// A weight reference with the storage it points into (views of the mmap or converted memory).
// `perm`, when not empty, says the weight's column j multiplies input channel perm[j] (GPTQ
// act-order, see official_quant.h): Linear gathers the activations by it before the matmul.
struct ConvertedWeight {
  std::vector<Tensor> storage;
  WeightRef ref;
  std::vector<int32_t> perm;
};

// nn.Linear `<prefix>.weight` [out, in] as a WeightRef; E_MODEL_FORMAT on a missing tensor or a wrong
// shape, E_UNSUPPORTED on a dtype that is no weight format.
ConvertedWeight convert_linear_weight(const WeightStore& w, const std::string& prefix, int64_t in, int64_t out);
// A dense tensor viewed as [out, in] (a flattened conv kernel, the tied embedding table).
ConvertedWeight convert_dense_weight(const Tensor& t, const std::string& what, int64_t in, int64_t out);

// A fused "x @ W" expert tensor [E, R, C], repacked once into the moe op's [E, C, R] form.
struct ConvertedExperts {
  Tensor packed;
  WeightFormat format = WeightFormat::F32;
  const void* data() const { return packed.raw(); }
};
ConvertedExperts convert_moe_experts(const WeightStore& w, const std::string& name, int64_t E, int64_t R, int64_t C,
                                     ThreadPool& pool);

}  // namespace qvl::models
