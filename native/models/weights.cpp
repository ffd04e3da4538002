#include "models/weights.h"

#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "ops/finite.h"

namespace qvl::models {

WeightStore::WeightStore(const std::vector<WeightFile>& files, QuantSpec quant) : quant_(quant) {
  for (const WeightFile& f : files) {
    auto mapped = std::make_shared<MappedFile>(f.path);
    mapped_bytes_ += mapped->bytes();
    for (const WeightEntry& e : f.tensors) {
      const int64_t n = checked_numel(e.shape);
      const uint64_t expect = static_cast<uint64_t>(n) * dtype_size(e.dtype);
      if (expect != e.byte_length)
        fail(ErrorCode::ModelFormat, f.path + ": tensor " + e.name + " has shape " + shape_string(e.shape) +
                                         " but " + std::to_string(e.byte_length) + " bytes");
      if (e.byte_offset > mapped->bytes() || e.byte_length > mapped->bytes() - e.byte_offset)
        fail(ErrorCode::ModelFormat, f.path + ": tensor " + e.name + " lies outside the file");
      if (tensors_.count(e.name))
        fail(ErrorCode::ModelFormat, f.path + ": tensor " + e.name + " also appears in " + file_of_[e.name]);
      Tensor view(e.dtype, e.shape, mapped, static_cast<size_t>(e.byte_offset));
      if (reinterpret_cast<uintptr_t>(view.raw()) % dtype_size(e.dtype) != 0) {
        Tensor copy = Tensor::empty(e.dtype, e.shape);
        std::memcpy(copy.raw(), view.raw(), static_cast<size_t>(e.byte_length));
        view = copy;
      }
      tensors_.emplace(e.name, std::move(view));
      file_of_[e.name] = f.path;
    }
  }
}

void WeightStore::check_finite(ThreadPool& pool, const std::set<std::string>& skip) const {
  for (const auto& entry : tensors_) {
    if (skip.count(entry.first) == 0) check_finite(entry.first, pool);
  }
}

void WeightStore::check_finite(const std::string& name, ThreadPool& pool) const {
  const Tensor* t = find(name);
  if (!t) return;
  const DType d = t->dtype();
  if (d != DType::F32 && d != DType::BF16 && d != DType::F16 && d != DType::F8E4M3) return;
  ops::FiniteParams p;
  p.x = t->raw();
  p.dtype = t->dtype();
  p.n = t->numel();
  const int64_t at = ops::first_nonfinite(p, ExecContext(pool));
  if (at >= 0)
    fail(ErrorCode::ModelFormat, file_of_.at(name) + ": tensor " + name + " holds a non-finite value (NaN or " +
                                     "infinity) at element " + std::to_string(at) + " of " + t->shape_string());
}

const Tensor* WeightStore::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const Tensor& WeightStore::get(const std::string& name, const std::vector<int64_t>& shape) const {
  const Tensor* t = find(name);
  if (!t) fail(ErrorCode::ModelFormat, "checkpoint has no tensor " + name);
  if (t->shape() != shape)
    fail(ErrorCode::ModelFormat, "tensor " + name + " in " + file_of_.at(name) + " has shape " +
                                     t->shape_string() + ", expected " + shape_string(shape));
  if (t->dtype() != DType::F32 && t->dtype() != DType::BF16 && t->dtype() != DType::F16)
    fail(ErrorCode::Unsupported, "tensor " + name + " has dtype " + dtype_name(t->dtype()) +
                                     "; weights must be f32, bf16 or f16");
  return *t;
}

const Tensor& WeightStore::get_typed(const std::string& name, const std::vector<int64_t>& shape, DType dtype) const {
  const Tensor* t = find(name);
  if (!t) fail(ErrorCode::ModelFormat, "checkpoint has no tensor " + name);
  if (t->shape() != shape)
    fail(ErrorCode::ModelFormat, "tensor " + name + " in " + file_of_.at(name) + " has shape " +
                                     t->shape_string() + ", expected " + shape_string(shape));
  if (t->dtype() != dtype)
    fail(ErrorCode::ModelFormat, "tensor " + name + " in " + file_of_.at(name) + " has dtype " +
                                     dtype_name(t->dtype()) + ", expected " + dtype_name(dtype));
  return *t;
}

std::string WeightStore::largest(const std::string& prefix) const {
  std::string name;
  size_t bytes = 0;
  for (auto it = tensors_.lower_bound(prefix); it != tensors_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    if (it->second.nbytes() > bytes) name = it->first, bytes = it->second.nbytes();
  }
  return name;
}

std::string WeightStore::file_of(const std::string& name) const {
  auto it = file_of_.find(name);
  return it == file_of_.end() ? std::string() : it->second;
}

}  // namespace qvl::models
