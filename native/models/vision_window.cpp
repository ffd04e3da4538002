#include "models/vision_window.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace qvl::models {

namespace {

// Same cap as the vision tower's own grid check; keeps every product below in int64 range.
constexpr int64_t kMaxPatches = int64_t(1) << 31;

std::string grid_text(const std::array<int64_t, 3>& g) {
  return "(" + std::to_string(g[0]) + "," + std::to_string(g[1]) + "," + std::to_string(g[2]) + ")";
}

}  // namespace

// Worked example (merge 2, patch 14, window_size 56 -> merged window side 2), grid (2, 4, 6):
// each frame is a 2 x 3 grid of merged groups
//     0 1 2        6  7  8
//     3 4 5        9 10 11
// HF pads each frame to 4 x 4 with -100, giving per frame the windows {0,1,3,4}, {2,5} and two
// empty ones. order = 0 1 3 4 2 5 | 6 7 9 10 8 11; window group counts 4 2 0 0 4 2 0 0, times
// merge² = 4 rows: cumulative 0 16 24 24 24 40 48 48 48, and unique_consecutive leaves
// window_bounds = 0 16 24 40 48; frame_bounds = 0 24 48. The parity suite checks this case.
WindowLayout window_layout(const std::vector<std::array<int64_t, 3>>& grids, int64_t window_size, int64_t patch,
                           int64_t merge) {
  QVL_CHECK(patch >= 1 && merge >= 1 && patch <= 4096 && merge <= 64, Input,
            "window layout: patch (" + std::to_string(patch) + ") and merge (" + std::to_string(merge) +
                ") sizes must be positive");
  QVL_CHECK(window_size >= merge * patch && window_size <= (int64_t(1) << 30), Input,
            "window layout: window_size " + std::to_string(window_size) + " is smaller than one merged patch (" +
                std::to_string(merge * patch) + " pixels) or absurdly large");
  const int64_t side = window_size / merge / patch;  // merged tokens per window side
  const int64_t unit = merge * merge;

  int64_t total_groups = 0;
  for (size_t i = 0; i < grids.size(); ++i) {
    const auto& g = grids[i];
    QVL_CHECK(g[0] >= 1 && g[1] >= 1 && g[2] >= 1 && g[1] % merge == 0 && g[2] % merge == 0, Input,
              "window layout: grid " + std::to_string(i) + " " + grid_text(g) +
                  " is not a positive multiple of the merge size " + std::to_string(merge));
    QVL_CHECK(g[0] <= kMaxPatches && g[1] <= kMaxPatches && g[2] <= kMaxPatches &&
                  g[1] * g[2] <= kMaxPatches && g[0] * g[1] * g[2] <= kMaxPatches,
              Input, "window layout: grid " + std::to_string(i) + " " + grid_text(g) + " is too large");
    total_groups += g[0] * (g[1] / merge) * (g[2] / merge);
    QVL_CHECK(total_groups * unit <= kMaxPatches, Input, "window layout: the grids hold too many patches");
  }

  WindowLayout out;
  out.order.reserve(static_cast<size_t>(total_groups));
  out.window_bounds.push_back(0);
  out.frame_bounds.push_back(0);
  int64_t base = 0;  // first group of the current frame in the original order
  for (const auto& g : grids) {
    const int64_t lh = g[1] / merge, lw = g[2] / merge;
    const int64_t nwh = (lh + side - 1) / side, nww = (lw + side - 1) / side;
    for (int64_t f = 0; f < g[0]; ++f) {
      for (int64_t wr = 0; wr < nwh; ++wr) {
        const int64_t r0 = wr * side, r1 = std::min(r0 + side, lh);
        for (int64_t wc = 0; wc < nww; ++wc) {
          const int64_t c0 = wc * side, c1 = std::min(c0 + side, lw);
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t c = c0; c < c1; ++c) out.order.push_back(base + r * lw + c);
          // Windows clipped by the frame edge are smaller but never empty here: HF's extra
          // all-padding windows are simply not generated.
          out.window_bounds.push_back(static_cast<int64_t>(out.order.size()) * unit);
        }
      }
      base += lh * lw;
      out.frame_bounds.push_back(base * unit);
    }
  }
  return out;
}

}  // namespace qvl::models
