// Checkpoint tensors by name: views into copy-on-write mmaps of the safetensors files. The only
// copies are of tensors whose bytes do not start at a multiple of their element size (legal in a
// file whose header is not padded): the kernels read whole elements, so those get an aligned
// owned copy once. TypeScript has already validated the headers; the store re-checks every range
// against the mapped file before making a view, and `get` checks the shape the model code expects.
#pragma once
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/threadpool.h"
#include "models/quant_spec.h"

namespace qvl::models {

struct WeightEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t byte_offset;  // absolute, in the file
  uint64_t byte_length;
};

struct WeightFile {
  std::string path;
  std::vector<WeightEntry> tensors;
};

class WeightStore {
 public:
  explicit WeightStore(const std::vector<WeightFile>& files, QuantSpec quant = {});

  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // The tensor, checked against the expected shape (E_MODEL_FORMAT naming it otherwise).
  const Tensor& get(const std::string& name, const std::vector<int64_t>& shape) const;
  const Tensor* find(const std::string& name) const;
  size_t size() const { return tensors_.size(); }
  uint64_t mapped_bytes() const { return mapped_bytes_; }
  // How the checkpoint's quantized layers are stored (QuantMethod::None for a dense checkpoint).
  const QuantSpec& quant() const { return quant_; }
  // The tensor with this name, shape and dtype, whatever its dtype class: E_MODEL_FORMAT naming it
  // when it is missing or its shape or dtype differ (the quantized layouts' integer tensors).
  const Tensor& get_typed(const std::string& name, const std::vector<int64_t>& shape, DType dtype) const;
  // The name of the largest tensor whose name starts with `prefix` ("" when there is none).
  std::string largest(const std::string& prefix) const;
  // The file a tensor came from, for messages ("" when there is no such tensor).
  std::string file_of(const std::string& name) const;
  // E_MODEL_FORMAT naming the first tensor (by name) that holds a NaN or an infinity, with the
  // file and element index. Reads every f32/bf16/f16/f8_e4m3 byte once, on the pool's threads,
  // but those of the tensors in `skip` (a weight cache vouches for them: models/weight_cache.h).
  void check_finite(ThreadPool& pool, const std::set<std::string>& skip = {}) const;
  // The same for the one tensor `name` (none such: nothing to check).
  void check_finite(const std::string& name, ThreadPool& pool) const;

 private:
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, std::string> file_of_;
  uint64_t mapped_bytes_ = 0;
  QuantSpec quant_;
};

}  // namespace qvl::models
