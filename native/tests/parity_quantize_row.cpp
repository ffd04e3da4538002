// quantize_row parity: every variant must give the reference's bytes exactly (codes, f16 scales,
// q4 zero points) and the same overflowing group, on q8 and q4 rows at groups 32, 64 and 128,
// row lengths with an odd number of 32-blocks (the q4 half pair) and pairs spanning groups, and
// on adversarial rows: zeros of both signs, one-signed rows, scales raised to 2^-14 (tiny and
// subnormal values), exact rounding ties, magnitudes at the edge of f16's range, NaN (skipped by
// min/max, clamped like the reference) and infinities or huge values (an overflowing group).
// Rows of 5 to 37 groups put groups in the variants' vector scale step and in its scalar tail.
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/weight_quant.h"
#include "ops/quantize_row.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

struct Kind {
  const char* name;
  // Fills a row of n elements (groups of `group`) for format f.
  std::function<void(std::vector<float>&, int64_t group, WeightFormat f, Rng&)> fill;
};

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<Kind> kinds() {
  const auto each = [](auto&& gen) {
    return [gen](std::vector<float>& x, int64_t, WeightFormat, Rng& rng) {
      for (auto& v : x) v = gen(rng);
    };
  };
  return {
      {"normal", each([](Rng& r) { return 0.02f * r.normal(); })},
      {"uniform", each([](Rng& r) { return r.uniform(-1.0f, 1.0f); })},
      {"zeros", each([](Rng&) { return 0.0f; })},
      {"signed zeros", each([](Rng& r) { return r.range(0, 1) ? -0.0f : 0.0f; })},
      {"positive", each([](Rng& r) { return r.uniform(0.0f, 3.0f); })},
      {"negative", each([](Rng& r) { return r.uniform(-3.0f, -0.0f); })},
      {"tiny", each([](Rng& r) { return 1e-6f * r.normal(); })},
      {"subnormal", each([](Rng& r) { return r.range(0, 3) ? 1e-39f * r.normal() : 0.0f; })},
      {"one per group",
       [](std::vector<float>& x, int64_t group, WeightFormat, Rng& r) {
         for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<int64_t>(i) % group == 5 ? r.normal() : 0.0f;
       }},
      // The scale comes out exactly 1 (q8: amax 127; q4: range [-7.5, 7.5]), so half-integers
      // are exact ties for round-to-nearest-even.
      {"ties",
       [](std::vector<float>& x, int64_t group, WeightFormat f, Rng& r) {
         const int64_t top = f == WeightFormat::Q8 ? 254 : 15;
         for (size_t i = 0; i < x.size(); ++i) {
           const int64_t k = static_cast<int64_t>(i) % group;
           x[i] = k == 0 ? -static_cast<float>(top) / 2 : k == 1 ? static_cast<float>(top) / 2
                                                                 : static_cast<float>(r.range(-top, top)) / 2;
         }
       }},
      // Near the largest storable scale: some groups fit, a few may not.
      {"edge of f16",
       [](std::vector<float>& x, int64_t, WeightFormat f, Rng& r) {
         const float m = f == WeightFormat::Q8 ? 127.0f * 65504.0f : 7.5f * 65504.0f;
         for (auto& v : x) v = r.uniform(-1.0005f * m, 1.0005f * m);
       }},
      {"mixed magnitudes",
       [](std::vector<float>& x, int64_t group, WeightFormat, Rng& r) {
         float s = 1.0f;
         for (size_t i = 0; i < x.size(); ++i) {
           if (static_cast<int64_t>(i) % group == 0) s = std::pow(10.0f, r.uniform(-9.0f, 5.0f));
           x[i] = s * r.normal();
         }
       }},
      // q4: each group's range [-(k + 1/2)·s, (15 - k - 1/2)·s] for an f16 scale s that is no
      // power of two: the first candidate scale is s itself, and -lo · (1 / s) and hi · (1 / s)
      // round, as products, onto half-integers their exact values miss, so the zero points
      // depend on those products being rounded before they are rounded to integers, as in the
      // reference (a multiply and add contracted into one fused rounding gives other codes).
      {"zero-point ties",
       [](std::vector<float>& x, int64_t group, WeightFormat, Rng& r) {
         for (size_t g0 = 0; g0 < x.size(); g0 += static_cast<size_t>(group)) {
           const float s = f16_to_f32(f32_to_f16(r.uniform(0.05f, 0.3f))), half = static_cast<float>(r.range(2, 12)) + 0.5f;
           const float lo = -half * s, hi = (15.0f - half) * s;  // both exact: 5 bits times 11
           x[g0] = lo, x[g0 + 1] = hi;
           for (int64_t k = 2; k < group; ++k) x[g0 + static_cast<size_t>(k)] = r.uniform(lo, hi);
         }
       }},
      {"nan",
       [](std::vector<float>& x, int64_t group, WeightFormat, Rng& r) {
         for (size_t i = 0; i < x.size(); ++i) {
           const int64_t g = static_cast<int64_t>(i) / group;
           x[i] = g % 3 == 1 ? kNaN : r.range(0, 9) == 0 ? kNaN : g % 3 == 2 ? 0.0f : r.normal();
         }
       }},
      {"inf",
       [](std::vector<float>& x, int64_t, WeightFormat, Rng& r) {
         for (auto& v : x) v = r.normal();
         x[static_cast<size_t>(r.range(0, static_cast<int64_t>(x.size()) - 1))] = r.range(0, 1) ? kInf : -kInf;
       }},
      {"huge",
       [](std::vector<float>& x, int64_t, WeightFormat, Rng& r) {
         for (auto& v : x) v = r.normal();
         x[static_cast<size_t>(r.range(0, static_cast<int64_t>(x.size()) - 1))] = 3e38f;
       }},
  };
}

struct Out {
  Guarded<uint8_t> codes;
  Guarded<uint16_t> scales;
  Guarded<uint8_t> zeros;
  int64_t ret = -1;
  Out(WeightFormat f, int64_t n, int64_t group)
      : codes(static_cast<size_t>(f == WeightFormat::Q4 ? n / 2 : n), 0xcd),
        scales(static_cast<size_t>(n / group), 0xcdcd),
        zeros(static_cast<size_t>(f == WeightFormat::Q4 ? q4_zero_bytes(n / group) : 0), 0xcd) {}
  ops::QuantizeRowParams params(WeightFormat f, int64_t n, int64_t group, const float* src) {
    ops::QuantizeRowParams p;
    p.format = f, p.n = n, p.group = group, p.src = src, p.dst = codes.data(), p.scales = scales.data();
    p.zeros = f == WeightFormat::Q4 ? zeros.data() : nullptr;
    return p;
  }
  bool intact() const { return codes.intact() && scales.intact() && zeros.intact(); }
};

bool same_bytes(const Out& a, const Out& b) {
  const auto eq = [](const auto& x, const auto& y) {
    return x.size() == 0 || std::memcmp(x.data(), y.data(), x.size() * sizeof(x[0])) == 0;
  };
  return a.ret == b.ret && (a.ret >= 0 || (eq(a.codes, b.codes) && eq(a.scales, b.scales) && eq(a.zeros, b.zeros)));
}

void row_case(WeightFormat f, int64_t n, int64_t group, Rng& rng, std::vector<Result>* results) {
  const auto& family = ops::quantize_row_family();
  const std::string shape = std::string(weight_format_name(f)) + " n=" + std::to_string(n) + " group=" + std::to_string(group);
  for (const auto& v : family.runnable()) {
    Result r = variant_case("quantize_row", v, shape + " (all row kinds)");
    r.format = weight_format_name(f);
    for (const Kind& kind : kinds()) {
      for (int rep = 0; rep < 3 && r.passed; ++rep) {
        std::vector<float> x(static_cast<size_t>(n));
        if (n > 0) kind.fill(x, group, f, rng);
        Out want(f, n, group), got(f, n, group);
        want.ret = family.reference().fn(want.params(f, n, group, x.data()));
        run_case(r, [&] { got.ret = v.fn(got.params(f, n, group, x.data())); });
        r.guards_ok = r.guards_ok && got.intact();
        if (r.passed && !(got.intact() && same_bytes(want, got))) {
          r.passed = false;
          r.note = std::string(kind.name) + ": " + (got.intact() ? "bytes or overflow group differ from the reference"
                                                                 : "wrote past its buffers");
        }
      }
    }
    results->push_back(r);
  }
}

}  // namespace

std::vector<Result> parity_quantize_row(uint64_t seed) {
  Rng rng(seed);
  std::vector<Result> results;
  const int64_t shapes[][2] = {{32, 32},  {96, 32},  {160, 32},  {1184, 32}, {64, 64},  {192, 64},
                               {320, 64}, {128, 128}, {384, 128}, {1920, 128}, {2112, 64}, {4224, 128}, {0, 32}};
  for (WeightFormat f : {WeightFormat::Q8, WeightFormat::Q4}) {
    for (const auto& s : shapes) row_case(f, s[0], s[1], rng, &results);
  }
  const auto rejected = [&](const std::string& what, auto&& edit) {
    results.push_back(expect_rejected("quantize_row", what, [&] {
      float x[64] = {};
      uint8_t d[64] = {}, z[1] = {};
      uint16_t s[2] = {};
      ops::QuantizeRowParams p;
      p.format = WeightFormat::Q4, p.n = 64, p.group = 32, p.src = x, p.dst = d, p.scales = s, p.zeros = z;
      edit(p);
      ops::check_quantize_row(p);
    }));
  };
  rejected("bf16 format", [](ops::QuantizeRowParams& p) { p.format = WeightFormat::BF16; });
  rejected("group 48", [](ops::QuantizeRowParams& p) { p.group = 48; });
  rejected("n not a multiple of group", [](ops::QuantizeRowParams& p) { p.n = 48; });
  rejected("q4 without zero points", [](ops::QuantizeRowParams& p) { p.zeros = nullptr; });
  rejected("q8 with zero points", [](ops::QuantizeRowParams& p) { p.format = WeightFormat::Q8; });
  rejected("null src", [](ops::QuantizeRowParams& p) { p.src = nullptr; });
  return results;
}

}  // namespace qvl::parity
