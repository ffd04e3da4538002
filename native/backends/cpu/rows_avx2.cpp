// Row adds 8 lanes at a time (32 floats per iteration), the tail in scalar; moves as memcpy.
#include <immintrin.h>

#include "backends/cpu/rows_common.h"
#include "core/cpu.h"

namespace qvl::cpu {

namespace {

QVL_TARGET_AVX2 void add_avx2(float* out, const float* in, int64_t n) {
  int64_t c = 0;
  for (; c + 32 <= n; c += 32) {
    for (int k = 0; k < 32; k += 8)
      _mm256_storeu_ps(out + c + k, _mm256_add_ps(_mm256_loadu_ps(out + c + k), _mm256_loadu_ps(in + c + k)));
  }
  for (; c + 8 <= n; c += 8) _mm256_storeu_ps(out + c, _mm256_add_ps(_mm256_loadu_ps(out + c), _mm256_loadu_ps(in + c)));
  for (; c < n; ++c) out[c] += in[c];
}

}  // namespace

void rows_avx2(const ops::RowsParams& p, const ExecContext& ctx) { rows_detail::run(p, ctx.pool(), &add_avx2); }

}  // namespace qvl::cpu
