#include "models/weights.h"

#include "core/error.h"

namespace qvl::models {

WeightStore::WeightStore(const std::vector<WeightFile>& files) {
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
      tensors_.emplace(e.name, Tensor(e.dtype, e.shape, mapped, static_cast<size_t>(e.byte_offset)));
      file_of_[e.name] = f.path;
    }
  }
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

}  // namespace qvl::models
