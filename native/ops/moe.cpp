#include "ops/moe.h"

#include "ops/backends.h"
#include "ops/backends.h"

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

}  // namespace

void check_moe(const MoeParams& p) {
  QVL_CHECK(p.T >= 0, Input, "moe: T must be >= 0 (got " + n2s(p.T) + ")");
  QVL_CHECK(p.E >= 1 && p.H >= 1 && p.I >= 1, Input,
            "moe: E, H and I must be >= 1 (got E=" + n2s(p.E) + " H=" + n2s(p.H) + " I=" + n2s(p.I) + ")");
  QVL_CHECK(p.k >= 1 && p.k <= p.E, Input, "moe: k must be in [1, E=" + n2s(p.E) + "] (got " + n2s(p.k) + ")");
  QVL_CHECK(p.E <= std::numeric_limits<int32_t>::max(), Input, "moe: E must fit in 32 bits");
  WeightFormat known;
  QVL_CHECK(weight_format_from_int(static_cast<int32_t>(p.w_format), &known), Input,
            "moe: unknown weight format " + n2s(static_cast<int32_t>(p.w_format)));
  const WeightFormatTraits& wt = weight_format_traits(p.w_format);
  int64_t row_bytes = 0;
  QVL_CHECK(weight_row_bytes(p.w_format, p.H, &row_bytes) && weight_row_bytes(p.w_format, p.I, &row_bytes), Input,
            std::string("moe: ") + wt.name + " rows come in blocks of " + n2s(wt.block) +
                " elements; H and I must be multiples");
  QVL_CHECK(!wt.has_scales && !wt.has_zeros, Unsupported,
            std::string("moe: ") + wt.name + " expert weights need scales, which the moe op does not carry yet");
  QVL_CHECK(p.ld_logits >= p.E, Input, "moe: ld_logits (" + n2s(p.ld_logits) + ") must be >= E (" + n2s(p.E) + ")");
  QVL_CHECK(p.ldx >= p.H, Input, "moe: ldx (" + n2s(p.ldx) + ") must be >= H (" + n2s(p.H) + ")");
  QVL_CHECK(p.ldo >= p.H, Input, "moe: ldo (" + n2s(p.ldo) + ") must be >= H (" + n2s(p.H) + ")");
  check_extent(p.T, p.ld_logits, "router_logits");
  check_extent(p.T, p.ldx, "x");
  check_extent(p.T, p.ldo, "out");
  check_extent(p.E, 2 * p.I, "gate_up");
  check_extent(p.E * 2 * p.I, p.H, "gate_up");
  check_extent(p.E * p.H, p.I, "down");
  check_extent(p.T, p.k * (p.H + 3 * p.I), "the expert workspace");
  QVL_CHECK(p.gate_up && p.down, Input, "moe: gate_up or down is null");
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

WeightRef moe_expert_weight(WeightFormat f, const void* base, int64_t e, int64_t rows, int64_t cols) {
  int64_t row_bytes = 0;
  QVL_CHECK(weight_row_bytes(f, cols, &row_bytes), Input,
            std::string("moe: ") + weight_format_name(f) + " rows of " + n2s(cols) + " elements are not whole blocks");
  WeightRef w;
  w.format = f;
  w.data = static_cast<const char*>(base) + e * rows * row_bytes;
  w.ld = cols;
  w.out = rows;
  w.in = cols;
  return w;
}

void moe(const MoeParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "moe");
  check_moe(p);
  const Variant<MoeFn>* v = moe_family().best_for(ctx.device(), p.w_format);
  if (!v) {
    fail(ErrorCode::Unsupported, std::string("moe: no kernel on ") + device_name(ctx.device()) + " reads " +
                                     weight_format_name(p.w_format) + " weights");
  }
  v->fn(p, ctx);
}

}  // namespace qvl::ops
