// The fp8 matmul's loop nest and threading, shared by its ISA variants (matmul_fp8.h).
#include <algorithm>
#include <vector>

#include "backends/cpu/matmul_fp8.h"
#include "core/error.h"

namespace qvl::cpu {

namespace {

// Weight rows dequantized per large-M pass: about 2 MiB of f32, at least 32 rows.
int64_t rows_per_pass(int64_t K) { return std::max<int64_t>(32, (int64_t(1) << 19) / std::max<int64_t>(K, 1) / 32 * 32); }

}  // namespace

void run_matmul_fp8(const ops::MatmulParams& p, const ExecContext& ctx, const Fp8Kernels& k) {
  QVL_CHECK(p.w.format == WeightFormat::F8, Unsupported,
            std::string("matmul: ") + weight_format_name(p.w.format) + " weights are not read by the fp8 kernels");
  if (p.M == 0 || p.N == 0) return;
  ThreadPool& pool = ctx.pool();
  if (p.K == 0) {
    for (int64_t m = 0; m < p.M; ++m)
      for (int64_t n = 0; n < p.N; ++n) p.y[m * p.ldy + n] = p.bias ? p.bias[n] : 0.0f;
    return;
  }
  const int64_t nt = pool.size();
  if (p.M <= kFp8SmallM) {
    const int64_t grain = nt == 1 ? p.N : std::max<int64_t>(16, (p.N + nt * 4 - 1) / (nt * 4));
    const int rows = static_cast<int>(p.M);
    pool.parallel_for(p.N, grain, [&](int64_t b, int64_t e) { k.rows(p, 0, rows, b, e); });
    return;
  }
  const WeightFormatTraits& t = weight_format_traits(WeightFormat::F8);
  const int64_t chunk = std::min(p.N, rows_per_pass(p.K));
  thread_local std::vector<float> buf;
  if (buf.size() < static_cast<size_t>(chunk * p.K)) buf.resize(static_cast<size_t>(chunk * p.K));
  for (int64_t n0 = 0; n0 < p.N; n0 += chunk) {
    if (p.cancel && p.cancel->cancelled()) return;  // matmul() throws once the variant returns
    const int64_t n1 = std::min(p.N, n0 + chunk);
    float* w = buf.data();
    pool.parallel_for(n1 - n0, 4, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) t.dequantize_row(p.w, n0 + r, 0, p.K, w + r * p.K);
    });
    ops::MatmulParams d = p;
    d.N = n1 - n0;
    d.w = dense_weight(WeightFormat::F32, w, n1 - n0, p.K, p.K);
    d.bias = p.bias ? p.bias + n0 : nullptr;
    d.y = p.y + n0;
    k.dense(d, ctx);
  }
}

}  // namespace qvl::cpu
