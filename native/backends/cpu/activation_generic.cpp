// Activations in scalar fp32 with vec_math's exp/erfc; the arguments that need more than fp32
// (1.702·x, the gelu_tanh cubic, x²) are formed in double and split into a float pair.
#include "backends/cpu/rows_cpu.h"
#include "backends/cpu/vec_math.h"
#include "ops/activation.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kGrain = 16384;

inline float clampf(float x, float lim) { return x < -lim ? -lim : (x > lim ? lim : x); }  // NaN stays

// x / (1 + e^-z) with z = zd rounded to a float pair.
inline float x_sigmoid(float x, double zd) {
  const float zh = static_cast<float>(zd), zl = static_cast<float>(zd - zh);
  return x / (1.0f + vm::exp_scalar(-zh, -zl));
}

inline float silu1(float x) { return x / (1.0f + vm::exp_scalar(-x)); }
inline float quick_gelu1(float x) { return x_sigmoid(x, vm::kQuickGelu * clampf(x, 100.0f)); }
inline float gelu_tanh1(float x) {
  const double c = clampf(x, 20.0f);  // past ±20 the sigmoid is exactly 0 or 1 in fp32
  return x_sigmoid(x, c * (vm::kTanhK1 + vm::kTanhK3 * c * c));
}
inline float gelu_erf1(float x) {
  const float q = vm::erfc_abs_scalar(x);  // erfc(|x|/√2); 1 + erf(x/√2) = 2 - q for x >= 0
  return 0.5f * x * (x < 0 ? q : 2.0f - q);
}

void row(ops::ActKind kind, const float* x, const float* up, float* out, int64_t n) {
  switch (kind) {
    case ops::ActKind::GeluErf: for (int64_t i = 0; i < n; ++i) out[i] = gelu_erf1(x[i]); break;
    case ops::ActKind::GeluTanh: for (int64_t i = 0; i < n; ++i) out[i] = gelu_tanh1(x[i]); break;
    case ops::ActKind::QuickGelu: for (int64_t i = 0; i < n; ++i) out[i] = quick_gelu1(x[i]); break;
    case ops::ActKind::Silu: for (int64_t i = 0; i < n; ++i) out[i] = silu1(x[i]); break;
    case ops::ActKind::SwiGlu: for (int64_t i = 0; i < n; ++i) out[i] = silu1(x[i]) * up[i]; break;
  }
}

}  // namespace

void activation_generic(const ops::ActivationParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  const bool gated = p.kind == ops::ActKind::SwiGlu;
  parallel_elems(pool, p.rows, p.dim, kGrain, [&](int64_t r, int64_t c0, int64_t c1) {
    row(p.kind, p.x + r * p.ldx + c0, gated ? p.up + r * p.ldu + c0 : nullptr, p.out + r * p.ldo + c0, c1 - c0);
  });
}

}  // namespace qvl::cpu
