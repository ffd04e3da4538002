// How the decode rows kernels (dense AVX-512 / AVX2, fp8) walk a thread's run of weight rows: as R
// streams, each a contiguous R-th of the run, rather than R adjacent rows at a time. A row of
// K = 1536 bf16 is 3 KiB, so R adjacent rows made R short streams that restarted every block and
// the hardware prefetcher never caught up: a bf16 decode step at the 2B shapes (2 Sapphire Rapids
// threads, variants interleaved in one process) streamed at 24 GB/s, split at 30 GB/s (the read
// floor), 127 -> 101-106 ms; K = 8960 rows (17.5 KiB) were at 28-30 GB/s either way.
#pragma once
#include <cstdint>

namespace qvl::cpu {

// block(n, part) for n in [n0, n0 + part): rows n, n + part, ..., n + (R - 1)·part, one from each
// stream; then one(n) for each row the R streams leave over at the run's end.
template <int R, class Block, class One>
inline void row_streams(int64_t n0, int64_t n1, Block&& block, One&& one) {
  const int64_t part = (n1 - n0) / R;
  for (int64_t n = n0; n < n0 + part; ++n) block(n, part);
  for (int64_t n = n0 + R * part; n < n1; ++n) one(n);
}

}  // namespace qvl::cpu
