// Qwen3-VL's learned vision position embeddings: a square table of side × side rows, bilinearly
// resampled to each (t, h, w) grid and laid out in the vision tower's patch order (per frame,
// merge blocks row-major, inside a block its merge × merge patches row-major).
//
// Bit-exact with transformers run in float32: the sample coordinates are torch.linspace's float32
// values, the four corner products are rounded separately and summed left to right.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "core/threadpool.h"

namespace qvl::models {

// Writes [Σ t·h·w, hidden] float32 rows to `out`. `table` is [N, hidden] (F32, BF16 or F16, rows
// contiguous); N must be a perfect square (E_MODEL_FORMAT otherwise). Each grid needs t, h, w >= 1
// with h and w multiples of `merge` (E_INPUT otherwise). Nothing is written when a check fails.
void interpolate_pos_embed(const Tensor& table, const std::vector<std::array<int64_t, 3>>& grids, int64_t merge,
                           float* out, ThreadPool& pool);

// Total rows interpolate_pos_embed writes for `grids` (checked: E_INPUT on bad or overflowing grids).
int64_t pos_embed_rows(const std::vector<std::array<int64_t, 3>>& grids, int64_t merge);

// torch.linspace(start, end, n) in float32 on the CPU: start + step·i for the first n/2 values,
// end − step·(n−1−i) for the rest, step = (end − start) / (n − 1) in float32. Exposed for tests.
void linspace_f32(float start, float end, int64_t n, float* out);

}  // namespace qvl::models
