// Softmax in scalar fp32 with vec_math's exp; the sum is kept in double (free in scalar code).
#include <limits>

#include "backends/cpu/rows_cpu.h"
#include "backends/cpu/vec_math.h"
#include "ops/softmax.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kGrain = 16384;

void row(const float* x, float* out, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  if (mx == -std::numeric_limits<float>::infinity()) {  // fully masked row: zeros (see softmax.h)
    for (int64_t i = 0; i < n; ++i) out[i] = 0.0f;
    return;
  }
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    // x - max exactly, as a float pair (an fp32 difference would cost |x - max|·2^-24).
    const double d = static_cast<double>(x[i]) - mx;
    const float h = static_cast<float>(d), l = h > vm::kExpMin ? static_cast<float>(d - h) : 0.0f;
    const float e = vm::exp_scalar(h, l);
    out[i] = e;
    sum += e;
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) out[i] *= inv;
}

}  // namespace

void softmax_generic(const ops::SoftmaxParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  parallel_rows(pool, p.rows, p.dim, kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) row(p.x + r * p.ldx, p.out + r * p.ldo, p.dim);
  });
}

}  // namespace qvl::cpu
