#include "ops/rope.h"

#include "ops/backends.h"
#include "ops/backends.h"

#include <limits>
#include <string>

namespace qvl::ops {

const OpFamily<RopeFn>& rope_family() {
  static const OpFamily<RopeFn> family("rope", QVL_BACKEND_VARIANTS(rope));
  return family;
}

void check_rope(const RopeParams& p) {
  QVL_CHECK(p.T >= 0, Input, "rope: T must be >= 0, got " + std::to_string(p.T));
  QVL_CHECK(p.H >= 1 && p.D >= 1, Input,
            "rope: H and D must be >= 1 (got H=" + std::to_string(p.H) + " D=" + std::to_string(p.D) + ")");
  QVL_CHECK(p.H <= std::numeric_limits<int32_t>::max() && p.D <= std::numeric_limits<int32_t>::max(), Input,
            "rope: H and D must fit in 32 bits");
  QVL_CHECK(p.rotary_dim >= 2 && p.rotary_dim % 2 == 0 && p.rotary_dim <= p.D, Input,
            "rope: rotary_dim must be even and in [2, D=" + std::to_string(p.D) + "], got " +
                std::to_string(p.rotary_dim));
  QVL_CHECK(p.ld >= p.H * p.D, Input,
            "rope: ld (" + std::to_string(p.ld) + ") must be >= H*D (" + std::to_string(p.H * p.D) + ")");
  QVL_CHECK(p.T == 0 || p.ld <= std::numeric_limits<int64_t>::max() / 4 / p.T, Input, "rope: x is too large to address");
  if (p.T > 0) QVL_CHECK(p.x && p.cos && p.sin, Input, "rope: x, cos or sin is null");
}

void rope_apply(const RopeParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "rope");
  check_rope(p);
  rope_family().best(ctx.device()).fn(p, ctx);
}

}  // namespace qvl::ops
