// A typed, shaped view over a Storage. Strides are in elements. Kernels take raw pointers and
// sizes; Tensor is the bookkeeping that the model code and the N-API layer pass around.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/storage.h"

namespace qvl {

class Tensor {
 public:
  Tensor() = default;
  // A view of `storage` starting `byte_offset` bytes in; checks that the view fits.
  Tensor(DType dtype, std::vector<int64_t> shape, std::shared_ptr<Storage> storage, size_t byte_offset = 0);

  // Owned, zero-filled, contiguous; `pages`: see OwnedStorage.
  static Tensor empty(DType dtype, std::vector<int64_t> shape, Pages pages = Pages::Huge);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool is_contiguous() const;
  bool defined() const { return storage_ != nullptr; }
  // The device the bytes are on (host for an undefined tensor).
  Device device() const { return storage_ ? storage_->device() : Device::Host; }

  void* raw() const { return static_cast<char*>(storage_->data()) + offset_; }
  template <class T> T* data() const { return static_cast<T*>(raw()); }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  size_t byte_offset() const { return offset_; }

  // Same bytes, new shape (contiguous tensors only; element count must match).
  Tensor reshape(std::vector<int64_t> shape) const;
  std::string shape_string() const;

 private:
  DType dtype_ = DType::F32;
  std::vector<int64_t> shape_;
  std::vector<int64_t> strides_;
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;
};

// "[2,3,4]": how shapes are written in error messages.
std::string shape_string(const std::vector<int64_t>& shape);

// Checked product of dimensions: throws E_INPUT on negative dims or overflow.
int64_t checked_numel(const std::vector<int64_t>& shape);

}  // namespace qvl
