// Per-thread scratch kept between calls: a kernel task would otherwise allocate (and fault in)
// hundreds of KiB every time it runs. One buffer per thread and Tag (each caller names its own
// tag types, so no two users share a buffer); it only grows, 64-byte aligned, freed when the
// thread ends.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace qvl::cpu {

template <class Tag>
void* thread_scratch(size_t bytes, const char* what) {
  struct Buf {
    void* p = nullptr;
    size_t n = 0;
    ~Buf() { std::free(p); }
  };
  thread_local Buf buf;
  if (buf.n < bytes) {
    std::free(buf.p);
    buf.n = 0;  // a failed allocation leaves no stale size behind
    buf.p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!buf.p) fail(ErrorCode::Native, std::string(what) + ": out of memory for a " + std::to_string(bytes) + "-byte buffer");
    buf.n = bytes;
  }
  return buf.p;
}

}  // namespace qvl::cpu
