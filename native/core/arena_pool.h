// Scratch arenas kept between uses (core/arena.h), for work that is not one session's: a model's
// vision encodes. A fresh arena per encode faulted its scratch in anew (2 MiB pages the kernel
// zeroes): the 2B tower on a 448x448 image, 60 MiB of scratch, spent 30-100 ms of system time an
// encode on it against 12-17 ms with a kept arena (of 2.2 s). take() lends a kept arena when one
// is free and a new one otherwise, so concurrent encodes never share; the lease hands it back
// reset. An arena whose scratch outgrew `keep_bytes` (a large image, a video) is freed instead: a
// model that once encoded a large input does not hold that much scratch for good.
#pragma once
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "core/arena.h"

namespace qvl {

class ArenaPool {
 public:
  // At most `keep` idle arenas kept, each holding at most `keep_bytes` of chunks.
  ArenaPool(size_t keep, size_t keep_bytes) : keep_(keep), keep_bytes_(keep_bytes) {}
  ArenaPool(const ArenaPool&) = delete;
  ArenaPool& operator=(const ArenaPool&) = delete;

  class Lease {
   public:
    Lease(ArenaPool& pool, std::unique_ptr<Arena> a) : pool_(&pool), arena_(std::move(a)) {}
    Lease(Lease&& o) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() { if (arena_) pool_->give_back(std::move(arena_)); }
    Arena& operator*() const { return *arena_; }
    Arena* operator->() const { return arena_.get(); }
    Arena* get() const { return arena_.get(); }

   private:
    ArenaPool* pool_;
    std::unique_ptr<Arena> arena_;
  };

  Lease take();
  // Idle arenas and the bytes their chunks hold (for tests).
  size_t idle() const;
  size_t idle_bytes() const;

 private:
  void give_back(std::unique_ptr<Arena> a) noexcept;

  const size_t keep_, keep_bytes_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Arena>> idle_;
};

}  // namespace qvl
