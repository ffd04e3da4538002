#include "ops/finite.h"

#include "ops/backends.h"

#include <string>

#include "ops/rows_check.h"
#include "ops/backends.h"

namespace qvl::ops {

const OpFamily<FiniteFn>& finite_family() {
  static const OpFamily<FiniteFn> family("finite", QVL_BACKEND_VARIANTS(finite));
  return family;
}

void check_finite(const FiniteParams& p) {
  QVL_CHECK(p.dtype == DType::F32 || p.dtype == DType::BF16 || p.dtype == DType::F16 || p.dtype == DType::F8E4M3,
            Input, std::string("finite: dtype must be f32, bf16, f16 or f8_e4m3 (got ") + dtype_name(p.dtype) + ")");
  QVL_CHECK(p.n >= 0, Input, "finite: count must be >= 0 (got " + std::to_string(p.n) + ")");
  if (p.n > 0) check_rows("finite", "x", p.x, 1, p.n, p.n, dtype_size(p.dtype));
}

int64_t first_nonfinite(const FiniteParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "finite");
  check_finite(p);
  if (p.n == 0) return -1;
  return finite_family().best(ctx.device()).fn(p, ctx);
}

}  // namespace qvl::ops
