// Reading a buffer as fast as this CPU streams memory, as a decode matmul streams its weights:
// what the placement probe (core/placement.h) and the memory floor of `npm run bench` time.
#pragma once
#include <cstddef>
#include <cstdint>

namespace qvl {

// The sum (mod 2^64) of the buffer's whole 64-bit words (a tail of under 8 bytes is not read).
// The result only keeps the reads from being optimised away. `p` needs no alignment.
uint64_t read_stream(const void* p, size_t bytes);
// The plain loop read_stream must agree with (its parity reference, and its fallback).
uint64_t read_stream_ref(const void* p, size_t bytes);

}  // namespace qvl
