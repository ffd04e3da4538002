// Window-attention geometry of the Qwen2.5-VL vision tower. Most of its blocks attend only within
// square windows of merged tokens; to make each window a contiguous attention segment the tower
// reorders the patch rows (in whole merge groups) window by window before the blocks, and undoes
// the order after the merger. This file computes that order and the segment boundaries (integer
// layout only: the rows op's Gather and Scatter move the data); it touches no weights, so the
// tower and the tests share one definition.
//
// Units: a "group" is one merge block of merge² consecutive patch rows (the processor already
// emits patches merge-group contiguous); "window_size" is in pixels, as in the HF config.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace qvl::models {

struct WindowLayout {
  // Merge-group permutation: new position i holds old group order[i].
  std::vector<int64_t> order;
  // Patch-row boundaries of the windows in the new order: starts at 0, ends at the patch count,
  // strictly increasing (empty windows, which padding produces, are dropped).
  std::vector<int64_t> window_bounds;
  // Patch-row boundaries of the frames in the new order, for the full-attention blocks. The
  // reorder never moves a group across a frame, so these equal the frame boundaries of the
  // original order, and every frame boundary is also a window boundary.
  std::vector<int64_t> frame_bounds;
};

// grids: (t, h, w) per image or video in patch units; h and w must be multiples of merge.
// window_size must be at least merge·patch (the merged window side is window_size/merge/patch,
// floored). Throws E_INPUT on anything else.
WindowLayout window_layout(const std::vector<std::array<int64_t, 3>>& grids, int64_t window_size, int64_t patch,
                           int64_t merge);

}  // namespace qvl::models
