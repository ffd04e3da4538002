// Threading for the row-wise CPU kernels: split the work so that each task has at least
// grain_elems elements (tiny calls stay on the calling thread) and, for elementwise ops, split
// long rows too so that a single huge row still uses every thread.
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/threadpool.h"

namespace qvl::cpu {

// fn(r0, r1) over disjoint row ranges covering [0, rows).
template <class Fn>
void parallel_rows(ThreadPool& pool, int64_t rows, int64_t cols, int64_t grain_elems, const Fn& fn) {
  const int64_t grain = std::max<int64_t>(1, grain_elems / std::max<int64_t>(cols, 1));
  pool.parallel_for(rows, grain, [&](int64_t r0, int64_t r1) { fn(r0, r1); });
}

// fn(r, c0, c1) over disjoint pieces covering rows [0, rows) x columns [0, cols). A piece is a
// whole row unless rows are longer than grain_elems (a multiple of 64 keeps pieces aligned).
template <class Fn>
void parallel_elems(ThreadPool& pool, int64_t rows, int64_t cols, int64_t grain_elems, const Fn& fn) {
  const int64_t piece = cols > grain_elems ? grain_elems : cols;
  const int64_t per_row = (cols + piece - 1) / piece;
  const int64_t grain = std::max<int64_t>(1, grain_elems / piece);
  pool.parallel_for(rows * per_row, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r = t / per_row, c0 = (t % per_row) * piece;
      fn(r, c0, std::min(cols, c0 + piece));
    }
  });
}

}  // namespace qvl::cpu
