// Row moves as memcpy, adds as a plain loop the compiler vectorizes for the baseline ISA.
#include "backends/cpu/rows_common.h"

namespace qvl::cpu {

void rows_generic(const ops::RowsParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  rows_detail::run(p, pool, [](float* out, const float* in, int64_t n) {
    for (int64_t c = 0; c < n; ++c) out[c] += in[c];
  });
}

}  // namespace qvl::cpu
