#include "models/vision_pos_embed.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/dtype.h"
#include "core/error.h"

namespace qvl::models {

namespace {

// torch rounds every product to float32 before the following add (separate tensor ops). Where the
// target has a fused multiply-add, GCC's default -ffp-contract=fast may fuse them into one
// rounding; a volatile round trip forces the intermediate rounding there.
#if defined(__FP_FAST_FMAF)
inline float rounded(float v) {
  volatile float r = v;
  return r;
}
#else
inline float rounded(float v) { return v; }
#endif

int64_t exact_sqrt(int64_t n) {
  int64_t r = 0;
  while ((r + 1) * (r + 1) <= n) ++r;  // n is a table row count: a few thousand at most
  return r;
}

// One axis of the resampling: for each output coordinate the lower and upper source index and
// the two float32 weights (1 − d, d), computed exactly as transformers does.
struct Axis {
  std::vector<int64_t> lo, hi;
  std::vector<float> w_lo, w_hi;
};

Axis make_axis(int64_t n, int64_t side) {
  std::vector<float> x(static_cast<size_t>(n));
  linspace_f32(0.0f, static_cast<float>(side - 1), n, x.data());
  Axis a;
  a.lo.resize(x.size()), a.hi.resize(x.size()), a.w_lo.resize(x.size()), a.w_hi.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const int32_t f = static_cast<int32_t>(x[i]);  // Tensor.int(): truncation, x >= 0
    const float d = x[i] - static_cast<float>(f);
    a.lo[i] = f;
    a.hi[i] = std::min<int64_t>(f + 1, side - 1);
    a.w_lo[i] = 1.0f - d;
    a.w_hi[i] = d;
  }
  return a;
}

struct GridPlan {
  int64_t t, h, w, out_row;  // out_row: first output row of this grid
  Axis rows, cols;
};

template <DType D>
inline float load(const void* base, int64_t ld, int64_t row, int64_t c) {
  if constexpr (D == DType::F32) {
    return static_cast<const float*>(base)[row * ld + c];
  } else if constexpr (D == DType::BF16) {
    return bf16_to_f32(static_cast<const uint16_t*>(base)[row * ld + c]);
  } else {
    return f16_to_f32(static_cast<const uint16_t*>(base)[row * ld + c]);
  }
}

// The merge × w patches of merge-block row `hb` of frame 0, then copies of them into every other
// frame (the table does not depend on t).
template <DType D>
void block_row(const void* table, int64_t ld, int64_t side, int64_t hidden, int64_t merge, const GridPlan& g,
               int64_t hb, float* out) {
  const int64_t bw = g.w / merge;
  float* frame0 = out + (g.out_row + hb * merge * g.w) * hidden;
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
        float* o = frame0 + ((wb * merge + mr) * merge + mc) * hidden;
        for (int64_t c = 0; c < hidden; ++c) {
          float acc = rounded(load<D>(table, ld, r0, c) * w0) + rounded(load<D>(table, ld, r1, c) * w1);
          acc = acc + rounded(load<D>(table, ld, r2, c) * w2);
          o[c] = acc + rounded(load<D>(table, ld, r3, c) * w3);
        }
      }
    }
  }
  const size_t bytes = static_cast<size_t>(merge * g.w * hidden) * sizeof(float);
  for (int64_t f = 1; f < g.t; ++f) std::memcpy(frame0 + f * g.h * g.w * hidden, frame0, bytes);
}

}  // namespace

void linspace_f32(float start, float end, int64_t n, float* out) {
  if (n <= 0) return;
  if (n == 1) {
    out[0] = start;
    return;
  }
  const float step = (end - start) / static_cast<float>(n - 1);
  const int64_t half = n / 2;
  for (int64_t i = 0; i < n; ++i) {
    out[i] = i < half ? start + rounded(step * static_cast<float>(i))
                      : end - rounded(step * static_cast<float>(n - 1 - i));
  }
}

int64_t pos_embed_rows(const std::vector<std::array<int64_t, 3>>& grids, int64_t merge) {
  QVL_CHECK(merge >= 1, Input, "pos_embed: spatial merge size must be >= 1, got " + std::to_string(merge));
  int64_t total = 0;
  for (size_t i = 0; i < grids.size(); ++i) {
    const auto& g = grids[i];
    const std::string where = "pos_embed: grid " + std::to_string(i) + " (t=" + std::to_string(g[0]) +
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

void interpolate_pos_embed(const Tensor& table, const std::vector<std::array<int64_t, 3>>& grids, int64_t merge,
                           float* out, ThreadPool& pool) {
  QVL_CHECK(table.defined() && table.ndim() == 2, ModelFormat, "pos_embed table must be 2-D [N, hidden]");
  const DType dt = table.dtype();
  QVL_CHECK(dt == DType::F32 || dt == DType::BF16 || dt == DType::F16, ModelFormat,
            std::string("pos_embed table must be F32, BF16 or F16, got ") + dtype_name(dt));
  const int64_t n = table.dim(0), hidden = table.dim(1);
  QVL_CHECK(n >= 1 && hidden >= 1, ModelFormat, "pos_embed table " + table.shape_string() + " is empty");
  QVL_CHECK(table.strides()[1] == 1 && table.strides()[0] >= hidden, ModelFormat,
            "pos_embed table rows must be contiguous");
  const int64_t side = exact_sqrt(n);
  QVL_CHECK(side * side == n, ModelFormat,
            "pos_embed table has " + std::to_string(n) + " rows, not a square grid (num_position_embeddings)");
  const int64_t total = pos_embed_rows(grids, merge);
  if (total == 0) return;
  QVL_CHECK(out != nullptr, Input, "pos_embed: null output");

  std::vector<GridPlan> plans;
  std::vector<std::pair<size_t, int64_t>> tasks;  // (grid, merge-block row)
  int64_t row = 0;
  for (const auto& g : grids) {
    plans.push_back({g[0], g[1], g[2], row, make_axis(g[1], side), make_axis(g[2], side)});
    for (int64_t hb = 0; hb < g[1] / merge; ++hb) tasks.emplace_back(plans.size() - 1, hb);
    row += g[0] * g[1] * g[2];
  }

  const void* base = table.raw();
  const int64_t ld = table.strides()[0];
  pool.parallel_for(static_cast<int64_t>(tasks.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const GridPlan& g = plans[tasks[static_cast<size_t>(i)].first];
      const int64_t hb = tasks[static_cast<size_t>(i)].second;
      switch (dt) {
        case DType::F32: block_row<DType::F32>(base, ld, side, hidden, merge, g, hb, out); break;
        case DType::BF16: block_row<DType::BF16>(base, ld, side, hidden, merge, g, hb, out); break;
        case DType::F16: block_row<DType::F16>(base, ld, side, hidden, merge, g, hb, out); break;
        case DType::I32:
        case DType::I64:
        case DType::U8: break;  // refused above: the table is checked to be a float type
      }
    }
  });
}

}  // namespace qvl::models
