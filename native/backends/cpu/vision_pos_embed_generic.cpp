// Position-embedding interpolation, threaded over (grid, merge-block row) tasks: each task fills
// the merge × w patches of one merge-block row of frame 0 and copies them into the grid's other
// frames (the table does not depend on t). Corner indexes and weights are computed once per axis.
#include <cstring>
#include <utility>

#include "backends/cpu/vision_pos_embed_common.h"

namespace qvl::cpu {

namespace {

using pos_embed::Axis;

struct GridPlan {
  int64_t t, h, w, out_row;  // out_row: first output row of this grid
  Axis rows, cols;
};

template <DType D>
void block_row(const ops::VisionPosEmbedParams& p, int64_t side, const GridPlan& g, int64_t hb) {
  using namespace pos_embed;
  const int64_t merge = p.merge, bw = g.w / merge, hidden = p.hidden;
  const int64_t first = g.out_row + hb * merge * g.w;  // this block row's first row in frame 0
  for (int64_t wb = 0; wb < bw; ++wb) {
    for (int64_t mr = 0; mr < merge; ++mr) {
      const size_t y = static_cast<size_t>(hb * merge + mr);
      for (int64_t mc = 0; mc < merge; ++mc) {
        const size_t x = static_cast<size_t>(wb * merge + mc);
        const int64_t r0 = g.rows.lo[y] * side + g.cols.lo[x];
        const int64_t r1 = g.rows.lo[y] * side + g.cols.hi[x];
        const int64_t r2 = g.rows.hi[y] * side + g.cols.lo[x];
        const int64_t r3 = g.rows.hi[y] * side + g.cols.hi[x];
        const float w0 = g.rows.w_lo[y] * g.cols.w_lo[x];
        const float w1 = g.rows.w_lo[y] * g.cols.w_hi[x];
        const float w2 = g.rows.w_hi[y] * g.cols.w_lo[x];
        const float w3 = g.rows.w_hi[y] * g.cols.w_hi[x];
        float* o = p.out + (first + (wb * merge + mr) * merge + mc) * p.ldo;
        for (int64_t c = 0; c < hidden; ++c) {
          float acc = rounded(load<D>(p.table, p.ldt, r0, c) * w0) + rounded(load<D>(p.table, p.ldt, r1, c) * w1);
          acc = acc + rounded(load<D>(p.table, p.ldt, r2, c) * w2);
          o[c] = acc + rounded(load<D>(p.table, p.ldt, r3, c) * w3);
        }
      }
    }
  }
  const int64_t block_rows = merge * g.w;
  for (int64_t f = 1; f < g.t; ++f) {
    for (int64_t r = 0; r < block_rows; ++r) {
      std::memcpy(p.out + (first + f * g.h * g.w + r) * p.ldo, p.out + (first + r) * p.ldo,
                  static_cast<size_t>(hidden) * sizeof(float));
    }
  }
}

}  // namespace

void vision_pos_embed_generic(const ops::VisionPosEmbedParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  const int64_t side = pos_embed::exact_sqrt(p.table_rows);
  std::vector<GridPlan> plans;
  std::vector<std::pair<size_t, int64_t>> tasks;  // (grid, merge-block row)
  int64_t row = 0;
  for (int64_t k = 0; k < p.n_grids; ++k) {
    const int64_t* g = p.grids + 3 * k;
    plans.push_back({g[0], g[1], g[2], row, pos_embed::make_axis(g[1], side), pos_embed::make_axis(g[2], side)});
    for (int64_t hb = 0; hb < g[1] / p.merge; ++hb) tasks.emplace_back(plans.size() - 1, hb);
    row += g[0] * g[1] * g[2];
  }
  pool.parallel_for(static_cast<int64_t>(tasks.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const GridPlan& g = plans[tasks[static_cast<size_t>(i)].first];
      const int64_t hb = tasks[static_cast<size_t>(i)].second;
      switch (p.table_dtype) {
        case DType::F32: block_row<DType::F32>(p, side, g, hb); break;
        case DType::BF16: block_row<DType::BF16>(p, side, g, hb); break;
        case DType::F16: block_row<DType::F16>(p, side, g, hb); break;
        case DType::I32:
        case DType::I64:
        case DType::F8E4M3:
        case DType::U8: break;  // refused by check_vision_pos_embed
      }
    }
  });
}

}  // namespace qvl::cpu
