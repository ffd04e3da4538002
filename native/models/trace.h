// Optional capture of named intermediate tensors (patch embeddings, each block's output, each
// decoder layer's input, ...) for the conformance tool. Disabled traces cost one branch.
#pragma once
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace qvl::models {

class Trace {
 public:
  explicit Trace(bool enabled = false) : enabled_(enabled) {}
  bool enabled() const { return enabled_; }

  // Copies rows x cols floats (row stride ld) under `name`.
  void record(const std::string& name, const float* data, int64_t rows, int64_t cols, int64_t ld) {
    if (!enabled_) return;
    Tensor t = Tensor::empty(DType::F32, {rows, cols});
    float* dst = t.data<float>();
    for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * cols, data + r * ld, sizeof(float) * cols);
    items_.emplace_back(name, std::move(t));
  }
  std::vector<std::pair<std::string, Tensor>>& items() { return items_; }

 private:
  bool enabled_;
  std::vector<std::pair<std::string, Tensor>> items_;
};

}  // namespace qvl::models
