// layer_norm and rms_norm in scalar fp32: row sums in double, the mean as a float pair, every
// output element in fp32 in the order transformers uses.
#include <cmath>

#include "backends/cpu/rows_cpu.h"
#include "backends/cpu/vec_math.h"
#include "ops/norm.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kGrain = 16384;

template <DType T>
void layer_row(const ops::NormParams& p, const float* x, float* out) {
  const int64_t n = p.dim;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  const double mean = s / static_cast<double>(n);
  double v = 0;
  for (int64_t i = 0; i < n; ++i) v += (x[i] - mean) * (x[i] - mean);
  const float rstd = static_cast<float>(1.0 / std::sqrt(v / static_cast<double>(n) + p.eps));
  const float mh = static_cast<float>(mean), ml = static_cast<float>(mean - mh);
  for (int64_t i = 0; i < n; ++i) {
    float y = ((x[i] - mh) - ml) * rstd;
    if (p.weight) y *= vm::load1<T>(p.weight, i);
    if (p.bias) y += vm::load1<T>(p.bias, i);
    out[i] = y;
  }
}

template <DType T>
void rms_row(const ops::NormParams& p, const float* x, float* out) {
  double ss = 0;
  for (int64_t i = 0; i < p.dim; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float rs = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(p.dim) + p.eps));
  for (int64_t i = 0; i < p.dim; ++i) {
    const float y = x[i] * rs;
    out[i] = p.weight ? vm::load1<T>(p.weight, i) * y : y;
  }
}

using RowFn = void (*)(const ops::NormParams&, const float*, float*);

template <template <DType> class Row>
RowFn pick(DType t) {
  return t == DType::BF16 ? &Row<DType::BF16>::run : t == DType::F16 ? &Row<DType::F16>::run : &Row<DType::F32>::run;
}
template <DType T>
struct Layer { static void run(const ops::NormParams& p, const float* x, float* o) { layer_row<T>(p, x, o); } };
template <DType T>
struct Rms { static void run(const ops::NormParams& p, const float* x, float* o) { rms_row<T>(p, x, o); } };

void run(const ops::NormParams& p, ThreadPool& pool, RowFn fn) {
  parallel_rows(pool, p.rows, p.dim, kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) fn(p, p.x + r * p.ldx, p.out + r * p.ldo);
  });
}

}  // namespace

void layer_norm_generic(const ops::NormParams& p, const ExecContext& ctx) { run(p, ctx.pool(), pick<Layer>(p.w_dtype)); }
void rms_norm_generic(const ops::NormParams& p, const ExecContext& ctx) { run(p, ctx.pool(), pick<Rms>(p.w_dtype)); }

}  // namespace qvl::cpu
