// Plain row moves and adds: one element at a time, single-threaded.
#include "ops/rows.h"

namespace qvl::cpu {

namespace {

int64_t index_at(const ops::RowsParams& p, int64_t i) {
  return p.idx_dtype == DType::I64 ? static_cast<const int64_t*>(p.idx)[i]
                                   : static_cast<int64_t>(static_cast<const int32_t*>(p.idx)[i]);
}

}  // namespace

void rows_ref(const ops::RowsParams& p, const ExecContext& /*ctx*/) {
  for (int64_t i = 0; i < p.n; ++i) {
    int64_t d = i, s = i;
    bool add = false;
    switch (p.kind) {
      case ops::RowsKind::Add: add = true; break;
      case ops::RowsKind::Gather: s = index_at(p, i); break;
      case ops::RowsKind::Scatter: d = index_at(p, i); break;
      case ops::RowsKind::AddIndexed: s = index_at(p, i), add = true; break;
    }
    if (d < 0 || s < 0) continue;
    float* out = p.dst + d * p.ldd;
    const float* in = p.src + s * p.lds;
    for (int64_t c = 0; c < p.cols; ++c) out[c] = add ? out[c] + in[c] : in[c];
  }
}

}  // namespace qvl::cpu
