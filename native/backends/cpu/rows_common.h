// Shared driver of the optimized rows variants: threads over index entries (each task at least
// kGrain floats), resolves the index of each entry, and hands whole rows to a copy or add kernel.
#pragma once
#include <cstdint>
#include <cstring>

#include "backends/cpu/rows_cpu.h"
#include "ops/rows.h"

namespace qvl::cpu::rows_detail {

constexpr int64_t kGrain = 4096;  // memory-bound: threads only pay off for big blocks

// add(out, in, cols): out[c] += in[c].
template <class AddFn>
void run(const ops::RowsParams& p, ThreadPool& pool, AddFn add) {
  const size_t bytes = static_cast<size_t>(p.cols) * sizeof(float);
  const int64_t* i64 = p.idx_dtype == DType::I64 ? static_cast<const int64_t*>(p.idx) : nullptr;
  const int32_t* i32 = p.idx_dtype == DType::I32 ? static_cast<const int32_t*>(p.idx) : nullptr;
  auto index = [&](int64_t i) -> int64_t { return i64 ? i64[i] : static_cast<int64_t>(i32[i]); };
  parallel_rows(pool, p.n, p.cols, kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      switch (p.kind) {
        case ops::RowsKind::Add:
          add(p.dst + i * p.ldd, p.src + i * p.lds, p.cols);
          break;
        case ops::RowsKind::Gather: {
          const int64_t s = index(i);
          if (s >= 0) std::memcpy(p.dst + i * p.ldd, p.src + s * p.lds, bytes);
          break;
        }
        case ops::RowsKind::Scatter: {
          const int64_t d = index(i);
          if (d >= 0) std::memcpy(p.dst + d * p.ldd, p.src + i * p.lds, bytes);
          break;
        }
        case ops::RowsKind::AddIndexed: {
          const int64_t s = index(i);
          if (s >= 0) add(p.dst + i * p.ldd, p.src + s * p.lds, p.cols);
          break;
        }
      }
    }
  });
}

}  // namespace qvl::cpu::rows_detail
