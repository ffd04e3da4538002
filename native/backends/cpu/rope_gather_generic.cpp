// RoPE table gather by runs: consecutive output columns that follow one axis and read consecutive
// table columns (M-RoPE sections, the two halves of the vision table) are copied with one memcpy
// per token. Threads over tokens.
#include <cstring>
#include <vector>

#include "backends/cpu/rows_cpu.h"
#include "ops/rope_gather.h"

namespace qvl::cpu {

namespace {

struct Run {
  int64_t out_col, table_col, len, axis;
};

std::vector<Run> runs_of(const ops::RopeGatherParams& p) {
  std::vector<Run> runs;
  for (int64_t i = 0; i < p.half; ++i) {
    if (!runs.empty()) {
      Run& r = runs.back();
      if (r.axis == p.axis[i] && r.table_col + r.len == p.column[i]) {
        ++r.len;
        continue;
      }
    }
    runs.push_back({i, p.column[i], 1, p.axis[i]});
  }
  return runs;
}

}  // namespace

void rope_gather_generic(const ops::RopeGatherParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  const std::vector<Run> runs = runs_of(p);
  parallel_rows(pool, p.T, 2 * p.half, 16384, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      for (const Run& r : runs) {
        const int64_t e = (p.positions[r.axis * p.ldp + t] - p.base) * p.table_cols + r.table_col;
        const size_t bytes = static_cast<size_t>(r.len) * sizeof(float);
        std::memcpy(p.cos + t * p.half + r.out_col, p.table_cos + e, bytes);
        std::memcpy(p.sin + t * p.half + r.out_col, p.table_sin + e, bytes);
      }
    }
  });
}

}  // namespace qvl::cpu
