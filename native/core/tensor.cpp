#include "core/tensor.h"

#include "core/error.h"

namespace qvl {

int64_t checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    QVL_CHECK(d >= 0, Input, "negative dimension in shape");
    if (d != 0 && n > INT64_MAX / d) fail(ErrorCode::Input, "shape element count overflows");
    n *= d;
  }
  return n;
}

Tensor::Tensor(DType dtype, std::vector<int64_t> shape, std::shared_ptr<Storage> storage, size_t byte_offset)
    : dtype_(dtype), shape_(std::move(shape)), storage_(std::move(storage)), offset_(byte_offset) {
  QVL_CHECK(storage_ != nullptr, Native, "tensor without storage");
  const int64_t n = checked_numel(shape_);
  const size_t es = dtype_size(dtype_);
  QVL_CHECK(static_cast<uint64_t>(n) <= SIZE_MAX / es, Input, "tensor byte size overflows");
  const size_t bytes = static_cast<size_t>(n) * es;
  QVL_CHECK(offset_ <= storage_->bytes() && bytes <= storage_->bytes() - offset_, Input,
            "tensor view " + shape_string() + " at offset " + std::to_string(offset_) +
                " does not fit in storage of " + std::to_string(storage_->bytes()) + " bytes");
  strides_.assign(shape_.size(), 1);
  for (int i = static_cast<int>(shape_.size()) - 2; i >= 0; --i) strides_[i] = strides_[i + 1] * shape_[i + 1];
}

Tensor Tensor::empty(DType dtype, std::vector<int64_t> shape, Pages pages) {
  const int64_t n = checked_numel(shape);
  return Tensor(dtype, std::move(shape), make_owned(static_cast<size_t>(n) * dtype_size(dtype), pages), 0);
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

bool Tensor::is_contiguous() const {
  int64_t expect = 1;
  for (int i = static_cast<int>(shape_.size()) - 1; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[i] != expect) return false;
    expect *= shape_[i];
  }
  return true;
}

Tensor Tensor::reshape(std::vector<int64_t> shape) const {
  QVL_CHECK(is_contiguous(), Input, "reshape of a non-contiguous tensor");
  QVL_CHECK(checked_numel(shape) == numel(), Input, "reshape " + shape_string() + " changes the element count");
  return Tensor(dtype_, std::move(shape), storage_, offset_);
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string Tensor::shape_string() const { return qvl::shape_string(shape_); }

}  // namespace qvl
