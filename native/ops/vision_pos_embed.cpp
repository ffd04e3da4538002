#include "ops/vision_pos_embed.h"

#include "ops/backends.h"

#include <string>

#include "backends/cpu/vision_pos_embed_common.h"
#include "ops/rows_check.h"

namespace qvl::ops {

const OpFamily<VisionPosEmbedFn>& vision_pos_embed_family() {
  static const OpFamily<VisionPosEmbedFn> family("vision_pos_embed", QVL_BACKEND_VARIANTS(vision_pos_embed));
  return family;
}

void linspace_f32(float start, float end, int64_t n, float* out) {
  if (n <= 0) return;
  if (n == 1) {
    out[0] = start;
    return;
  }
  using cpu::pos_embed::rounded;
  const float step = (end - start) / static_cast<float>(n - 1);
  const int64_t half = n / 2;
  for (int64_t i = 0; i < n; ++i) {
    out[i] = i < half ? start + rounded(step * static_cast<float>(i))
                      : end - rounded(step * static_cast<float>(n - 1 - i));
  }
}

int64_t vision_pos_embed_rows(const int64_t* grids, int64_t n_grids, int64_t merge) {
  QVL_CHECK(merge >= 1, Input, "vision_pos_embed: spatial merge size must be >= 1, got " + std::to_string(merge));
  QVL_CHECK(n_grids >= 0, Input, "vision_pos_embed: n_grids must be >= 0");
  if (n_grids > 0) QVL_CHECK(grids != nullptr, Input, "vision_pos_embed: grids is null");
  int64_t total = 0;
  for (int64_t i = 0; i < n_grids; ++i) {
    const int64_t* g = grids + 3 * i;
    const std::string where = "vision_pos_embed: grid " + std::to_string(i) + " (t=" + std::to_string(g[0]) +
                              ", h=" + std::to_string(g[1]) + ", w=" + std::to_string(g[2]) + ")";
    QVL_CHECK(g[0] >= 1 && g[1] >= 1 && g[2] >= 1, Input, where + " needs t, h, w >= 1");
    QVL_CHECK(g[1] % merge == 0 && g[2] % merge == 0, Input,
              where + ": h and w must be multiples of the merge size " + std::to_string(merge));
    int64_t hw = 0, n = 0;
    const bool overflow = __builtin_mul_overflow(g[1], g[2], &hw) || __builtin_mul_overflow(hw, g[0], &n) ||
                          __builtin_add_overflow(total, n, &total);
    QVL_CHECK(!overflow, Input, where + ": patch count overflows");
  }
  return total;
}

void check_vision_pos_embed(const VisionPosEmbedParams& p) {
  const DType dt = p.table_dtype;
  QVL_CHECK(dt == DType::F32 || dt == DType::BF16 || dt == DType::F16, Input,
            std::string("vision_pos_embed: table must be F32, BF16 or F16, got ") + dtype_name(dt));
  QVL_CHECK(p.table_rows >= 1 && p.table_rows <= (int64_t{1} << 24), Input,
            "vision_pos_embed: the table needs between 1 and 2^24 rows, got " + std::to_string(p.table_rows));
  check_rows("vision_pos_embed", "table", p.table, p.table_rows, p.hidden, p.ldt, dtype_size(dt));
  const int64_t side = cpu::pos_embed::exact_sqrt(p.table_rows);
  QVL_CHECK(side * side == p.table_rows, Input,
            "vision_pos_embed: the table has " + std::to_string(p.table_rows) + " rows, not a square grid");
  const int64_t rows = vision_pos_embed_rows(p.grids, p.n_grids, p.merge);
  check_rows("vision_pos_embed", "out", p.out, rows, p.hidden, p.ldo, sizeof(float));
  if (rows == 0) return;
  const uintptr_t o0 = reinterpret_cast<uintptr_t>(p.out), t0 = reinterpret_cast<uintptr_t>(p.table);
  const uintptr_t o1 = o0 + static_cast<uintptr_t>((rows - 1) * p.ldo + p.hidden) * sizeof(float);
  const uintptr_t t1 = t0 + static_cast<uintptr_t>((p.table_rows - 1) * p.ldt + p.hidden) * dtype_size(dt);
  QVL_CHECK(o1 <= t0 || t1 <= o0, Input, "vision_pos_embed: out overlaps the table");
}

void vision_pos_embed(const VisionPosEmbedParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "vision_pos_embed");
  check_vision_pos_embed(p);
  if (vision_pos_embed_rows(p.grids, p.n_grids, p.merge) == 0) return;
  vision_pos_embed_family().best(ctx.device()).fn(p, ctx);
}

}  // namespace qvl::ops
