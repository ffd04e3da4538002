// The KV pool: the keys and values of every decoder layer for a session's sequences, one slot per
// sequence. Slots are added, grown and freed independently, so a finished sequence gives its
// memory back and a new one can join without touching the others. (Per-sequence slots now; fixed
// size blocks can replace them when a device backend wants paging.)
#pragma once
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace qvl::models {

// One sequence: per layer, k and v [capacity, kv_dim] of the pool's dtype. Its first `pad` entries are left padding
// that attention skips; `len` counts every entry written (padding included).
struct KvSlot {
  std::vector<Tensor> k, v;
  int64_t capacity = 0, len = 0, pad = 0;
};

class KvPool {
 public:
  // dtype: F32 (exact: what the conformance fixtures are measured with) or BF16 (half the memory;
  // keys and values are rounded once when stored; attention reads them as stored).
  KvPool(int64_t layers, int64_t kv_dim, DType dtype = DType::F32);

  // A new empty slot holding up to `capacity` tokens; returns its id (ids are never reused).
  int64_t add(int64_t capacity);
  // Raises a slot's capacity, keeping what it holds. E_INPUT when it would shrink below its length.
  void grow(int64_t id, int64_t capacity);
  // Drops a slot's memory; later use of its id is E_INPUT.
  void free(int64_t id);
  // Copies the first `count` entries of `src` (every layer's keys and values, bit for bit) into the
  // empty slot `dst`, which then holds them: a prompt that starts with a cached prefix takes its KV
  // instead of recomputing it. E_INPUT unless both are live and distinct, `src` holds `count`
  // entries without left padding, `dst` is empty and unpadded and has room for them.
  void copy_prefix(int64_t src, int64_t dst, int64_t count);
  // E_INPUT for an unknown or freed id.
  KvSlot& slot(int64_t id);
  const KvSlot& slot(int64_t id) const;
  bool live(int64_t id) const;
  // Ids handed out so far (freed ones included): valid ids are [0, size()).
  int64_t size() const { return static_cast<int64_t>(slots_.size()); }
  int64_t layers() const { return layers_; }
  int64_t kv_dim() const { return kv_dim_; }
  DType dtype() const { return dtype_; }

 private:
  int64_t layers_, kv_dim_;
  DType dtype_;
  std::vector<std::unique_ptr<KvSlot>> slots_;
};

}  // namespace qvl::models
