#include "core/checksum.h"

#include <cstring>

namespace qvl {

namespace {

constexpr uint64_t kMul = 0x9e3779b97f4a7c15ull;

inline uint64_t mix(uint64_t h, uint64_t w) {
  h ^= w;
  h *= kMul;
  return (h << 29) | (h >> 35);
}

uint64_t run(void* dst, const void* src, size_t bytes) {
  const unsigned char* s = static_cast<const unsigned char*>(src);
  unsigned char* d = static_cast<unsigned char*>(dst);
  uint64_t h[4] = {1, 2, 3, 4};
  size_t i = 0;
  for (; i + 32 <= bytes; i += 32) {
    uint64_t w[4];
    std::memcpy(w, s + i, 32);
    if (d) std::memcpy(d + i, w, 32);
    for (int l = 0; l < 4; ++l) h[l] = mix(h[l], w[l]);
  }
  uint64_t tail = 0;
  for (size_t j = i; j < bytes; ++j) {
    tail = (tail << 8) | s[j];
    if (d) d[j] = s[j];
  }
  uint64_t out = mix(mix(h[0], h[1]), mix(h[2], h[3]));
  return mix(mix(out, tail), static_cast<uint64_t>(bytes));
}

}  // namespace

uint64_t checksum64(const void* data, size_t bytes) { return run(nullptr, data, bytes); }

uint64_t copy_checksum64(void* dst, const void* src, size_t bytes) { return run(dst, src, bytes); }

}  // namespace qvl
