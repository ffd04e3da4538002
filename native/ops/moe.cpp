#include "ops/moe.h"

#include "ops/backends.h"
#include "ops/matmul.h"

#include <cmath>
#include <limits>
#include <string>

namespace qvl::ops {

const OpFamily<MoeFn>& moe_family() {
  static const OpFamily<MoeFn> family("moe", QVL_BACKEND_VARIANTS(moe));
  return family;
}

namespace {

std::string n2s(int64_t v) { return std::to_string(v); }

void check_extent(int64_t rows, int64_t stride, const char* what) {
  QVL_CHECK(rows == 0 || stride <= std::numeric_limits<int64_t>::max() / 8 / rows, Input,
            std::string("moe: ") + what + " is too large to address");
}

// A stacked expert weight must be [rows, cols] and pass the matmul op's own checks (format, row
// blocks, scales, group), which every expert slice then inherits.
void check_experts(const WeightRef& w, int64_t rows, int64_t cols, const char* what) {
  QVL_CHECK(w.out == rows && w.in == cols, Input,
            std::string("moe: ") + what + " is [" + n2s(w.out) + "," + n2s(w.in) + "], expected [" + n2s(rows) + "," +
                n2s(cols) + "]");
  MatmulParams m;
  m.N = rows, m.K = cols, m.w = w, m.ldx = cols, m.ldy = rows;
  try {
    check_matmul(m);
  } catch (const Error& e) {
    fail(ErrorCode::Input, std::string("moe: ") + what + ": " + e.what());
  }
  QVL_CHECK(w.data, Input, std::string("moe: ") + what + " is null");
}

}  // namespace

void check_moe(const MoeParams& p) {
  QVL_CHECK(p.T >= 0, Input, "moe: T must be >= 0 (got " + n2s(p.T) + ")");
  QVL_CHECK(p.E >= 1 && p.H >= 1 && p.I >= 1, Input,
            "moe: E, H and I must be >= 1 (got E=" + n2s(p.E) + " H=" + n2s(p.H) + " I=" + n2s(p.I) + ")");
  QVL_CHECK(p.k >= 1 && p.k <= p.E, Input, "moe: k must be in [1, E=" + n2s(p.E) + "] (got " + n2s(p.k) + ")");
  QVL_CHECK(p.E <= std::numeric_limits<int32_t>::max(), Input, "moe: E must fit in 32 bits");
  check_extent(p.E, 2 * p.I, "gate_up");
  check_extent(p.E, p.H, "down");
  check_experts(p.gate_up, p.E * 2 * p.I, p.H, "gate_up");
  check_experts(p.down, p.E * p.H, p.I, "down");
  QVL_CHECK(p.ld_logits >= p.E, Input, "moe: ld_logits (" + n2s(p.ld_logits) + ") must be >= E (" + n2s(p.E) + ")");
  QVL_CHECK(p.ldx >= p.H, Input, "moe: ldx (" + n2s(p.ldx) + ") must be >= H (" + n2s(p.H) + ")");
  QVL_CHECK(p.ldo >= p.H, Input, "moe: ldo (" + n2s(p.ldo) + ") must be >= H (" + n2s(p.H) + ")");
  check_extent(p.T, p.ld_logits, "router_logits");
  check_extent(p.T, p.ldx, "x");
  check_extent(p.T, p.ldo, "out");
  check_extent(p.T, p.k * (p.H + 3 * p.I), "the expert workspace");
  if (p.T == 0) return;
  QVL_CHECK(p.router_logits && p.x && p.out, Input, "moe: router_logits, x or out is null");
  // The output is written while x is still being read by other experts.
  const char* ob = reinterpret_cast<const char*>(p.out);
  const char* oe = reinterpret_cast<const char*>(p.out + (p.T - 1) * p.ldo + p.H);
  const char* xb = reinterpret_cast<const char*>(p.x);
  const char* xe = reinterpret_cast<const char*>(p.x + (p.T - 1) * p.ldx + p.H);
  QVL_CHECK(oe <= xb || xe <= ob, Input, "moe: out must not overlap x");
  for (int64_t t = 0; t < p.T; ++t) {
    const float* row = p.router_logits + t * p.ld_logits;
    bool finite_max = false;
    for (int64_t e = 0; e < p.E; ++e) {
      const float v = row[e];
      QVL_CHECK(!std::isnan(v) && v != std::numeric_limits<float>::infinity(), Input,
                "moe: router_logits[" + n2s(t) + "][" + n2s(e) + "] is " + (std::isnan(v) ? "NaN" : "+inf"));
      finite_max = finite_max || std::isfinite(v);
    }
    QVL_CHECK(finite_max, Input, "moe: router_logits row " + n2s(t) + " is all -inf");
  }
}

WeightRef moe_expert_weight(const WeightRef& stacked, int64_t e, int64_t rows) {
  QVL_CHECK(e >= 0 && rows >= 0 && (e + 1) * rows <= stacked.out, Input,
            "moe: expert " + n2s(e) + " of " + n2s(rows) + " rows lies outside the stacked weight's " + n2s(stacked.out));
  WeightRef w = weight_rows_from(stacked, e * rows);
  w.out = rows;
  return w;
}

void moe(const MoeParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "moe");
  check_moe(p);
  const Variant<MoeFn>* v = moe_family().best_for(ctx.device(), p.gate_up.format);
  if (!v || !v->reads(p.down.format)) {
    fail(ErrorCode::Unsupported, std::string("moe: no kernel on ") + device_name(ctx.device()) + " reads " +
                                     weight_format_name(p.gate_up.format) + " and " + weight_format_name(p.down.format) +
                                     " expert weights");
  }
  v->fn(p, ctx);
}

}  // namespace qvl::ops
