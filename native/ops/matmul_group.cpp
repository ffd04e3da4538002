#include "ops/matmul_group.h"

#include <algorithm>
#include <atomic>
#include <exception>

#include "core/error.h"

namespace qvl::ops {

namespace {

// Output rows per piece of work: a multiple of 16 (the kernels' row blocks are 1, 4 or 16 rows,
// so every piece starts where a separate call's block would), about four pieces per thread.
int64_t piece_rows(int64_t total_n, int64_t threads) {
  const int64_t per = (total_n + threads * 4 - 1) / (threads * 4);
  return std::max<int64_t>(16, (per + 15) / 16 * 16);
}

// Rows [n0, n1) of a problem's output as a problem of their own: the same x, the weight's rows
// from n0 (data, scales and zero points), the bias and y shifted to match.
MatmulParams rows_of(const MatmulParams& p, int64_t n0, int64_t n1) {
  MatmulParams s = p;
  s.N = n1 - n0;
  s.w = weight_rows_from(p.w, n0);
  s.w.out = s.N;
  if (p.bias) s.bias = p.bias + n0;
  s.y = p.y + n0;
  return s;
}

}  // namespace

void matmul_group(const MatmulParams* parts, int64_t n, const ExecContext& ctx) {
  QVL_CHECK(n >= 0 && (parts || n == 0), Input, "matmul_group: no parts");
  ThreadPool& pool = ctx.pool();
  bool together = ctx.device() == Device::Host && pool.size() > 1 && n > 1;
  for (int64_t i = 0; i < n && together; ++i) together = parts[i].M <= kMatmulGroupMaxRows && !matmul_runs_bf16(parts[i], ctx);
  if (!together) {
    for (int64_t i = 0; i < n; ++i) matmul(parts[i], ctx);
    return;
  }
  OpTimer timer(ctx, "matmul");
  QVL_CHECK(n <= kMatmulGroupMaxParts, Input,
            "matmul_group: at most " + std::to_string(kMatmulGroupMaxParts) + " parts, got " + std::to_string(n));
  const Variant<MatmulFn>* variant[kMatmulGroupMaxParts];
  int64_t first_piece[kMatmulGroupMaxParts + 1];
  int64_t total_n = 0;
  for (int64_t i = 0; i < n; ++i) {
    check_matmul(parts[i]);
    check_cancel(parts[i].cancel, "a matmul");
    variant[i] = &matmul_variant(ctx.device(), parts[i].w.format);
    total_n += parts[i].M > 0 && parts[i].K > 0 ? parts[i].N : 0;
  }
  const int64_t rows = piece_rows(total_n, pool.size());
  first_piece[0] = 0;
  for (int64_t i = 0; i < n; ++i) {
    // Parts without work (no rows, or K = 0: bias only) are one piece, run as matmul() would.
    const int64_t pieces = parts[i].M > 0 && parts[i].K > 0 && parts[i].N > 0 ? (parts[i].N + rows - 1) / rows : 1;
    first_piece[i + 1] = first_piece[i] + pieces;
  }
  // The variants' own parallel_for runs inline inside this job; the nested context carries no
  // profiler (this call's timer counts the group once) and no arena (pieces run on several threads).
  const ExecContext inner = ctx.nested(pool);
  // A variant that throws on a pool thread must not end the process: the first error is kept
  // and rethrown here, on the caller's thread.
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  pool.parallel_for(first_piece[n], 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e && !failed.load(std::memory_order_relaxed); ++c) {
      int64_t i = 0;
      while (first_piece[i + 1] <= c) ++i;
      const MatmulParams& p = parts[i];
      const int64_t n0 = (c - first_piece[i]) * rows;
      try {
        variant[i]->fn(first_piece[i + 1] - first_piece[i] == 1 ? p : rows_of(p, n0, std::min(n0 + rows, p.N)), inner);
      } catch (...) {
        if (!failed.exchange(true)) error = std::current_exception();
      }
    }
  });
  if (error) std::rethrow_exception(error);
  for (int64_t i = 0; i < n; ++i) check_cancel(parts[i].cancel, "a matmul");
}

}  // namespace qvl::ops
