#include "models/kv_pool.h"

#include <cstring>
#include <string>

namespace qvl::models {

KvPool::KvPool(int64_t layers, int64_t kv_dim, DType dtype) : layers_(layers), kv_dim_(kv_dim), dtype_(dtype) {
  QVL_CHECK(layers > 0 && kv_dim > 0, Input, "a KV pool needs layers and a kv width");
  QVL_CHECK(dtype == DType::F32 || dtype == DType::BF16, Input,
            std::string("KV storage must be f32 or bf16 (got ") + dtype_name(dtype) + ")");
}

int64_t KvPool::add(int64_t capacity) {
  QVL_CHECK(capacity > 0, Input, "a sequence's KV capacity must be positive");
  auto s = std::make_unique<KvSlot>();
  s->capacity = capacity;
  for (int64_t l = 0; l < layers_; ++l) {
    s->k.push_back(Tensor::empty(dtype_, {capacity, kv_dim_}));
    s->v.push_back(Tensor::empty(dtype_, {capacity, kv_dim_}));
  }
  slots_.push_back(std::move(s));
  return size() - 1;
}

void KvPool::grow(int64_t id, int64_t capacity) {
  KvSlot& s = slot(id);
  QVL_CHECK(capacity >= s.len, Input,
            "cannot shrink sequence " + std::to_string(id) + " below the " + std::to_string(s.len) + " tokens it holds");
  const size_t held = static_cast<size_t>(s.len * kv_dim_) * dtype_size(dtype_);
  for (int64_t l = 0; l < layers_; ++l) {
    Tensor k = Tensor::empty(dtype_, {capacity, kv_dim_}), v = Tensor::empty(dtype_, {capacity, kv_dim_});
    if (held > 0) {
      std::memcpy(k.raw(), s.k[l].raw(), held);
      std::memcpy(v.raw(), s.v[l].raw(), held);
    }
    s.k[l] = std::move(k);
    s.v[l] = std::move(v);
  }
  s.capacity = capacity;
}

void KvPool::copy_prefix(int64_t src, int64_t dst, int64_t count) {
  QVL_CHECK(src != dst, Input, "a KV prefix is copied between two different sequences");
  const KvSlot& from = slot(src);
  KvSlot& to = slot(dst);
  const std::string what = "copying " + std::to_string(count) + " KV entries from sequence " + std::to_string(src) + " to " +
                           std::to_string(dst) + ": ";
  QVL_CHECK(count > 0, Input, what + "the count must be positive");
  QVL_CHECK(from.pad == 0 && count <= from.len, Input,
            what + "the source holds " + std::to_string(from.len) + " (" + std::to_string(from.pad) + " padding)");
  QVL_CHECK(to.len == 0 && to.pad == 0, Input, what + "the destination is not empty");
  QVL_CHECK(count <= to.capacity, Input, what + "the destination holds at most " + std::to_string(to.capacity));
  const size_t bytes = static_cast<size_t>(count * kv_dim_) * dtype_size(dtype_);
  for (int64_t l = 0; l < layers_; ++l) {
    std::memcpy(to.k[l].raw(), from.k[l].raw(), bytes);
    std::memcpy(to.v[l].raw(), from.v[l].raw(), bytes);
  }
  to.len = count;
}

void KvPool::free(int64_t id) {
  slot(id);
  slots_[static_cast<size_t>(id)].reset();
}

bool KvPool::live(int64_t id) const { return id >= 0 && id < size() && slots_[static_cast<size_t>(id)]; }

KvSlot& KvPool::slot(int64_t id) {
  QVL_CHECK(live(id), Input, "sequence " + std::to_string(id) + " is not in the KV pool (unknown or freed)");
  return *slots_[static_cast<size_t>(id)];
}
const KvSlot& KvPool::slot(int64_t id) const { return const_cast<KvPool*>(this)->slot(id); }

}  // namespace qvl::models
