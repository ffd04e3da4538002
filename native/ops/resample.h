// Image preprocessing kernels: bicubic resampling of 8-bit interleaved images and the patch
// flattening that turns resized frames into the vision tower's input rows.
//
// The resampler is Pillow's ImagingResample algorithm for BICUBIC (a = -0.5): separable,
// horizontal pass then vertical pass through an 8-bit intermediate image, the filter support
// widened by the downscale factor (antialiasing), per-output windows of coefficients normalised
// to sum 1 and applied in fixed point. Two coefficient roundings exist in the references we
// match, and they differ in about one uint8 step in a few thousand pixels:
//   Pillow: 22 fractional bits (PIL.Image.resize; transformers' slow image processors).
//   Torch:  the largest precision whose biggest coefficient still fits int16 (torch's uint8
//           antialiased bicubic, reached by torchvision's resize in the "Fast" processors).
#pragma once
#include <cstdint>
#include <vector>

#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

enum class ResampleRounding { Pillow = 0, Torch = 1 };

// One axis of the separable convolution: output i reads size[i] consecutive source samples
// from start[i], weighted by weights[i * ksize + j] / 2^precision.
struct ResampleAxis {
  int64_t in = 0, out = 0;
  int ksize = 0;
  int precision = 0;
  std::vector<int32_t> start, size;
  std::vector<int32_t> weights;
};

// Coefficients of the bicubic filter mapping `in` samples to `out` (both >= 1).
ResampleAxis bicubic_axis(int64_t in, int64_t out, ResampleRounding rounding);

struct ResampleParams {
  const uint8_t* src = nullptr;  // [src_h, src_w, channels]
  int64_t src_w = 0, src_h = 0;
  uint8_t* dst = nullptr;        // [dst_h, dst_w, channels]
  int64_t dst_w = 0, dst_h = 0;
  int channels = 3;              // 1..4, interleaved
  ResampleRounding rounding = ResampleRounding::Pillow;
};

using ResampleFn = void (*)(const ResampleParams&, const ExecContext&);

const OpFamily<ResampleFn>& resample_family();

// Throws E_INPUT unless p describes a consistent resize (positive sizes, 1..4 channels,
// pointers set, byte counts representable).
void check_resample(const ResampleParams& p);
// Validates and runs the best variant.
void resample_bicubic(const ResampleParams& p, const ExecContext& ctx);

// How a uint8 sample becomes a float, in the two orders transformers uses:
//   Slow (numpy): x' = float32(float64(x) * rescale); then (x' - mean32) / std32.
//   Fast (torch): rescale is fused into the normalisation, (float32(x) - float32(mean32 *
//                 float32(1/rescale))) / float32(std32 * float32(1/rescale)).
// Either stage may be off (do_rescale / do_normalize), as in the processors.
enum class NormalizeOrder { Slow = 0, Fast = 1 };

struct PatchifyParams {
  const uint8_t* const* frames = nullptr;  // frames_n frames, each [height, width, 3]
  int64_t frames_n = 0;
  int64_t width = 0, height = 0;
  int patch = 14, merge = 2, temporal = 2;
  bool do_rescale = true;
  double rescale = 1.0 / 255.0;
  bool do_normalize = true;
  double mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
  NormalizeOrder order = NormalizeOrder::Slow;
  float* out = nullptr;  // [rows, 3 * temporal * patch * patch]
  int64_t out_len = 0;   // elements
};

struct PatchGrid {
  int64_t t = 0, h = 0, w = 0;
  int64_t rows() const { return t * h * w; }
};

// The grid a patchify call produces: frames padded (by repeating the last) to a multiple of
// `temporal`, height and width divided by `patch`. Throws E_INPUT on inconsistent sizes
// (height or width not a multiple of patch * merge, no frames, non-positive sizes).
PatchGrid patch_grid(int64_t frames_n, int64_t width, int64_t height, int patch, int merge, int temporal);

// Writes the flattened patches: rows ordered (t, h-block, w-block, merge_row, merge_col), each
// row (channel, t, py, px). Validates every size and the output length (E_INPUT).
void patchify(const PatchifyParams& p, const ExecContext& ctx);

}  // namespace qvl::ops
