// Patch flattening with the processors' rescale/normalise folded in. A uint8 sample has only
// 256 possible values per channel, so each is converted once into a table (in exactly the
// float32/float64 order transformers uses) and the flattening is a gather from that table.
#include <algorithm>
#include <cstring>

#include "ops/resample.h"

namespace qvl::cpu {

namespace {

// Each statement is a single IEEE operation in the stated precision (no multiply feeds an add,
// so no fused multiply-add can creep in).
void build_table(const ops::PatchifyParams& p, float table[3][256]) {
  for (int c = 0; c < 3; ++c) {
    const float mean = static_cast<float>(p.mean[c]);
    const float std = static_cast<float>(p.std[c]);
    for (int v = 0; v < 256; ++v) {
      float x = static_cast<float>(v);
      if (p.order == ops::NormalizeOrder::Slow) {
        // numpy: (uint8 -> float64) * scale -> float32, then (x - mean32) / std32 in float32.
        if (p.do_rescale) x = static_cast<float>(static_cast<double>(v) * p.rescale);
        if (p.do_normalize) {
          const float d = x - mean;
          x = d / std;
        }
      } else if (p.do_rescale && p.do_normalize) {
        // torch: mean and std become float32 tensors times float32(1/scale); x stays in 0..255.
        const float inv = static_cast<float>(1.0 / p.rescale);
        const float m = mean * inv;
        const float s = std * inv;
        const float d = x - m;
        x = d / s;
      } else if (p.do_normalize) {
        const float d = x - mean;
        x = d / std;
      } else if (p.do_rescale) {
        x = x * static_cast<float>(p.rescale);
      }
      table[c][v] = x;
    }
  }
}

}  // namespace

void patchify_ref(const ops::PatchifyParams& p, ThreadPool& pool) {
  float table[3][256];
  build_table(p, table);
  const ops::PatchGrid g = ops::patch_grid(p.frames_n, p.width, p.height, p.patch, p.merge, p.temporal);
  const int64_t P = p.patch, M = p.merge, T = p.temporal;
  const int64_t row_len = 3 * T * P * P;
  const int64_t bh_n = g.h / M, bw_n = g.w / M;
  const int64_t stride = p.width * 3;
  pool.parallel_for(g.rows(), 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      // r = (((t * bh_n + bh) * bw_n + bw) * M + mr) * M + mc
      int64_t q = r;
      const int64_t mc = q % M; q /= M;
      const int64_t mr = q % M; q /= M;
      const int64_t bw = q % bw_n; q /= bw_n;
      const int64_t bh = q % bh_n; q /= bh_n;
      const int64_t t = q;
      const int64_t y0 = (bh * M + mr) * P, x0 = (bw * M + mc) * P;
      float* out = p.out + r * row_len;
      for (int64_t c = 0; c < 3; ++c) {
        const float* lut = table[c];
        for (int64_t tt = 0; tt < T; ++tt) {
          // Frames past the end repeat the last one (images: the single frame T times).
          const int64_t f = std::min(t * T + tt, p.frames_n - 1);
          if (tt > 0 && f == std::min(t * T + tt - 1, p.frames_n - 1)) {
            std::memcpy(out, out - P * P, static_cast<size_t>(P * P) * sizeof(float));
            out += P * P;
            continue;
          }
          const uint8_t* frame = p.frames[f];
          for (int64_t py = 0; py < P; ++py) {
            const uint8_t* src = frame + (y0 + py) * stride + x0 * 3 + c;
            for (int64_t px = 0; px < P; ++px) *out++ = lut[src[px * 3]];
          }
        }
      }
    }
  });
}

}  // namespace qvl::cpu
