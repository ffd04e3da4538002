// Plain position-embedding interpolation: every output row on its own, single-threaded.
#include "backends/cpu/vision_pos_embed_common.h"

namespace qvl::cpu {

namespace {

template <DType D>
void grid_rows(const ops::VisionPosEmbedParams& p, int64_t side, const int64_t* g, int64_t row0) {
  using namespace pos_embed;
  const int64_t t = g[0], h = g[1], w = g[2], m = p.merge;
  const Axis ys = make_axis(h, side), xs = make_axis(w, side);
  int64_t row = row0;
  for (int64_t f = 0; f < t; ++f)
    for (int64_t a = 0; a < h / m; ++a)
      for (int64_t b = 0; b < w / m; ++b)
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < m; ++j, ++row) {
            const size_t y = static_cast<size_t>(a * m + i), x = static_cast<size_t>(b * m + j);
            const int64_t r0 = ys.lo[y] * side + xs.lo[x], r1 = ys.lo[y] * side + xs.hi[x];
            const int64_t r2 = ys.hi[y] * side + xs.lo[x], r3 = ys.hi[y] * side + xs.hi[x];
            const float w0 = ys.w_lo[y] * xs.w_lo[x], w1 = ys.w_lo[y] * xs.w_hi[x];
            const float w2 = ys.w_hi[y] * xs.w_lo[x], w3 = ys.w_hi[y] * xs.w_hi[x];
            float* o = p.out + row * p.ldo;
            for (int64_t c = 0; c < p.hidden; ++c) {
              float acc = rounded(load<D>(p.table, p.ldt, r0, c) * w0) + rounded(load<D>(p.table, p.ldt, r1, c) * w1);
              acc = acc + rounded(load<D>(p.table, p.ldt, r2, c) * w2);
              o[c] = acc + rounded(load<D>(p.table, p.ldt, r3, c) * w3);
            }
          }
}

}  // namespace

void vision_pos_embed_ref(const ops::VisionPosEmbedParams& p, const ExecContext& /*ctx*/) {
  const int64_t side = pos_embed::exact_sqrt(p.table_rows);
  int64_t row = 0;
  for (int64_t k = 0; k < p.n_grids; ++k) {
    const int64_t* g = p.grids + 3 * k;
    switch (p.table_dtype) {
      case DType::F32: grid_rows<DType::F32>(p, side, g, row); break;
      case DType::BF16: grid_rows<DType::BF16>(p, side, g, row); break;
      case DType::F16: grid_rows<DType::F16>(p, side, g, row); break;
      case DType::I32:
      case DType::I64:
      case DType::F8E4M3:
      case DType::U8: fail(ErrorCode::Native, std::string("vision_pos_embed: table of ") + dtype_name(p.table_dtype));
    }
    row += g[0] * g[1] * g[2];
  }
}

}  // namespace qvl::cpu
