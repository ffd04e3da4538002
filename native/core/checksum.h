// A fast 64-bit checksum of a byte range (four interleaved multiply-rotate lanes over 8-byte
// words): detects a truncated, overwritten or bit-rotted cache file, not an adversary.
#pragma once
#include <cstddef>
#include <cstdint>

namespace qvl {

uint64_t checksum64(const void* data, size_t bytes);

// Copies src to dst and returns checksum64 of the bytes (one pass over them).
uint64_t copy_checksum64(void* dst, const void* src, size_t bytes);

}  // namespace qvl
