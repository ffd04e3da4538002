// Reference bicubic resample: Pillow's ImagingResampleInner structure, scalar and
// single-threaded. The vertical coefficients are computed first so that the horizontal pass
// only produces the source rows the vertical pass reads (Pillow's bounding box); rows outside
// it would never be read, so skipping them cannot change the result.
#include <cstring>
#include <vector>

#include "ops/resample.h"

namespace qvl::cpu {

namespace {

uint8_t clip8(int64_t acc, int precision) {
  const int64_t v = acc >> precision;  // floor: the accumulator starts at half a unit
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Along x: rows [row0, row0 + rows) of src (width in_w) -> rows of dst (width ax.out).
void horizontal(const uint8_t* src, int64_t in_w, int64_t row0, int64_t rows, int ch, const ops::ResampleAxis& ax,
                uint8_t* dst) {
  for (int64_t y = 0; y < rows; ++y) {
    const uint8_t* in = src + (row0 + y) * in_w * ch;
    uint8_t* out = dst + y * ax.out * ch;
    for (int64_t x = 0; x < ax.out; ++x) {
      const int32_t* k = &ax.weights[x * ax.ksize];
      for (int c = 0; c < ch; ++c) {
        int64_t acc = int64_t{1} << (ax.precision - 1);
        for (int32_t j = 0; j < ax.size[x]; ++j) acc += int64_t{in[(ax.start[x] + j) * ch + c]} * k[j];
        out[x * ch + c] = clip8(acc, ax.precision);
      }
    }
  }
}

// Along y: src rows are addressed from `row_offset` (the first row the horizontal pass kept).
void vertical(const uint8_t* src, int64_t width, int64_t row_offset, int ch, const ops::ResampleAxis& ax,
              uint8_t* dst) {
  for (int64_t y = 0; y < ax.out; ++y) {
    const int32_t* k = &ax.weights[y * ax.ksize];
    const int64_t first = ax.start[y] - row_offset;
    for (int64_t x = 0; x < width * ch; ++x) {
      int64_t acc = int64_t{1} << (ax.precision - 1);
      for (int32_t j = 0; j < ax.size[y]; ++j) acc += int64_t{src[(first + j) * width * ch + x]} * k[j];
      dst[y * width * ch + x] = clip8(acc, ax.precision);
    }
  }
}

}  // namespace

void resample_ref(const ops::ResampleParams& p, const ExecContext&) {
  const int ch = p.channels;
  const bool need_h = p.dst_w != p.src_w;
  const bool need_v = p.dst_h != p.src_h;
  if (!need_h && !need_v) {
    std::memcpy(p.dst, p.src, static_cast<size_t>(p.src_w * p.src_h * ch));
    return;
  }
  const ops::ResampleAxis vert = ops::bicubic_axis(p.src_h, p.dst_h, p.rounding);
  const int64_t box_first = vert.start.front();
  const int64_t box_last = vert.start.back() + vert.size.back();

  if (!need_h) {
    vertical(p.src, p.src_w, 0, ch, vert, p.dst);
    return;
  }
  const ops::ResampleAxis horiz = ops::bicubic_axis(p.src_w, p.dst_w, p.rounding);
  if (!need_v) {
    horizontal(p.src, p.src_w, 0, p.src_h, ch, horiz, p.dst);
    return;
  }
  std::vector<uint8_t> tmp(static_cast<size_t>((box_last - box_first) * p.dst_w * ch));
  horizontal(p.src, p.src_w, box_first, box_last - box_first, ch, horiz, tmp.data());
  vertical(tmp.data(), p.dst_w, box_first, ch, vert, p.dst);
}

}  // namespace qvl::cpu
