// The scratch arena: per-step intermediates (hidden states, q/k/v, attention output, MLP
// activations, the step's logits rows) and the kernels' per-call temporaries (x converted or
// quantized for a matmul: backends/cpu/call_scratch.h) are bumped out of a few large chunks instead
// of a fresh zero-filled heap allocation per op per layer.
//
// - Allocations are 64-byte aligned and NOT zero-filled: every op writes its whole output.
// - Chunks are kept across steps. A step that needs more than the arena holds adds a chunk;
//   reset() (after each engine step and vision encode) rewinds to empty and, when the step
//   spread over several chunks, merges them into one chunk of the high-water size, so from the
//   second step of a given shape on, a step allocates nothing from the heap. The arena never
//   shrinks below its high-water mark unless release() is called.
// - ArenaScope rewinds to a mark when it goes out of scope: a layer's temporaries are reused by
//   the next layer. Tensors from the arena are views ("arena" Storage, not owning): they must not
//   outlive the scope (or reset) they were made in. Outputs that outlive a step (logits returned
//   to JS, vision features, the KV cache) are owned allocations, never arena tensors.
// - Not thread-safe: one arena serves one thread of control at a time (one per model session and
//   one per vision encode; see ExecContext). The pool's workers only write into tensors the
//   calling thread allocated.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace qvl {

class Arena {
 public:
  static constexpr size_t kAlign = 64;
  // The smallest chunk the arena allocates (a step's first chunk is at least this big).
  explicit Arena(size_t min_chunk_bytes = size_t(1) << 20);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  struct Mark {
    size_t chunk = 0;   // index of the chunk the bump pointer is in
    size_t offset = 0;  // bytes used in that chunk
    size_t in_use = 0;  // bytes handed out (aligned sizes) up to the mark
  };

  // `bytes` bytes, 64-byte aligned, uninitialised; valid until the enclosing scope ends or reset().
  // E_INPUT when the size cannot be represented once rounded, E_NATIVE when the heap refuses.
  void* allocate(size_t bytes);
  // A contiguous tensor backed by the arena (Storage kind "arena"); E_INPUT on a negative or
  // overflowing shape.
  Tensor tensor(DType dtype, std::vector<int64_t> shape);

  Mark mark() const { return Mark{cur_, offset_, in_use_}; }
  // Frees everything allocated after m (m must come from this arena, since the last reset).
  void rewind(const Mark& m);
  // Rewinds to empty; merges the chunks into one of the high-water size when a step used several.
  void reset();
  // Frees every chunk (the next step starts from nothing).
  void release();

  // The most bytes in use at once since construction (or release()): the step's scratch peak.
  size_t peak_bytes() const { return peak_; }
  size_t in_use_bytes() const { return in_use_; }
  size_t capacity_bytes() const;
  size_t chunk_count() const { return chunks_.size(); }
  // How many chunks were ever taken from the heap: unchanged across steps once warm.
  uint64_t heap_allocations() const { return heap_allocations_; }

 private:
  struct Chunk {
    char* data = nullptr;
    size_t bytes = 0;
  };
  Chunk new_chunk(size_t bytes);
  static void free_chunk(Chunk& c);

  size_t min_chunk_;
  std::vector<Chunk> chunks_;
  size_t cur_ = 0;
  size_t offset_ = 0;
  size_t in_use_ = 0;
  size_t peak_ = 0;
  uint64_t heap_allocations_ = 0;
};

// Rewinds the arena to where it stood at construction when it goes out of scope. A null arena
// makes it a no-op (contexts without scratch space).
class ArenaScope {
 public:
  explicit ArenaScope(Arena* arena) : arena_(arena) {
    if (arena_) mark_ = arena_->mark();
  }
  ~ArenaScope() {
    if (arena_) arena_->rewind(mark_);
  }
  ArenaScope(const ArenaScope&) = delete;
  ArenaScope& operator=(const ArenaScope&) = delete;

 private:
  Arena* arena_;
  Arena::Mark mark_;
};

}  // namespace qvl
