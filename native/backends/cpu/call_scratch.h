// Temporaries of one kernel call (x converted or quantized, per-row sums): from the context's
// arena when it has one, rewound when this object goes, else owned heap blocks freed with it.
// Neither path zero-fills: a std::vector of the 1288x980 vision tower's quantized activations
// (6440 x 5120 bytes) cleared and faulted in its pages on every call.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/error.h"
#include "core/exec_context.h"

namespace qvl::cpu {

class CallScratch {
 public:
  explicit CallScratch(const ExecContext& ctx) : arena_(ctx.arena()), scope_(ctx.arena()) {}
  CallScratch(const CallScratch&) = delete;
  CallScratch& operator=(const CallScratch&) = delete;

  // n uninitialised values of T, 64-byte aligned, valid while this object lives.
  template <class T>
  T* take(size_t n, const char* what) {
    QVL_CHECK(n <= (SIZE_MAX - Arena::kAlign) / sizeof(T), Input, std::string(what) + ": " + std::to_string(n) + " values do not fit in memory");
    const size_t bytes = (n * sizeof(T) + Arena::kAlign - 1) / Arena::kAlign * Arena::kAlign;
    if (arena_) return static_cast<T*>(arena_->allocate(bytes));
    void* p = std::aligned_alloc(Arena::kAlign, bytes == 0 ? Arena::kAlign : bytes);
    QVL_CHECK(p != nullptr, Native, std::string(what) + ": out of memory for a " + std::to_string(bytes) + "-byte buffer");
    owned_.emplace_back(p, std::free);
    return static_cast<T*>(p);
  }

 private:
  Arena* arena_;
  ArenaScope scope_;
  std::vector<std::unique_ptr<void, void (*)(void*)>> owned_;
};

}  // namespace qvl::cpu
