// Plain activations in double, straight from the definitions. gelu_erf uses erfc(-x/√2), which
// equals 1 + erf(x/√2) without its cancellation for negative x. Single-threaded on purpose.
#include <cmath>

#include "ops/activation.h"

namespace qvl::cpu {

namespace {

double act_ref(ops::ActKind kind, double x, double up) {
  switch (kind) {
    case ops::ActKind::GeluErf: return 0.5 * x * std::erfc(-x / std::sqrt(2.0));
    case ops::ActKind::GeluTanh: {
      const double u = std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
      return 0.5 * x * (1.0 + std::tanh(u));
    }
    case ops::ActKind::QuickGelu: return x / (1.0 + std::exp(-1.702 * x));
    case ops::ActKind::Silu: return x / (1.0 + std::exp(-x));
    case ops::ActKind::SwiGlu: return x / (1.0 + std::exp(-x)) * up;
  }
  return 0;
}

}  // namespace

void activation_ref(const ops::ActivationParams& p, const ExecContext& /*ctx*/) {
  const bool gated = p.kind == ops::ActKind::SwiGlu;
  for (int64_t r = 0; r < p.rows; ++r) {
    const float* x = p.x + r * p.ldx;
    const float* up = gated ? p.up + r * p.ldu : nullptr;
    float* out = p.out + r * p.ldo;
    for (int64_t i = 0; i < p.dim; ++i) {
      out[i] = static_cast<float>(act_ref(p.kind, x[i], gated ? up[i] : 0.0));
    }
  }
}

}  // namespace qvl::cpu
