#include "ops/attention.h"

#include "ops/backends.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace qvl::ops {

const OpFamily<AttentionFn>& attention_family() {
  static const OpFamily<AttentionFn> family("attention", QVL_BACKEND_VARIANTS(attention));
  return family;
}

const OpFamily<AttentionFn>& attention_bf16_family() {
  static const OpFamily<AttentionFn> family("attention_bf16", QVL_BACKEND_VARIANTS(attention_bf16));
  return family;
}

const OpFamily<AttentionFn>& attention_bf16_decode_family() {
  static const OpFamily<AttentionFn> family("attention_bf16_decode", QVL_BACKEND_VARIANTS(attention_bf16_decode));
  return family;
}

namespace {

std::string seg_name(int64_t s) { return "attention: segment " + std::to_string(s) + ": "; }

// rows·stride elements must be addressable without overflowing int64.
void check_extent(int64_t rows, int64_t stride, const char* what) {
  QVL_CHECK(rows == 0 || stride <= std::numeric_limits<int64_t>::max() / 4 / rows, Input,
            std::string("attention: ") + what + " is too large to address");
}

}  // namespace

void check_attention(const AttentionParams& p) {
  QVL_CHECK(p.Hq >= 1 && p.Hkv >= 1 && p.D >= 1, Input,
            "attention: Hq, Hkv and D must be >= 1 (got Hq=" + std::to_string(p.Hq) + " Hkv=" + std::to_string(p.Hkv) +
                " D=" + std::to_string(p.D) + ")");
  QVL_CHECK(p.Hq % p.Hkv == 0, Input,
            "attention: Hq (" + std::to_string(p.Hq) + ") must be a multiple of Hkv (" + std::to_string(p.Hkv) + ")");
  QVL_CHECK(p.Hq <= std::numeric_limits<int32_t>::max() && p.D <= std::numeric_limits<int32_t>::max(), Input,
            "attention: Hq and D must fit in 32 bits");
  visit_kv_type(p.kv_dtype, [](auto) {});  // E_INPUT unless f32 or bf16
  QVL_CHECK(p.Tq >= 0 && p.Tk >= 0, Input,
            "attention: Tq and Tk must be >= 0 (got " + std::to_string(p.Tq) + ", " + std::to_string(p.Tk) + ")");
  // The kernels count keys in 32 bits.
  QVL_CHECK(p.Tk < std::numeric_limits<int32_t>::max() - 1024, Input,
            "attention: Tk (" + std::to_string(p.Tk) + ") must be below 2^31");
  const int64_t qw = p.Hq * p.D, kw = p.Hkv * p.D;
  QVL_CHECK(p.ldq >= qw, Input, "attention: ldq (" + std::to_string(p.ldq) + ") must be >= Hq*D (" + std::to_string(qw) + ")");
  QVL_CHECK(p.ldo >= qw, Input, "attention: ldo (" + std::to_string(p.ldo) + ") must be >= Hq*D (" + std::to_string(qw) + ")");
  QVL_CHECK(p.ldk >= kw, Input, "attention: ldk (" + std::to_string(p.ldk) + ") must be >= Hkv*D (" + std::to_string(kw) + ")");
  QVL_CHECK(p.ldv >= kw, Input, "attention: ldv (" + std::to_string(p.ldv) + ") must be >= Hkv*D (" + std::to_string(kw) + ")");
  check_extent(p.Tq, p.ldq, "q");
  check_extent(p.Tq, p.ldo, "out");
  check_extent(p.Tk, p.ldk, "k");
  check_extent(p.Tk, p.ldv, "v");
  QVL_CHECK(std::isfinite(p.scale), Input, "attention: scale must be finite");
  QVL_CHECK(p.n_segments >= 0, Input, "attention: n_segments must be >= 0");
  QVL_CHECK(p.n_segments == 0 || p.segments, Input, "attention: segments is null");
  if (p.Tq > 0) QVL_CHECK(p.q && p.out, Input, "attention: q or out is null");

  std::vector<std::pair<int64_t, int64_t>> qranges;
  qranges.reserve(static_cast<size_t>(p.n_segments));
  for (int64_t s = 0; s < p.n_segments; ++s) {
    const AttentionSegment& g = p.segments[s];
    QVL_CHECK(g.q_start >= 0 && g.q_start <= g.q_end && g.q_end <= p.Tq, Input,
              seg_name(s) + "query rows [" + std::to_string(g.q_start) + ", " + std::to_string(g.q_end) +
                  ") are not inside [0, Tq=" + std::to_string(p.Tq) + "]");
    QVL_CHECK(g.k_start >= 0 && g.k_start <= g.k_end && g.k_end <= p.Tk, Input,
              seg_name(s) + "key rows [" + std::to_string(g.k_start) + ", " + std::to_string(g.k_end) +
                  ") are not inside [0, Tk=" + std::to_string(p.Tk) + "]");
    if (p.causal) {
      QVL_CHECK(g.k_end - g.k_start >= g.q_end - g.q_start, Input,
                seg_name(s) + "causal attention needs at least as many keys (" + std::to_string(g.k_end - g.k_start) +
                    ") as queries (" + std::to_string(g.q_end - g.q_start) + ")");
    }
    QVL_CHECK(!g.k == !g.v, Input, seg_name(s) + "has its own keys or values but not both");
    QVL_CHECK(g.k_end == g.k_start || g.k || (p.k && p.v), Input, seg_name(s) + "has keys but k or v is null");
    if (g.q_end > g.q_start) qranges.emplace_back(g.q_start, g.q_end);
  }
  // Two segments writing the same output rows would race in the threaded kernels.
  std::sort(qranges.begin(), qranges.end());
  for (size_t i = 1; i < qranges.size(); ++i) {
    QVL_CHECK(qranges[i].first >= qranges[i - 1].second, Input,
              "attention: segments overlap in query rows (row " + std::to_string(qranges[i].first) +
                  " belongs to two segments)");
  }
}

namespace {

// The family's best allowed variant on d other than the reference (of equal ISAs the later one).
const Variant<AttentionFn>* fast_variant(const OpFamily<AttentionFn>& family, Device d) {
  const Variant<AttentionFn>* fast = nullptr;
  for (const auto& v : family.variants()) {
    if (v.device == d && v.isa != Isa::Reference && OpFamilyBase::allowed(v.device, v.isa) && (!fast || v.isa >= fast->isa)) {
      fast = &v;
    }
  }
  return fast;
}

}  // namespace

const Variant<AttentionFn>* attention_bf16_variant(Device d) { return fast_variant(attention_bf16_family(), d); }
const Variant<AttentionFn>* attention_bf16_decode_variant(Device d) { return fast_variant(attention_bf16_decode_family(), d); }

void attention(const AttentionParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "attention");
  check_attention(p);
  check_cancel(p.cancel, "attention");
  const bool bf16 = ctx.precision() == Precision::Fast;
  const Variant<AttentionFn>* wide = bf16 ? attention_bf16_variant(ctx.device()) : nullptr;
  const Variant<AttentionFn>* narrow = bf16 ? attention_bf16_decode_variant(ctx.device()) : nullptr;
  const AttentionFn exact = attention_family().best(ctx.device()).fn;
  // Each segment's kernel: 0 exact, 1 attention_bf16, 2 attention_bf16_decode.
  auto kernel = [&](const AttentionSegment& g) {
    if (!p.causal || g.q_end - g.q_start >= kBf16MinQueryRows) return wide ? 1 : 0;
    return narrow ? 2 : 0;
  };
  const AttentionFn fns[3] = {exact, wide ? wide->fn : nullptr, narrow ? narrow->fn : nullptr};
  std::vector<AttentionSegment> segs[3];
  for (int64_t s = 0; s < p.n_segments; ++s) segs[kernel(p.segments[s])].push_back(p.segments[s]);
  for (int i = 0; i < 3; ++i) {
    if (segs[i].empty()) continue;
    if (segs[i].size() == static_cast<size_t>(p.n_segments)) {
      fns[i](p, ctx);  // one kernel for the whole call (the usual case)
      break;
    }
    // A batch of prefill and decode rows: each kind to its kernel, one call each over disjoint rows.
    AttentionParams part = p;
    part.segments = segs[i].data();
    part.n_segments = static_cast<int64_t>(segs[i].size());
    fns[i](part, ctx);
    check_cancel(p.cancel, "attention");
  }
  check_cancel(p.cancel, "attention");
}

}  // namespace qvl::ops
