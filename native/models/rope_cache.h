// RoPE tables computed once per model and shape, not on every forward.
//
// RopeRows: one model's cos/sin rows per integer position (rope_table_1d over consecutive
// positions), grown as larger positions appear and shared by every forward after; a forward's own
// tables are then gathered from it by the rope_gather op, bit for bit what the direct table
// builders give. Thread-safe: a grown table replaces the old one, and forwards still holding the
// old one keep it alive.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/exec_context.h"
#include "ops/rope.h"

namespace qvl::models {

struct RopeRowTable {
  int64_t base = 0, rows = 0, cols = 0;  // positions [base, base + rows), cols = rotary_dim / 2
  std::vector<float> cos, sin;           // [rows, cols]
};

// A forward's cos/sin tables [T, half] from `table` through the rope_gather op: column i follows
// position row axis[i] of positions ([axes][T]) and reads table column column[i].
void gather_rope(const RopeRowTable& table, const int64_t* positions, int64_t axes, int64_t T, int64_t half,
                 const uint8_t* axis, const int32_t* column, float* cos, float* sin, const ExecContext& ctx);

class RopeRows {
 public:
  // max_rows bounds the table (a span of positions past it is not cached).
  RopeRows(const ops::RopeFreqs& f, int64_t max_rows) : f_(f), max_rows_(max_rows) {}
  // A table holding every position in [lo, hi] (lo <= hi); null when that span exceeds max_rows.
  std::shared_ptr<const RopeRowTable> cover(int64_t lo, int64_t hi) const;
  int64_t cols() const { return f_.rotary_dim / 2; }

 private:
  ops::RopeFreqs f_;
  int64_t max_rows_;
  mutable std::mutex mu_;
  mutable std::shared_ptr<const RopeRowTable> table_;
};

}  // namespace qvl::models
