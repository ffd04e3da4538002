#include "models/rope_cache.h"

#include <algorithm>

#include "ops/rope_gather.h"

namespace qvl::models {

std::shared_ptr<const RopeRowTable> RopeRows::cover(int64_t lo, int64_t hi) const {
  if (hi < lo || hi - lo >= max_rows_) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  const std::shared_ptr<const RopeRowTable> cur = table_;
  if (cur && lo >= cur->base && hi < cur->base + cur->rows) return cur;
  int64_t base = lo, end = hi + 1;  // [base, end)
  if (cur) {
    base = std::min(base, cur->base);
    end = std::max(end, cur->base + cur->rows);
    // Grow geometrically upwards (positions mostly increase), within the bound.
    end = std::max(end, base + std::min(2 * cur->rows, max_rows_));
  } else {
    end = std::max(end, base + std::min<int64_t>(1024, max_rows_));
  }
  if (end - base > max_rows_) base = lo, end = lo + max_rows_;  // hi - lo < max_rows_ (checked above)
  auto t = std::make_shared<RopeRowTable>();
  t->base = base, t->rows = end - base, t->cols = cols();
  std::vector<int64_t> positions(static_cast<size_t>(t->rows));
  for (int64_t i = 0; i < t->rows; ++i) positions[static_cast<size_t>(i)] = base + i;
  t->cos.resize(static_cast<size_t>(t->rows * t->cols));
  t->sin.resize(t->cos.size());
  ops::rope_table_1d(positions.data(), t->rows, f_, t->cos.data(), t->sin.data());
  table_ = t;
  return t;
}

void gather_rope(const RopeRowTable& table, const int64_t* positions, int64_t axes, int64_t T, int64_t half,
                 const uint8_t* axis, const int32_t* column, float* cos, float* sin, const ExecContext& ctx) {
  ops::RopeGatherParams g;
  g.T = T;
  g.half = half;
  g.positions = positions;
  g.axes = axes;
  g.ldp = T;
  g.axis = axis;
  g.column = column;
  g.base = table.base;
  g.table_cos = table.cos.data();
  g.table_sin = table.sin.data();
  g.table_rows = table.rows;
  g.table_cols = table.cols;
  g.cos = cos;
  g.sin = sin;
  ops::rope_gather(g, ctx);
}

}  // namespace qvl::models
