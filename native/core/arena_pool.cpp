#include "core/arena_pool.h"

namespace qvl {

ArenaPool::Lease ArenaPool::take() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Arena> a = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(a));
    }
  }
  return Lease(*this, std::make_unique<Arena>());
}

void ArenaPool::give_back(std::unique_ptr<Arena> a) noexcept {
  // Too large: freed before reset() would merge its chunks into one of its peak size.
  if (a->peak_bytes() > keep_bytes_ || a->capacity_bytes() > keep_bytes_) return;
  try {
    a->reset();
  } catch (...) {
    return;  // the merged chunk could not be allocated: the arena is dropped (freed) instead
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < keep_) idle_.push_back(std::move(a));
}

size_t ArenaPool::idle() const {
  std::lock_guard<std::mutex> lock(mu_);
  return idle_.size();
}

size_t ArenaPool::idle_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t total = 0;
  for (const auto& a : idle_) total += a->capacity_bytes();
  return total;
}

}  // namespace qvl
