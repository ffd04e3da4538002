#include "ops/activation.h"

#include "ops/backends.h"

#include <string>

#include "ops/rows_check.h"
#include "ops/backends.h"

namespace qvl::ops {

const OpFamily<ActivationFn>& activation_family() {
  static const OpFamily<ActivationFn> family("activation", QVL_BACKEND_VARIANTS(activation));
  return family;
}

const char* act_kind_name(ActKind k) {
  switch (k) {
    case ActKind::GeluErf: return "gelu_erf";
    case ActKind::GeluTanh: return "gelu_tanh";
    case ActKind::QuickGelu: return "quick_gelu";
    case ActKind::Silu: return "silu";
    case ActKind::SwiGlu: return "swiglu";
  }
  return "?";
}

void check_activation(const ActivationParams& p) {
  const int32_t k = static_cast<int32_t>(p.kind);
  QVL_CHECK(k >= 0 && k <= static_cast<int32_t>(ActKind::SwiGlu), Input,
            "activation: unknown kind " + std::to_string(k));
  const std::string op = std::string("activation (") + act_kind_name(p.kind) + ")";
  check_rows(op.c_str(), "x", p.x, p.rows, p.dim, p.ldx, sizeof(float));
  check_rows(op.c_str(), "out", p.out, p.rows, p.dim, p.ldo, sizeof(float));
  if (p.kind == ActKind::SwiGlu) {
    check_rows(op.c_str(), "up", p.up, p.rows, p.dim, p.ldu, sizeof(float));
    QVL_CHECK(p.out != p.up || p.ldo == p.ldu, Input,
              op + ": in place on up needs ldo == ldu (got " + std::to_string(p.ldo) + " and " + std::to_string(p.ldu) + ")");
  } else {
    QVL_CHECK(p.up == nullptr, Input, op + ": up is only used by swiglu");
  }
  QVL_CHECK(p.out != p.x || p.ldo == p.ldx, Input,
            op + ": in place needs ldo == ldx (got " + std::to_string(p.ldo) + " and " + std::to_string(p.ldx) + ")");
}

void activation(const ActivationParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "activation");
  check_activation(p);
  activation_family().best(ctx.device()).fn(p, ctx);
}

}  // namespace qvl::ops
