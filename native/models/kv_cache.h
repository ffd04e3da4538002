// Keys and values of every decoder layer for a batch of sequences. Row b owns cache rows
// [b·capacity, (b+1)·capacity); its first `pad[b]` entries are left padding that attention skips.
#pragma once
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace qvl::models {

struct KvCache {
  KvCache(int64_t layers, int64_t batch, int64_t capacity, int64_t kv_dim)
      : layers(layers), batch(batch), capacity(capacity), kv_dim(kv_dim), len(batch, 0), pad(batch, 0) {
    QVL_CHECK(layers > 0 && batch > 0 && capacity > 0 && kv_dim > 0, Input, "empty KV cache");
    for (int64_t l = 0; l < layers; ++l) {
      k.push_back(Tensor::empty(DType::F32, {batch * capacity, kv_dim}));
      v.push_back(Tensor::empty(DType::F32, {batch * capacity, kv_dim}));
    }
  }
  int64_t layers, batch, capacity, kv_dim;
  std::vector<Tensor> k, v;
  std::vector<int64_t> len;  // tokens held per row (padding included)
  std::vector<int64_t> pad;  // leading padding tokens per row
};

}  // namespace qvl::models
