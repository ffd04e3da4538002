// Plain RoPE table gather: one entry at a time, single-threaded.
#include "ops/rope_gather.h"

namespace qvl::cpu {

void rope_gather_ref(const ops::RopeGatherParams& p, const ExecContext& /*ctx*/) {
  for (int64_t t = 0; t < p.T; ++t) {
    for (int64_t i = 0; i < p.half; ++i) {
      const int64_t row = p.positions[p.axis[i] * p.ldp + t] - p.base;
      const int64_t e = row * p.table_cols + p.column[i];
      p.cos[t * p.half + i] = p.table_cos[e];
      p.sin[t * p.half + i] = p.table_sin[e];
    }
  }
}

}  // namespace qvl::cpu
