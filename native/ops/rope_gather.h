// RoPE tables of a forward pass gathered from a per-position table. cos/sin depend only on (an
// integer position, a frequency), so a model builds one table of rows per position once
// (rope_table_1d over consecutive positions; models/rope_cache.h) and every forward picks its
// tokens' entries from it instead of evaluating cos/sin again:
//
//   cos[t][i] = table_cos[positions[axis[i]][t] - base][column[i]]   (sin alike), t < T, i < half
//
// axis[i] says which position row (M-RoPE: t, h or w; vision 2-D: h or w) column i follows and
// column[i] which table column it reads. With the table built by rope_table_1d the result is bit
// for bit what rope_table_mrope / _interleaved / _vision_2d compute (same angle, same rounding).
#pragma once
#include <cstdint>

#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

struct RopeGatherParams {
  int64_t T = 0;     // tokens
  int64_t half = 0;  // output row width (rotary_dim / 2), >= 1
  const int64_t* positions = nullptr;  // [axes][ldp]: token t's position on axis a is positions[a·ldp + t]
  int64_t axes = 1, ldp = 0;           // 1 <= axes <= 3, ldp >= T
  const uint8_t* axis = nullptr;       // [half], each < axes
  const int32_t* column = nullptr;     // [half], each in [0, table_cols)
  int64_t base = 0;                    // position of table row 0
  const float* table_cos = nullptr;    // [table_rows, table_cols], rows contiguous
  const float* table_sin = nullptr;
  int64_t table_rows = 0, table_cols = 0;
  float* cos = nullptr;  // [T, half], rows contiguous; must not overlap the tables
  float* sin = nullptr;
};

using RopeGatherFn = void (*)(const RopeGatherParams&, const ExecContext&);

const OpFamily<RopeGatherFn>& rope_gather_family();

// Throws E_INPUT unless p is consistent and every position a column reads lies in
// [base, base + table_rows); the message names the first bad token and axis. Nothing is written
// before the check passes. The kernels assume it has.
void check_rope_gather(const RopeGatherParams& p);
// Validates (E_INPUT) and runs the best variant.
void rope_gather(const RopeGatherParams& p, const ExecContext& ctx);

}  // namespace qvl::ops
