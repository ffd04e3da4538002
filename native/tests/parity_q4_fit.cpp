// q4's fitted groups (core/weight_quant.h, q4_fit_group) against the plain range fit, written out
// here in double: on every group the fit's squared error is no larger (the range fit is one of its
// candidates), and over many groups of Gaussian and heavy-tailed weights it is clearly smaller
// (a fit that always kept its first candidate, or picked by a wrong measure, fails). Also the
// group sizes weights get at load (q_load_group).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/weight_quant.h"
#include "tests/parity.h"
#include "tests/parity_q_panels.h"

namespace qvl::parity {

namespace {

Result fit_case(const std::string& what, bool ok, const std::string& note) {
  Result r;
  r.op = "q4_fit", r.variant = "reference", r.device = "cpu", r.format = "q4", r.shape = what;
  r.passed = ok;
  if (!ok) r.note = note;
  return r;
}

// Squared error of the group x[0, n) quantized with scale s and zero point z (codes nearest to
// x / s + z, clamped to 0..15), in double.
double group_error(const float* x, int64_t n, double s, double z) {
  double e = 0.0;
  for (int64_t k = 0; k < n; ++k) {
    const double q = s > 0.0 ? std::min(15.0, std::max(0.0, std::nearbyint(x[k] / s) + z)) : z;
    const double d = x[k] - (q - z) * s;
    e += d * d;
  }
  return e;
}

// The plain range fit: the scale spans [min(x, 0), max(x, 0)] in 15 steps (as stored: f16, raised
// to 2^-14 when below it), the zero point puts the low end on a code.
double range_fit_error(const float* x, int64_t n) {
  float lo = 0.0f, hi = 0.0f;
  for (int64_t k = 0; k < n; ++k) lo = std::min(lo, x[k]), hi = std::max(hi, x[k]);
  double s = f16_to_f32(f32_to_f16((hi - lo) / 15.0f));
  if (hi > lo && s < kQScaleMin) s = kQScaleMin;
  const double z = s > 0.0 ? std::min(15.0, std::max(0.0, std::nearbyint(-lo / s))) : 0.0;
  return group_error(x, n, s, z);
}

// The error of q4_quantize's own groups, read back through the format's dequantizer (the row
// assembled into its panel as the loader stores it).
double fitted_error(const float* x, int64_t n, int64_t group, std::vector<double>* per_group) {
  std::vector<uint8_t> codes(static_cast<size_t>(n / 2)), zeros(static_cast<size_t>(q4_zero_bytes(n / group)));
  std::vector<uint16_t> scales(static_cast<size_t>(n / group));
  if (q4_quantize(x, n, group, codes.data(), scales.data(), zeros.data()) >= 0) return -1.0;
  to_panels(WeightFormat::Q4, 1, n, group, codes, scales, zeros);
  WeightRef w;
  w.format = WeightFormat::Q4, w.data = codes.data(), w.scales = scales.data(), w.zeros = zeros.data();
  w.ld = n, w.group = group, w.out = 1, w.in = n;
  std::vector<float> back(static_cast<size_t>(n));
  weight_format_traits(WeightFormat::Q4).dequantize_row(w, 0, 0, n, back.data());
  double total = 0.0;
  for (int64_t g = 0; g < n / group; ++g) {
    double e = 0.0;
    for (int64_t k = g * group; k < (g + 1) * group; ++k) {
      const double d = static_cast<double>(x[k]) - back[static_cast<size_t>(k)];
      e += d * d;
    }
    per_group->push_back(e);
    total += e;
  }
  return total;
}

}  // namespace

std::vector<Result> parity_q4_fit(uint64_t seed) {
  Rng rng(seed ^ 0x71346669ull);
  std::vector<Result> out;
  struct Kind {
    const char* name;
    float (*draw)(Rng&);
    double gain;  // the least relative drop in total squared error the fit must show
  };
  // Student t with 3 degrees of freedom: a normal over the root of a chi-square's mean.
  const Kind kinds[] = {
      {"normal", [](Rng& r) { return 0.02f * r.normal(); }, 0.04},
      {"heavy-tailed (t3)",
       [](Rng& r) {
         const float c = r.normal(), d = r.normal(), e = r.normal();
         return 0.02f * r.normal() / std::sqrt((c * c + d * d + e * e) / 3.0f + 1e-12f);
       },
       0.02},
  };
  for (const Kind& kind : kinds) {
    for (const int64_t group : {32, 64, 128}) {
      const int64_t n = 1536, rows = 96;
      double fit = 0.0, range = 0.0;
      bool each = true;
      std::string note;
      std::vector<float> x(static_cast<size_t>(n));
      for (int64_t r = 0; r < rows; ++r) {
        for (float& v : x) v = kind.draw(rng);
        std::vector<double> per;
        if (fitted_error(x.data(), n, group, &per) < 0.0) {
          each = false, note = "a group overflowed";
          break;
        }
        for (int64_t g = 0; g < n / group; ++g) {
          const double plain = range_fit_error(x.data() + g * group, group), got = per[static_cast<size_t>(g)];
          fit += got, range += plain;
          if (got > plain * (1.0 + 1e-5) && each) {
            each = false;
            note = "row " + std::to_string(r) + " group " + std::to_string(g) + ": " + std::to_string(got) + " > range fit " + std::to_string(plain);
          }
        }
      }
      const std::string shape = std::string(kind.name) + " group " + std::to_string(group);
      out.push_back(fit_case(shape + ": no group worse than the range fit", each, note));
      const double drop = 1.0 - fit / range;
      out.push_back(fit_case(shape + ": total error " + std::to_string(drop * 100).substr(0, 4) + "% below the range fit",
                             drop >= kind.gain, "only " + std::to_string(drop * 100) + "% below"));
    }
  }
  std::vector<float> z(64, 0.0f);
  std::vector<double> per;
  out.push_back(fit_case("all-zero group: exact", fitted_error(z.data(), 64, 64, &per) == 0.0, "non-zero error"));
  const struct {
    WeightFormat f;
    int64_t in, want;
  } groups[] = {{WeightFormat::Q4, 1536, 64}, {WeightFormat::Q4, 8960, 64}, {WeightFormat::Q4, 1184, 32},
                {WeightFormat::Q4, 1176, 0},  {WeightFormat::Q8, 1536, 64}, {WeightFormat::Q8, 8960, 64},
                {WeightFormat::Q8, 1184, 32}, {WeightFormat::Q8, 1176, 0},  {WeightFormat::BF16, 1536, 0}};
  for (const auto& g : groups) {
    const int64_t got = q_load_group(g.f, g.in);
    out.push_back(fit_case(std::string("load group ") + weight_format_name(g.f) + " in=" + std::to_string(g.in),
                           got == g.want, "got " + std::to_string(got) + ", want " + std::to_string(g.want)));
  }
  return out;
}

}  // namespace qvl::parity
