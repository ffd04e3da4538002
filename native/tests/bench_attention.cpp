// Timed attention runs for `npm run bench`: one segment of `seq` tokens attending to itself
// (prefill, or the vision tower with causal off), q/k/v/out in owned buffers.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>

#include "core/exec_context.h"
#include "core/error.h"
#include "core/storage.h"
#include "core/threadpool.h"
#include "ops/attention.h"
#include "tests/bench.h"

namespace qvl::bench {

void check_attention_case(const char* who, int64_t heads, int64_t kv_heads, int64_t head_dim, int iters) {
  QVL_CHECK(heads >= 1 && heads <= 1024 && kv_heads >= 1 && kv_heads <= 1024, Input,
            std::string(who) + ": heads and kvHeads must be in [1, 1024]");
  QVL_CHECK(head_dim >= 1 && head_dim <= 1024, Input, std::string(who) + ": headDim must be in [1, 1024]");
  QVL_CHECK(iters >= 1 && iters <= 100000, Input, std::string(who) + ": iters must be in [1, 100000]");
}

double attention_seconds(const AttentionCase& c) {
  QVL_CHECK(c.seq >= 1 && c.seq <= (int64_t{1} << 20), Input, "benchAttention: seq must be in [1, 2^20]");
  check_attention_case("benchAttention", c.heads, c.kv_heads, c.head_dim, c.iters);
  QVL_CHECK(c.family == "attention" || c.family == "attention_bf16", Input,
            "benchAttention: family must be attention or attention_bf16, got '" + c.family + "'");
  const auto& variant = find_variant(c.family == "attention" ? ops::attention_family() : ops::attention_bf16_family(),
                                     c.variant, "benchAttention");
  const double bytes = 4.0 * c.seq * c.head_dim * (2.0 * c.heads + 2.0 * c.kv_heads);
  QVL_CHECK(bytes <= 8.0 * (1 << 30), Input, "benchAttention: problem larger than 8 GiB");

  const int64_t nq = c.seq * c.heads * c.head_dim, nk = c.seq * c.kv_heads * c.head_dim;
  const std::shared_ptr<Storage> q = make_owned(static_cast<size_t>(nq) * 4);
  const std::shared_ptr<Storage> k = make_owned(static_cast<size_t>(nk) * 4);
  const std::shared_ptr<Storage> v = make_owned(static_cast<size_t>(nk) * 4);
  const std::shared_ptr<Storage> o = make_owned(static_cast<size_t>(nq) * 4);
  fill_values(static_cast<float*>(q->data()), static_cast<size_t>(nq), 1);
  fill_values(static_cast<float*>(k->data()), static_cast<size_t>(nk), 2);
  fill_values(static_cast<float*>(v->data()), static_cast<size_t>(nk), 3);

  const ops::AttentionSegment seg{0, c.seq, 0, c.seq};
  ops::AttentionParams p;
  p.q = static_cast<const float*>(q->data());
  p.k = static_cast<const float*>(k->data());
  p.v = static_cast<const float*>(v->data());
  p.out = static_cast<float*>(o->data());
  p.Tq = p.Tk = c.seq;
  p.Hq = c.heads;
  p.Hkv = c.kv_heads;
  p.D = c.head_dim;
  p.ldq = p.ldo = c.heads * c.head_dim;
  p.ldk = p.ldv = c.kv_heads * c.head_dim;
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  p.causal = c.causal;
  p.segments = &seg;
  p.n_segments = 1;
  ops::check_attention(p);

  const std::shared_ptr<ThreadPool> pool = default_pool();
  // A scratch arena, as a model's context has: without one the bf16 variants allocate their packed
  // k and v per call, and above glibc's mmap threshold each call paid that much in page faults
  // (1024 tokens of 16 heads: 9 ms a call became 19 ms after the first).
  Arena arena;
  ExecContext ctx(*pool);
  ctx.with_arena(&arena);
  variant.fn(p, ctx);  // warm-up: thread start, scratch buffers, page faults
  double best = 1e30;
  for (int i = 0; i < c.iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    variant.fn(p, ctx);
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return best;
}

}  // namespace qvl::bench
