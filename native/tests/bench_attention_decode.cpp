// Timed decode-step attention for `npm run bench -- decode`: every layer's attention for one new
// token of each sequence against its own KV cache, laid out as the KV pool stores it (per
// sequence and layer, k and v [capacity, Hkv·D] f32 or bf16, capacity one past the context), called as
// TextDecoder::attention_block calls it: one call per layer, a segment per sequence. The caches of all layers together are the bytes a decode
// step must read, so with enough layers they spill the last-level cache as they do in a model.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/exec_context.h"
#include "core/storage.h"
#include "core/threadpool.h"
#include "ops/attention.h"
#include "tests/bench.h"

namespace qvl::bench {

double attention_decode_seconds(const AttentionDecodeCase& c) {
  QVL_CHECK(c.context >= 1 && c.context <= (int64_t{1} << 22), Input, "benchAttentionDecode: context must be in [1, 2^22]");
  check_attention_case("benchAttentionDecode", c.heads, c.kv_heads, c.head_dim, c.iters);
  QVL_CHECK(c.layers >= 1 && c.layers <= 1024 && c.sequences >= 1 && c.sequences <= 1024, Input,
            "benchAttentionDecode: layers and sequences must be in [1, 1024]");
  QVL_CHECK(c.family == "attention" || c.family == "attention_bf16_decode", Input,
            "benchAttentionDecode: family must be attention or attention_bf16_decode, got '" + c.family + "'");
  const auto& variant = find_variant(c.family == "attention" ? ops::attention_family() : ops::attention_bf16_decode_family(),
                                     c.variant, "benchAttentionDecode");
  QVL_CHECK(c.kv_dtype == "f32" || c.kv_dtype == "bf16", Input, "benchAttentionDecode: kvDtype must be f32 or bf16, got '" + c.kv_dtype + "'");
  const DType kv_dtype = c.kv_dtype == "bf16" ? DType::BF16 : DType::F32;
  const size_t elem = dtype_size(kv_dtype);
  const int64_t kvd = c.kv_heads * c.head_dim, qd = c.heads * c.head_dim, cap = c.context + 1;
  const double bytes = kv_decode_bytes(c) * (static_cast<double>(cap) / c.context);
  QVL_CHECK(bytes <= 8.0 * (1 << 30), Input, "benchAttentionDecode: caches larger than 8 GiB");

  // One buffer per (layer, sequence) and k/v, as the pool's slots hold them (bf16: the f32 values
  // rounded, as the pool rounds them).
  std::vector<std::shared_ptr<Storage>> k, v;
  std::vector<float> wide(kv_dtype == DType::BF16 ? static_cast<size_t>(cap * kvd) : 0);
  auto cache = [&](uint64_t seed) {
    std::shared_ptr<Storage> s = make_owned(static_cast<size_t>(cap * kvd) * elem);
    if (kv_dtype == DType::F32) {
      fill_values(static_cast<float*>(s->data()), static_cast<size_t>(cap * kvd), seed);
      return s;
    }
    fill_values(wide.data(), wide.size(), seed);
    uint16_t* h = static_cast<uint16_t*>(s->data());
    for (size_t j = 0; j < wide.size(); ++j) h[j] = f32_to_bf16(wide[j]);
    return s;
  };
  for (int64_t i = 0; i < c.layers * c.sequences; ++i) {
    k.push_back(cache(2 * i + 2));
    v.push_back(cache(2 * i + 3));
  }
  const std::shared_ptr<Storage> q = make_owned(static_cast<size_t>(c.sequences * qd) * 4);
  const std::shared_ptr<Storage> o = make_owned(static_cast<size_t>(c.sequences * qd) * 4);
  fill_values(static_cast<float*>(q->data()), static_cast<size_t>(c.sequences * qd), 1);

  const std::shared_ptr<ThreadPool> pool = default_pool();
  const ExecContext ctx(*pool);
  // One call per layer with a segment per sequence over its own cache, as the model steps.
  std::vector<ops::AttentionSegment> segs(static_cast<size_t>(c.sequences));
  auto step = [&] {
    for (int64_t l = 0; l < c.layers; ++l) {
      for (int64_t s = 0; s < c.sequences; ++s) {
        const size_t i = static_cast<size_t>(l * c.sequences + s);
        segs[static_cast<size_t>(s)] = {s, s + 1, 0, c.context, k[i]->data(), v[i]->data()};
      }
      ops::AttentionParams p;
      p.q = static_cast<const float*>(q->data());
      p.out = static_cast<float*>(o->data());
      p.ldq = p.ldo = qd;
      p.ldk = p.ldv = kvd;
      p.kv_dtype = kv_dtype;
      p.Tq = c.sequences;
      p.Tk = cap;
      p.Hq = c.heads;
      p.Hkv = c.kv_heads;
      p.D = c.head_dim;
      p.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
      p.causal = true;
      p.segments = segs.data();
      p.n_segments = c.sequences;
      ops::check_attention(p);
      variant.fn(p, ctx);
    }
  };
  step();  // warm-up: thread start, scratch buffers, page faults
  double best = 1e30;
  for (int i = 0; i < c.iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return best;
}

double kv_decode_bytes(const AttentionDecodeCase& c) {
  return 2.0 * (c.kv_dtype == "bf16" ? 2.0 : 4.0) * static_cast<double>(c.layers) * c.sequences * c.context * c.kv_heads * c.head_dim;
}

}  // namespace qvl::bench
