// RoPE parity: (1) the apply variants against the double reference on awkward T/H/D, partial
// rotary dims and padded rows; (2) every table builder against an independent double reference
// written the way transformers writes it (full-width emb = cat(freqs, freqs), then the section
// split / interleave / vision lookup), in both angle modes; (3) the input checks.
#include <cmath>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "ops/rope.h"
#include "tests/parity.h"

namespace qvl::parity {
namespace {

using ops::RopeAngles;
using ops::RopeFreqs;
using ops::RopeParams;

// ---- (1) apply ----

void apply_case(int64_t T, int64_t H, int64_t D, int64_t R, int64_t pad, uint64_t seed, std::vector<Result>* out) {
  Rng rng(seed);
  const int64_t half = R / 2, ld = H * D + pad;
  std::vector<int64_t> pos(static_cast<size_t>(T));
  for (auto& x : pos) x = rng.range(0, 40000);
  std::vector<float> cos(static_cast<size_t>(T * half)), sin(cos.size());
  ops::rope_table_1d(pos.data(), T, RopeFreqs{1000000.0, R, RopeAngles::Transformers}, cos.data(), sin.data());
  std::vector<float> x0(static_cast<size_t>(T * ld));
  for (float& v : x0) v = rng.normal();

  ThreadPool pool(2);
  const auto& family = ops::rope_family();
  Guarded<float> ref(x0.size());
  std::copy(x0.begin(), x0.end(), ref.data());
  RopeParams p;
  p.T = T;
  p.H = H;
  p.D = D;
  p.ld = ld;
  p.rotary_dim = R;
  p.cos = cos.data();
  p.sin = sin.data();
  RopeParams pr = p;
  pr.x = ref.data();
  ops::check_rope(pr);
  family.reference().fn(pr, ExecContext(pool));

  const std::string shape = "T=" + std::to_string(T) + " H=" + std::to_string(H) + " D=" + std::to_string(D) +
                            " R=" + std::to_string(R) + (pad ? " ld+" + std::to_string(pad) : "");
  for (const auto& v : family.runnable()) {
    if (v.isa == Isa::Reference) continue;
    Guarded<float> got(x0.size());
    std::copy(x0.begin(), x0.end(), got.data());
    RopeParams pv = p;
    pv.x = got.data();
    v.fn(pv, ExecContext(pool));
    Result r;
    r.op = "rope";
    r.variant = v.name;
    r.device = device_name(v.device);
    r.shape = shape;
    compare(got.data(), ref.data(), x0.size(), 1e-6, 1.0, &r);
    r.guards_ok = got.intact() && ref.intact();
    // Dims past R and the padding between rows must come back bit for bit.
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t e = 0; e < ld; ++e) {
        const bool rotated = e < H * D && e % D < R;
        const size_t k = static_cast<size_t>(t * ld + e);
        if (!rotated && std::memcmp(&got[k], &x0[k], sizeof(float)) != 0) {
          r.passed = false;
          r.note = "element " + std::to_string(k) + " outside the rotary dims changed";
        }
      }
    }
    out->push_back(r);
  }
}

// ---- (2) tables ----

// inv_freq exactly as transformers writes it, in double or with its float32 steps.
std::vector<double> ref_inv_freq(double theta, int64_t dim, RopeAngles mode) {
  std::vector<double> inv;
  for (int64_t k = 0; k < dim; k += 2) {
    if (mode == RopeAngles::Exact) {
      inv.push_back(1.0 / std::pow(theta, static_cast<double>(k) / static_cast<double>(dim)));
    } else {
      const float e = static_cast<float>(k) / static_cast<float>(dim);
      inv.push_back(1.0f / static_cast<float>(std::pow(static_cast<double>(static_cast<float>(theta)), e)));
    }
  }
  return inv;
}

double ref_angle(int64_t pos, double inv, RopeAngles mode) {
  if (mode == RopeAngles::Exact) return static_cast<double>(pos) * inv;
  return static_cast<float>(static_cast<float>(pos) * static_cast<float>(inv));
}

// freqs[axis][t][k] for k < half, as Qwen2VLRotaryEmbedding.forward builds them for 3 axes.
std::vector<double> ref_freqs(const std::vector<int64_t>& pos3, int64_t T, double theta, int64_t R, RopeAngles mode) {
  const int64_t half = R / 2;
  const std::vector<double> inv = ref_inv_freq(theta, R, mode);
  std::vector<double> f(static_cast<size_t>(3 * T * half));
  for (int64_t a = 0; a < 3; ++a)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < half; ++k) f[(a * T + t) * half + k] = ref_angle(pos3[a * T + t], inv[k], mode);
  return f;
}

// Fills r from table (cos, sin) against reference angles; the float32-rounded mode is allowed the
// angle error its rounding implies when checked against exact angles (bound_rel > 0).
void compare_table(const std::vector<float>& c, const std::vector<float>& s, const std::vector<double>& angle,
                   double bound_rel, Result* r) {
  r->tolerance = bound_rel > 0 ? bound_rel : 2e-7;
  for (size_t i = 0; i < angle.size(); ++i) {
    const double allow = 2e-7 + bound_rel * std::fabs(angle[i]);
    const double ec = std::fabs(c[i] - std::cos(angle[i])), es = std::fabs(s[i] - std::sin(angle[i]));
    const double e = std::max(ec, es);
    r->max_abs_err = std::max(r->max_abs_err, e);
    if (!(e <= allow)) {
      if (r->passed) r->note = "first miss at element " + std::to_string(i);
      r->passed = false;
    }
  }
}

enum class Kind { OneD, Mrope, Interleaved, Vision };

void table_case(Kind kind, int64_t T, int64_t R, double theta, std::vector<int64_t> sec, int64_t max_pos, uint64_t seed,
                std::vector<Result>* out) {
  Rng rng(seed);
  const int64_t half = R / 2;
  std::vector<int64_t> pos3(static_cast<size_t>(3 * T));
  for (auto& x : pos3) x = rng.range(0, max_pos);
  const char* names[] = {"table 1d", "table mrope", "table mrope-interleaved", "table vision-2d"};
  for (RopeAngles mode : {RopeAngles::Transformers, RopeAngles::Exact}) {
    const RopeFreqs f{theta, R, mode};
    std::vector<float> c(static_cast<size_t>(T * half)), s(c.size());
    // Reference angles for this mode and (for the float32 mode) the exact ones too.
    std::vector<double> want[2];
    for (int m = 0; m < 2; ++m) {
      const RopeAngles rm = m == 0 ? mode : RopeAngles::Exact;
      std::vector<double>& a = want[m];
      a.assign(static_cast<size_t>(T * half), 0);
      if (kind == Kind::Vision) {
        // VisionRotaryEmbedding(head_dim/2): freq_table[p] = p·inv (head_dim/4 entries); a row is
        // cat(freq_table[hpos], freq_table[wpos]).
        const std::vector<double> inv = ref_inv_freq(theta, R / 2, rm);
        const int64_t q = static_cast<int64_t>(inv.size());
        for (int64_t t = 0; t < T; ++t)
          for (int64_t j = 0; j < q; ++j) {
            a[t * half + j] = ref_angle(pos3[t], inv[j], rm);
            a[t * half + q + j] = ref_angle(pos3[T + t], inv[j], rm);
          }
      } else {
        const std::vector<double> fr = ref_freqs(pos3, T, theta, R, rm);
        for (int64_t t = 0; t < T; ++t) {
          if (kind == Kind::OneD) {
            for (int64_t k = 0; k < half; ++k) a[t * half + k] = fr[(0 * T + t) * half + k];
          } else if (kind == Kind::Mrope) {
            // emb = cat(freqs, freqs) over R; split by mrope_section * 2; chunk n from axis n % 3;
            // the first half of the result is the table row.
            std::vector<double> row;
            int64_t at = 0;
            for (int64_t n = 0; n < 6; ++n) {
              const int64_t len = sec[n % 3];
              for (int64_t e = at; e < at + len; ++e) row.push_back(fr[((n % 3) * T + t) * half + e % half]);
              at += len;
            }
            for (int64_t k = 0; k < half; ++k) a[t * half + k] = row[k];
          } else {
            // freqs_t = freqs[0]; freqs_t[offset : 3·s : 3] = freqs[axis] for (axis, offset) = (1,1), (2,2).
            std::vector<double> row(fr.begin() + t * half, fr.begin() + (t + 1) * half);
            for (int64_t axis = 1; axis <= 2; ++axis)
              for (int64_t k = axis; k < std::min<int64_t>(3 * sec[axis], half); k += 3)
                row[k] = fr[(axis * T + t) * half + k];
            for (int64_t k = 0; k < half; ++k) a[t * half + k] = row[k];
          }
        }
      }
    }
    switch (kind) {
      case Kind::OneD: ops::rope_table_1d(pos3.data(), T, f, c.data(), s.data()); break;
      case Kind::Mrope: ops::rope_table_mrope(pos3.data(), T, sec.data(), f, c.data(), s.data()); break;
      case Kind::Interleaved: ops::rope_table_mrope_interleaved(pos3.data(), T, sec.data(), f, c.data(), s.data()); break;
      case Kind::Vision: ops::rope_table_vision_2d(pos3.data(), pos3.data() + T, T, f, c.data(), s.data()); break;
    }
    std::string shape = std::string(names[static_cast<int>(kind)]) + " T=" + std::to_string(T) + " R=" +
                        std::to_string(R) + " theta=" + std::to_string(static_cast<int64_t>(theta));
    if (kind == Kind::Mrope || kind == Kind::Interleaved)
      shape += " sec=" + std::to_string(sec[0]) + "/" + std::to_string(sec[1]) + "/" + std::to_string(sec[2]);
    Result r;
    r.op = "rope";
    r.variant = mode == RopeAngles::Exact ? "table-exact" : "table-hf32";
    r.shape = shape;
    compare_table(c, s, want[0], 0, &r);
    out->push_back(r);
    if (mode == RopeAngles::Transformers) {
      // float32 steps move the angle by at most ~(2^-24·(3 + |e|·ln θ)) relative: < 2^-19 for θ <= 1e7.
      Result b = r;
      b.variant = "table-hf32-vs-exact";
      b.passed = true;
      b.note.clear();
      b.max_abs_err = 0;
      compare_table(c, s, want[1], 1.0 / (1 << 19), &b);
      out->push_back(b);
    }
  }
}

// The three M-RoPE axes carrying the same position must reduce to plain 1-D RoPE.
void text_only_case(uint64_t seed, std::vector<Result>* out) {
  Rng rng(seed);
  const int64_t T = 37, R = 128, half = 64;
  std::vector<int64_t> p1(T), p3(3 * T);
  for (int64_t t = 0; t < T; ++t) p1[t] = p3[t] = p3[T + t] = p3[2 * T + t] = rng.range(0, 30000);
  const RopeFreqs f{1000000.0, R, RopeAngles::Transformers};
  std::vector<float> c1(T * half), s1(T * half), c2(T * half), s2(T * half), c3(T * half), s3(T * half);
  const int64_t sec2[3] = {16, 24, 24}, sec3[3] = {24, 20, 20};
  ops::rope_table_1d(p1.data(), T, f, c1.data(), s1.data());
  ops::rope_table_mrope(p3.data(), T, sec2, f, c2.data(), s2.data());
  ops::rope_table_mrope_interleaved(p3.data(), T, sec3, f, c3.data(), s3.data());
  Result r;
  r.op = "rope";
  r.variant = "table-hf32";
  r.shape = "text-only positions: mrope == interleaved == 1d";
  compare_exact(c2.data(), c1.data(), c1.size(), &r);
  compare_exact(s2.data(), s1.data(), s1.size(), &r);
  compare_exact(c3.data(), c1.data(), c1.size(), &r);
  compare_exact(s3.data(), s1.data(), s1.size(), &r);
  out->push_back(r);
}

// ---- (3) input checks ----

template <class F>
void expect_input_error(const std::string& what, F&& fn, std::vector<Result>* out) {
  Result r;
  r.op = "rope";
  r.variant = "check";
  r.shape = "rejects " + what;
  r.passed = false;
  r.note = "accepted";
  try {
    fn();
  } catch (const Error& e) {
    r.passed = e.code() == ErrorCode::Input;
    r.note = r.passed ? "" : "wrong error code";
  }
  out->push_back(r);
}

void check_rejects(std::vector<Result>* out) {
  std::vector<float> buf(256);
  std::vector<int64_t> pos(12, 1);
  RopeParams good;
  good.x = buf.data();
  good.T = 2;
  good.H = 2;
  good.D = 16;
  good.ld = 32;
  good.rotary_dim = 16;
  good.cos = good.sin = buf.data();
  auto bad = [&](const char* what, auto edit) {
    RopeParams p = good;
    edit(p);
    expect_input_error(what, [&] { ops::check_rope(p); }, out);
  };
  bad("odd rotary_dim", [](RopeParams& p) { p.rotary_dim = 15; });
  bad("rotary_dim > D", [](RopeParams& p) { p.rotary_dim = 18; });
  bad("rotary_dim = 0", [](RopeParams& p) { p.rotary_dim = 0; });
  bad("ld < H*D", [](RopeParams& p) { p.ld = 31; });
  bad("null x", [](RopeParams& p) { p.x = nullptr; });
  bad("negative T", [](RopeParams& p) { p.T = -1; });
  const int64_t sec_bad[3] = {16, 24, 23}, sec_neg[3] = {-1, 33, 32};
  float* c = buf.data();
  expect_input_error("mrope sections not summing to R/2",
                     [&] { ops::rope_table_mrope(pos.data(), 4, sec_bad, RopeFreqs{1e6, 128}, c, c); }, out);
  expect_input_error("interleaved negative section",
                     [&] { ops::rope_table_mrope_interleaved(pos.data(), 4, sec_neg, RopeFreqs{1e6, 128}, c, c); }, out);
  expect_input_error("vision head_dim not a multiple of 4",
                     [&] { ops::rope_table_vision_2d(pos.data(), pos.data(), 4, RopeFreqs{1e4, 18}, c, c); }, out);
  expect_input_error("table odd rotary_dim",
                     [&] { ops::rope_table_1d(pos.data(), 4, RopeFreqs{1e4, 7}, c, c); }, out);
  expect_input_error("table theta <= 0", [&] { ops::rope_table_1d(pos.data(), 4, RopeFreqs{0, 8}, c, c); }, out);
}

}  // namespace

std::vector<Result> parity_rope(uint64_t seed) {
  std::vector<Result> out;
  uint64_t n = seed * 7919;
  // T, H, D, R, row padding.
  const int64_t shapes[][5] = {{1, 1, 2, 2, 0},   {7, 3, 128, 128, 0}, {13, 5, 80, 80, 3},  {33, 2, 64, 32, 0},
                               {5, 4, 40, 40, 1}, {17, 7, 20, 12, 5},  {1, 28, 128, 128, 0}, {100, 2, 6, 6, 0},
                               {9, 3, 130, 66, 2}, {300, 16, 80, 80, 0}, {0, 2, 8, 8, 0}};
  for (const auto& s : shapes) apply_case(s[0], s[1], s[2], s[3], s[4], ++n, &out);

  std::vector<int64_t> none{0, 0, 0};
  table_case(Kind::OneD, 23, 128, 1000000.0, none, 120000, ++n, &out);
  table_case(Kind::OneD, 5, 6, 10000.0, none, 50, ++n, &out);
  table_case(Kind::Mrope, 41, 128, 1000000.0, {16, 24, 24}, 30000, ++n, &out);  // Qwen2-VL / 2.5-VL
  table_case(Kind::Mrope, 9, 22, 10000.0, {3, 0, 8}, 500, ++n, &out);
  table_case(Kind::Interleaved, 41, 128, 5000000.0, {24, 20, 20}, 30000, ++n, &out);  // Qwen3-VL
  table_case(Kind::Interleaved, 11, 26, 10000.0, {5, 4, 4}, 500, ++n, &out);
  table_case(Kind::Interleaved, 11, 14, 10000.0, {1, 3, 3}, 500, ++n, &out);  // sections past the end
  table_case(Kind::Vision, 57, 80, 10000.0, none, 300, ++n, &out);  // Qwen2-VL / 2.5-VL vision
  table_case(Kind::Vision, 19, 72, 10000.0, none, 300, ++n, &out);  // Qwen3-VL vision
  table_case(Kind::Vision, 3, 4, 10000.0, none, 9, ++n, &out);
  text_only_case(++n, &out);
  check_rejects(&out);
  return out;
}

}  // namespace qvl::parity
