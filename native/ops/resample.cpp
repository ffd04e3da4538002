#include "ops/resample.h"

#include "ops/backends.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"
#include "ops/backends.h"

namespace qvl::cpu {
void patchify_ref(const ops::PatchifyParams& p, ThreadPool& pool);
}  // namespace qvl::cpu

// The coefficients must come out bit-identical to Pillow's and torch's, which evaluate these
// expressions in plain double arithmetic: keep the compiler from fusing multiply-adds.
#if defined(__clang__)
#define QVL_NO_CONTRACT
#define QVL_NO_CONTRACT_BODY _Pragma("clang fp contract(off)")
#elif defined(__GNUC__)
#define QVL_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#define QVL_NO_CONTRACT_BODY
#else
#define QVL_NO_CONTRACT
#define QVL_NO_CONTRACT_BODY
#endif

namespace qvl::ops {

const OpFamily<ResampleFn>& resample_family() {
  static const OpFamily<ResampleFn> family("resample_bicubic", QVL_BACKEND_VARIANTS(resample));
  return family;
}

namespace {

// Keys' cubic convolution kernel with a = -0.5, in the evaluation order Pillow uses (torch's
// algebraically different form gives the same doubles: every step only scales by a power of 2).
QVL_NO_CONTRACT double bicubic_filter(double x) {
  QVL_NO_CONTRACT_BODY
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

int32_t to_fixed(double w, int precision) {
  const double v = w * static_cast<double>(1 << precision);
  return v < 0 ? static_cast<int32_t>(-0.5 + v) : static_cast<int32_t>(0.5 + v);
}

// Torch picks the precision from the largest normalised weight: the first p for which
// round(w_max * 2^(p+1)) no longer fits int16, capped at 22.
int torch_precision(double w_max) {
  int p = 0;
  for (; p < 22; ++p) {
    const int next = static_cast<int>(0.5 + w_max * static_cast<double>(1 << (p + 1)));
    if (next >= (1 << 15)) break;
  }
  return p;
}

std::string dims(int64_t w, int64_t h) { return std::to_string(w) + "x" + std::to_string(h); }

}  // namespace

QVL_NO_CONTRACT ResampleAxis bicubic_axis(int64_t in, int64_t out, ResampleRounding rounding) {
  QVL_NO_CONTRACT_BODY
  QVL_CHECK(in >= 1 && out >= 1 && in <= (1 << 24) && out <= (1 << 24), Input,
            "resample: axis sizes must be in [1, 2^24], got " + std::to_string(in) + " -> " + std::to_string(out));
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 2.0 * filterscale;
  const double inv = 1.0 / filterscale;

  ResampleAxis ax;
  ax.in = in;
  ax.out = out;
  ax.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  ax.start.resize(out);
  ax.size.resize(out);
  std::vector<double> w(static_cast<size_t>(out) * ax.ksize, 0.0);
  double w_max = 0.0;
  for (int64_t i = 0; i < out; ++i) {
    const double center = (static_cast<double>(i) + 0.5) * scale;
    int64_t lo = static_cast<int64_t>(center - support + 0.5);
    if (lo < 0) lo = 0;
    int64_t hi = static_cast<int64_t>(center + support + 0.5);
    if (hi > in) hi = in;
    const int64_t n = std::clamp<int64_t>(hi - lo, 0, ax.ksize);
    double* k = &w[static_cast<size_t>(i) * ax.ksize];
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      k[j] = bicubic_filter((static_cast<double>(j + lo) - center + 0.5) * inv);
      sum += k[j];
    }
    if (sum != 0.0) {
      for (int64_t j = 0; j < n; ++j) {
        k[j] /= sum;
        w_max = std::max(w_max, k[j]);
      }
    }
    ax.start[i] = static_cast<int32_t>(lo);
    ax.size[i] = static_cast<int32_t>(n);
  }
  ax.precision = rounding == ResampleRounding::Pillow ? 22 : torch_precision(w_max);
  ax.weights.resize(w.size());
  for (size_t i = 0; i < w.size(); ++i) ax.weights[i] = to_fixed(w[i], ax.precision);
  return ax;
}

void check_resample(const ResampleParams& p) {
  const std::string what = "resample: " + dims(p.src_w, p.src_h) + " -> " + dims(p.dst_w, p.dst_h);
  QVL_CHECK(p.src_w >= 1 && p.src_h >= 1 && p.dst_w >= 1 && p.dst_h >= 1, Input, what + ": sizes must be positive");
  QVL_CHECK(p.src_w <= (1 << 24) && p.src_h <= (1 << 24) && p.dst_w <= (1 << 24) && p.dst_h <= (1 << 24), Input,
            what + ": a side exceeds 2^24 pixels");
  QVL_CHECK(p.channels >= 1 && p.channels <= 4, Input, what + ": channels must be 1..4, got " + std::to_string(p.channels));
  // Byte counts (and the intermediate image of the two-pass resize) must fit comfortably.
  constexpr int64_t kMaxBytes = int64_t{1} << 40;
  QVL_CHECK(p.src_w * p.src_h <= kMaxBytes / 4 && p.dst_w * p.dst_h <= kMaxBytes / 4 &&
                p.dst_w * p.src_h <= kMaxBytes / 4,
            Input, what + ": image too large");
  QVL_CHECK(p.rounding == ResampleRounding::Pillow || p.rounding == ResampleRounding::Torch, Input,
            what + ": unknown rounding");
  QVL_CHECK(p.src != nullptr && p.dst != nullptr, Input, what + ": null buffer");
}

void resample_bicubic(const ResampleParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "resample_bicubic");
  check_resample(p);
  resample_family().best(ctx.device()).fn(p, ctx);
}

PatchGrid patch_grid(int64_t frames_n, int64_t width, int64_t height, int patch, int merge, int temporal) {
  const std::string what = "patchify: " + std::to_string(frames_n) + " frame(s) of " + dims(width, height);
  QVL_CHECK(patch >= 1 && patch <= 1024 && merge >= 1 && merge <= 64 && temporal >= 1 && temporal <= 64, Input,
            what + ": patch " + std::to_string(patch) + ", merge " + std::to_string(merge) + ", temporal " +
                std::to_string(temporal) + " out of range");
  QVL_CHECK(frames_n >= 1, Input, what + ": no frames");
  QVL_CHECK(frames_n <= (1 << 20), Input, what + ": too many frames");
  QVL_CHECK(width >= 1 && height >= 1 && width <= (1 << 24) && height <= (1 << 24), Input, what + ": bad size");
  const int64_t unit = int64_t{patch} * merge;
  QVL_CHECK(width % unit == 0 && height % unit == 0, Input,
            what + ": width and height must be multiples of patch*merge = " + std::to_string(unit));
  PatchGrid g;
  g.t = (frames_n + temporal - 1) / temporal;
  g.h = height / patch;
  g.w = width / patch;
  return g;
}

void patchify(const PatchifyParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "patchify");
  const PatchGrid g = patch_grid(p.frames_n, p.width, p.height, p.patch, p.merge, p.temporal);
  const int64_t row = int64_t{3} * p.temporal * p.patch * p.patch;
  QVL_CHECK(g.rows() <= std::numeric_limits<int64_t>::max() / row / 8, Input, "patchify: output too large");
  QVL_CHECK(p.out != nullptr && p.out_len == g.rows() * row, Input,
            "patchify: output holds " + std::to_string(p.out_len) + " floats, needs " + std::to_string(g.rows() * row));
  QVL_CHECK(p.frames != nullptr, Input, "patchify: null frame list");
  for (int64_t f = 0; f < p.frames_n; ++f) {
    QVL_CHECK(p.frames[f] != nullptr, Input, "patchify: frame " + std::to_string(f) + " is null");
  }
  QVL_CHECK(p.order == NormalizeOrder::Slow || p.order == NormalizeOrder::Fast, Input, "patchify: unknown order");
  if (p.do_rescale) {
    QVL_CHECK(std::isfinite(p.rescale) && p.rescale != 0.0, Input, "patchify: rescale factor must be finite and nonzero");
  }
  if (p.do_normalize) {
    for (int c = 0; c < 3; ++c) {
      QVL_CHECK(std::isfinite(p.mean[c]) && std::isfinite(p.std[c]) && p.std[c] != 0.0, Input,
                "patchify: mean/std of channel " + std::to_string(c) + " must be finite, std nonzero");
    }
  }
  cpu::patchify_ref(p, ctx.pool());
}

}  // namespace qvl::ops
