// softmax parity: every variant against the double reference.
//
// Tolerance: relative 1e-6 with a floor of 1e-6 (measured: 2e-7). An output is e^(x-max)/Σ: exp()
// costs ~1.5 ulp (x - max enters it exactly, as a float pair), the double-lane sum nothing,
// the scaling 1 ulp. A dropped, doubled or misplaced element, or a cruder exp(), fails.
// Inputs: logits N(0, 4²) and uniform [-60, 60] with -inf entries, rows that are all -inf (zeros
// by definition), all equal, or a single finite entry; strided and in-place layouts.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "ops/softmax.h"
#include "tests/parity.h"
#include "tests/parity_padded_rows.h"

namespace qvl::parity {

namespace {

using ops::SoftmaxParams;

constexpr double kTol = 1e-6, kFloor = 1e-6;
const float kNegInf = -std::numeric_limits<float>::infinity();

enum class Fill { Normal, Wide, Masked, AllMasked, Equal, OneFinite };
const char* fill_name(Fill f) {
  switch (f) {
    case Fill::Normal: return "N(0,16)";
    case Fill::Wide: return "U[-60,60]";
    case Fill::Masked: return "N(0,16)+masked";
    case Fill::AllMasked: return "all -inf";
    case Fill::Equal: return "all equal";
    case Fill::OneFinite: return "one finite";
  }
  return "";
}

struct Case {
  int64_t rows, dim, pad;
  bool in_place;
  Fill fill;
};

std::vector<float> make_input(const Case& c, Rng& rng) {
  std::vector<float> xs(static_cast<size_t>(c.rows * c.dim));
  for (int64_t r = 0; r < c.rows; ++r) {
    float* x = xs.data() + r * c.dim;
    const float level = rng.uniform(-30.0f, 30.0f);
    const int64_t keep = rng.range(0, c.dim - 1);
    // In a masked case every third row is fully masked, to mix the two paths in one call.
    const bool all_masked = c.fill == Fill::AllMasked || (c.fill == Fill::Masked && r % 3 == 2);
    for (int64_t i = 0; i < c.dim; ++i) {
      switch (c.fill) {
        case Fill::Normal: x[i] = 4.0f * rng.normal(); break;
        case Fill::Wide: x[i] = rng.uniform(-60.0f, 60.0f); break;
        case Fill::Masked: x[i] = (all_masked || rng.next() % 3 == 0) ? kNegInf : 4.0f * rng.normal(); break;
        case Fill::AllMasked: x[i] = kNegInf; break;
        case Fill::Equal: x[i] = level; break;
        case Fill::OneFinite: x[i] = i == keep ? level : kNegInf; break;
      }
    }
  }
  return xs;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  const int64_t dims[] = {1, 3, 15, 17, 31, 33, 100, 1000, 1536 + 7};
  const Fill fills[] = {Fill::Normal, Fill::Wide, Fill::Masked, Fill::AllMasked, Fill::Equal, Fill::OneFinite};
  int i = 0;
  for (int64_t d : dims) {
    for (Fill f : fills) {
      const int64_t rows = d >= 1000 ? 3 : 4 + (i % 3);
      out.push_back({rows, d, (i % 2) ? 3 : 0, false, f});
      out.push_back({rows, d, (i % 2) ? 0 : 5, true, f});
      ++i;
    }
  }
  out.push_back({97, 1024 + 3, 1, false, Fill::Masked});  // threaded
  out.push_back({2, 100003, 0, true, Fill::Normal});      // long rows
  out.push_back({0, 17, 0, false, Fill::Normal});         // nothing to do
  return out;
}

std::string describe(const Case& c) {
  return "rows=" + std::to_string(c.rows) + " dim=" + std::to_string(c.dim) + (c.pad ? " strided" : "") +
         (c.in_place ? " inplace " : " ") + fill_name(c.fill);
}

Result check_rejects(const char* what, SoftmaxParams p) {
  return expect_rejected("softmax", what, [&] { ops::check_softmax(p); });
}

std::vector<Result> check_cases() {
  float buf[64] = {};
  SoftmaxParams ok;
  ok.rows = 2, ok.dim = 3, ok.x = buf, ok.ldx = 4, ok.out = buf + 20, ok.ldo = 3;
  std::vector<Result> out;
  SoftmaxParams p = ok;
  p.rows = -1;
  out.push_back(check_rejects("negative rows", p));
  p = ok, p.dim = 0;
  out.push_back(check_rejects("dim 0", p));
  p = ok, p.ldx = 2;
  out.push_back(check_rejects("ldx < dim", p));
  p = ok, p.ldo = 2;
  out.push_back(check_rejects("ldo < dim", p));
  p = ok, p.x = nullptr;
  out.push_back(check_rejects("null x", p));
  p = ok, p.out = nullptr;
  out.push_back(check_rejects("null out", p));
  p = ok, p.out = buf, p.ldo = 3;
  out.push_back(check_rejects("in place with another stride", p));
  p = ok, p.ldo = int64_t{1} << 62;
  out.push_back(check_rejects("overflowing ldo", p));
  out.push_back(expect_accepted("softmax", "valid, in-place and empty problems accepted", [&] {
    ops::check_softmax(ok);
    p = ok, p.out = buf, p.ldo = 4;
    ops::check_softmax(p);
    p = SoftmaxParams{}, p.dim = 5, p.ldx = 5, p.ldo = 5;
    ops::check_softmax(p);
  }));
  return out;
}

}  // namespace

std::vector<Result> parity_softmax(uint64_t seed) {
  Rng rng(seed);
  const auto& family = ops::softmax_family();
  const std::shared_ptr<ThreadPool> dflt = default_pool();
  ThreadPool three(3);
  std::vector<Result> results;
  int index = 0;
  for (const Case& c : cases()) {
    const std::vector<float> xs = make_input(c, rng);
    std::vector<float> want(xs.size());
    if (c.rows) {
      SoftmaxParams p;
      p.rows = c.rows, p.dim = c.dim, p.x = xs.data(), p.ldx = c.dim, p.out = want.data(), p.ldo = c.dim;
      family.reference().fn(p, ExecContext(*dflt));
    }
    for (const auto& v : family.runnable()) {
      ThreadPool& pool = (index++ % 2) ? three : *dflt;
      PaddedRows bufs(xs, c.rows, c.dim, c.pad, c.in_place);
      SoftmaxParams p;
      p.rows = c.rows, p.dim = c.dim, p.x = bufs.x(), p.ldx = bufs.ldx();
      p.out = bufs.out(), p.ldo = bufs.ldo();
      Result r = variant_case("softmax", v, describe(c) + " threads=" + std::to_string(pool.size()));
      run_case(r, [&] {
        ops::check_softmax(p);
        v.fn(p, ExecContext(pool));
        bufs.finish(want, kTol, kFloor, &r);
      });
      results.push_back(std::move(r));
    }
  }
  for (Result& r : check_cases()) results.push_back(std::move(r));
  return results;
}

}  // namespace qvl::parity
