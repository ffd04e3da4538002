// What the two attention_bf16 kernels (attention_bf16_tiles.cpp, attention_bf16_lanes.cpp) share
// around their arithmetic: the buffer their packed keys and values live in, their per-thread
// scratch, and how their work is split over the threads (each (segment, kv head) packed once, then
// each (segment, head, query block) as one work item).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "backends/cpu/thread_scratch.h"
#include "core/arena.h"
#include "core/exec_context.h"
#include "ops/attention.h"

namespace qvl::cpu {

// One call's packed keys and values, 64-byte aligned: from the context's arena when it has one
// (given back when this ends), else allocated here.
class PackedKv {
 public:
  PackedKv(const ExecContext& ctx, size_t bytes);
  void* data() const { return data_; }

 private:
  ArenaScope scope_;
  std::unique_ptr<void, void (*)(void*)> owned_;
  void* data_ = nullptr;
};

// A work item's per-thread scratch buffer number Slot, kept between calls (grown as needed).
template <int Slot>
struct AttentionScratch {};
template <int Slot>
void* attention_scratch(size_t bytes) {
  return thread_scratch<AttentionScratch<Slot>>(bytes, "attention_bf16: scratch");
}

// pack(s, hk) for every segment s and kv head hk, over ctx's pool.
void for_each_kv_head(const ops::AttentionParams& p, const ExecContext& ctx, const std::function<void(int64_t, int64_t)>& pack);

// item(s, h, r0) for every segment s, head h and block of `rows` queries starting at row r0, over
// ctx's pool; each thread runs begin and end (null: nothing) around its share, and stops taking
// items once p.cancel is set (attention() throws once the kernel returns). Non-causal: a head's
// query blocks one after another (its k and v stay warm). Causal: the last blocks first (they see
// the most keys: the long items start early), a block's heads together (GQA's heads share their k
// and v).
void for_each_query_block(const ops::AttentionParams& p, const ExecContext& ctx, int64_t rows,
                          const std::function<void(int64_t, int64_t, int64_t)>& item, void (*begin)() = nullptr,
                          void (*end)() = nullptr);

}  // namespace qvl::cpu
