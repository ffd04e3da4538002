// Qwen3-VL's learned vision position embeddings: a square table of side × side rows, bilinearly
// resampled to each (t, h, w) grid and laid out in the vision tower's patch order (per frame,
// merge blocks row-major, inside a block its merge × merge patches row-major).
//
// Bit-exact with transformers run in float32: the sample coordinates are torch.linspace's float32
// values, the four corner products are rounded separately and summed left to right. Every
// variant is therefore bit-identical to the reference.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

struct VisionPosEmbedParams {
  const void* table = nullptr;     // [table_rows, hidden] of table_dtype, row stride ldt
  DType table_dtype = DType::F32;  // F32, BF16 or F16
  int64_t table_rows = 0;          // a perfect square: side × side
  int64_t hidden = 0, ldt = 0;
  const int64_t* grids = nullptr;  // [n_grids][3]: (t, h, w) in patches; h, w multiples of merge
  int64_t n_grids = 0;
  int64_t merge = 0;     // spatial merge size, >= 1
  float* out = nullptr;  // [Σ t·h·w, hidden], row stride ldo; must not overlap the table
  int64_t ldo = 0;
};

using VisionPosEmbedFn = void (*)(const VisionPosEmbedParams&, const ExecContext&);

const OpFamily<VisionPosEmbedFn>& vision_pos_embed_family();

// Total output rows for the grids (E_INPUT on bad or overflowing grids or merge).
int64_t vision_pos_embed_rows(const int64_t* grids, int64_t n_grids, int64_t merge);
// Throws E_INPUT unless p is consistent: a float table of a square row count, valid grids, an
// output addressable for every row. Nothing is written when a check fails.
void check_vision_pos_embed(const VisionPosEmbedParams& p);
// Validates (E_INPUT) and runs the best variant.
void vision_pos_embed(const VisionPosEmbedParams& p, const ExecContext& ctx);

// torch.linspace(start, end, n) in float32 on the CPU: start + step·i for the first n/2 values,
// end − step·(n−1−i) for the rest, step = (end − start) / (n − 1) in float32. Shared by the
// variants; exposed for tests.
void linspace_f32(float start, float end, int64_t n, float* out);

}  // namespace qvl::ops
