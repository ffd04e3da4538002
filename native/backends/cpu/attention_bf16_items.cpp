#include "backends/cpu/attention_bf16_items.h"

#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "core/threadpool.h"

namespace qvl::cpu {

PackedKv::PackedKv(const ExecContext& ctx, size_t bytes) : scope_(ctx.arena()), owned_(nullptr, std::free) {
  bytes = (bytes + 63) / 64 * 64;
  if (ctx.arena()) {
    data_ = ctx.arena()->allocate(bytes);
    return;
  }
  owned_.reset(std::aligned_alloc(64, bytes));
  QVL_CHECK(owned_ != nullptr, Native, "attention_bf16: out of memory for the packed keys and values");
  data_ = owned_.get();
}

void for_each_kv_head(const ops::AttentionParams& p, const ExecContext& ctx, const std::function<void(int64_t, int64_t)>& pack) {
  ctx.pool().parallel_for(p.n_segments * p.Hkv, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) pack(t / p.Hkv, t % p.Hkv);
  });
}

namespace {
struct ThreadScope {
  void (*end)();
  ThreadScope(void (*begin)(), void (*e)()) : end(e) {
    if (begin) begin();
  }
  ~ThreadScope() {
    if (end) end();
  }
};
}  // namespace

void for_each_query_block(const ops::AttentionParams& p, const ExecContext& ctx, int64_t rows,
                          const std::function<void(int64_t, int64_t, int64_t)>& item, void (*begin)(), void (*end)()) {
  std::vector<int64_t> first(static_cast<size_t>(p.n_segments + 1), 0);  // each segment's first item
  for (int64_t s = 0; s < p.n_segments; ++s) {
    const int64_t qlen = p.segments[s].q_end - p.segments[s].q_start;
    first[s + 1] = first[s] + p.Hq * ((qlen + rows - 1) / rows);
  }
  ctx.pool().parallel_for(first[p.n_segments], 1, [&](int64_t b, int64_t e) {
    ThreadScope scope(begin, end);
    int64_t s = 0;
    for (int64_t t = b; t < e; ++t) {
      if (p.cancel && p.cancel->cancelled()) return;
      while (first[s + 1] <= t) ++s;
      const int64_t local = t - first[s];
      const int64_t blocks = (p.segments[s].q_end - p.segments[s].q_start + rows - 1) / rows;
      const int64_t h = p.causal ? local % p.Hq : local / blocks;
      const int64_t qb = p.causal ? blocks - 1 - local / p.Hq : local % blocks;
      item(s, h, p.segments[s].q_start + qb * rows);
    }
  });
}

}  // namespace qvl::cpu
