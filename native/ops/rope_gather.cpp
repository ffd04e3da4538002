#include "ops/rope_gather.h"

#include "ops/backends.h"

#include <string>

#include "ops/rows_check.h"

namespace qvl::ops {

const OpFamily<RopeGatherFn>& rope_gather_family() {
  static const OpFamily<RopeGatherFn> family("rope_gather", QVL_BACKEND_VARIANTS(rope_gather));
  return family;
}

namespace {

bool disjoint(const float* a, int64_t na, const float* b, int64_t nb) {
  const uintptr_t a0 = reinterpret_cast<uintptr_t>(a), b0 = reinterpret_cast<uintptr_t>(b);
  return na == 0 || nb == 0 || a0 + static_cast<uintptr_t>(na) * sizeof(float) <= b0 ||
         b0 + static_cast<uintptr_t>(nb) * sizeof(float) <= a0;
}

}  // namespace

void check_rope_gather(const RopeGatherParams& p) {
  const char* op = "rope_gather";
  QVL_CHECK(p.T >= 0, Input, "rope_gather: T must be >= 0, got " + std::to_string(p.T));
  QVL_CHECK(p.half >= 1 && p.half <= (int64_t{1} << 20), Input,
            "rope_gather: half must be in [1, 2^20], got " + std::to_string(p.half));
  QVL_CHECK(p.axes >= 1 && p.axes <= 3, Input, "rope_gather: axes must be 1, 2 or 3, got " + std::to_string(p.axes));
  QVL_CHECK(p.ldp >= p.T, Input, "rope_gather: ldp (" + std::to_string(p.ldp) + ") must be >= T (" + std::to_string(p.T) + ")");
  QVL_CHECK(p.table_rows >= 0 && p.table_cols >= 1 && p.table_cols <= (int64_t{1} << 20), Input,
            "rope_gather: table of " + std::to_string(p.table_rows) + " x " + std::to_string(p.table_cols) +
                " is not a valid table");
  check_rows(op, "axis", p.axis, 1, p.half, p.half, 1);
  check_rows(op, "column", p.column, 1, p.half, p.half, sizeof(int32_t));
  for (int64_t i = 0; i < p.half; ++i) {
    QVL_CHECK(p.axis[i] < p.axes, Input,
              "rope_gather: axis[" + std::to_string(i) + "] = " + std::to_string(p.axis[i]) + " is not below axes");
    QVL_CHECK(p.column[i] >= 0 && p.column[i] < p.table_cols, Input,
              "rope_gather: column[" + std::to_string(i) + "] = " + std::to_string(p.column[i]) +
                  " is outside the table's " + std::to_string(p.table_cols) + " columns");
  }
  if (p.T == 0) return;
  check_rows(op, "positions", p.positions, p.axes, p.T, p.ldp, sizeof(int64_t));
  check_rows(op, "table_cos", p.table_cos, p.table_rows, p.table_cols, p.table_cols, sizeof(float));
  check_rows(op, "table_sin", p.table_sin, p.table_rows, p.table_cols, p.table_cols, sizeof(float));
  check_rows(op, "cos", p.cos, p.T, p.half, p.half, sizeof(float));
  check_rows(op, "sin", p.sin, p.T, p.half, p.half, sizeof(float));
  // Axes no column reads need not hold valid positions.
  bool used[3] = {false, false, false};
  for (int64_t i = 0; i < p.half; ++i) used[p.axis[i]] = true;
  for (int64_t a = 0; a < p.axes; ++a) {
    if (!used[a]) continue;
    const int64_t* pos = p.positions + a * p.ldp;
    for (int64_t t = 0; t < p.T; ++t) {
      int64_t row = 0;
      if (__builtin_sub_overflow(pos[t], p.base, &row) || row < 0 || row >= p.table_rows)
        fail(ErrorCode::Input, "rope_gather: position " + std::to_string(pos[t]) + " of token " + std::to_string(t) +
                                   " on axis " + std::to_string(a) + " is outside the table's positions [" +
                                   std::to_string(p.base) + ", " + std::to_string(p.base + p.table_rows) + ")");
    }
  }
  const int64_t nt = p.table_rows * p.table_cols, no = p.T * p.half;
  QVL_CHECK(disjoint(p.cos, no, p.sin, no) && disjoint(p.cos, no, p.table_cos, nt) && disjoint(p.cos, no, p.table_sin, nt) &&
                disjoint(p.sin, no, p.table_cos, nt) && disjoint(p.sin, no, p.table_sin, nt),
            Input, "rope_gather: cos/sin overlap each other or the tables");
}

void rope_gather(const RopeGatherParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "rope_gather");
  check_rope_gather(p);
  if (p.T == 0) return;
  rope_gather_family().best(ctx.device()).fn(p, ctx);
}

}  // namespace qvl::ops
