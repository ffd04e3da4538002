#include "ops/softmax.h"

#include "ops/backends.h"

#include <string>

#include "ops/rows_check.h"
#include "ops/backends.h"

namespace qvl::ops {

const OpFamily<SoftmaxFn>& softmax_family() {
  static const OpFamily<SoftmaxFn> family("softmax", QVL_BACKEND_VARIANTS(softmax));
  return family;
}

void check_softmax(const SoftmaxParams& p) {
  check_rows("softmax", "x", p.x, p.rows, p.dim, p.ldx, sizeof(float));
  check_rows("softmax", "out", p.out, p.rows, p.dim, p.ldo, sizeof(float));
  QVL_CHECK(p.out != p.x || p.ldo == p.ldx, Input,
            "softmax: in place needs ldo == ldx (got " + std::to_string(p.ldo) + " and " + std::to_string(p.ldx) + ")");
}

void softmax(const SoftmaxParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "softmax");
  check_softmax(p);
  softmax_family().best(ctx.device()).fn(p, ctx);
}

}  // namespace qvl::ops
