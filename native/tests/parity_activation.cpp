// activation parity: every variant and kind against the double reference.
//
// Tolerance: relative 1e-6 with a floor of 1e-6 (so absolute 1e-12 where |ref| < 1e-6); measured
// at most 4e-7. That is a few fp32 ulps, and it holds deep into the tails (x down to -20) only
// because the fast kernels carry their exp() arguments as float pairs: dropping that for one
// kind, or a 1e-5 error in any coefficient, fails. Inputs: N(0, 3²), uniform [-20, 20] and
// [-1e-3, 1e-3], with ±0 and ±20 mixed in, plus a dense sweep of [-20, 20] per kind; in-place,
// strided and fused gate_up layouts; output row padding and guards checked.
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "ops/activation.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

using ops::ActivationParams;
using ops::ActKind;

constexpr double kTol = 1e-6, kFloor = 1e-6;

const ActKind kKinds[] = {ActKind::GeluErf, ActKind::GeluTanh, ActKind::QuickGelu, ActKind::Silu, ActKind::SwiGlu};

// Where the operands live.
enum class Layout {
  Separate,      // x, up and out in their own buffers
  InPlace,       // out == x
  Fused,         // x and up are the halves of one [rows, 2·dim(+pad)] buffer, out separate
  FusedInPlace,  // ... and out is the gate half
};
const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Separate: return "";
    case Layout::InPlace: return " inplace";
    case Layout::Fused: return " fused";
    case Layout::FusedInPlace: return " fused-inplace";
  }
  return "";
}

struct Case {
  ActKind kind;
  int64_t rows, dim, pad;
  Layout layout;
  bool sweep;  // x = an even sweep of [-20, 20] instead of random values
};

float sample(Rng& rng, int64_t i) {
  switch (rng.next() % 16) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return (i & 1) ? 20.0f : -20.0f;
    case 3: return rng.uniform(-1e-3f, 1e-3f);
    case 4: case 5: case 6: case 7: return rng.uniform(-20.0f, 20.0f);
    default: return 3.0f * rng.normal();
  }
}

// The problem's buffers: `data` holds x (and up when fused, and out when in place); `up_buf` and
// `out_buf` the separate ones. Row padding holds NaN in inputs and kUnwritten in outputs.
struct Problem {
  ActivationParams p;
  Guarded<float> data, up_buf, out_buf;
  Problem(size_t n_data, size_t n_up, size_t n_out) : data(n_data), up_buf(n_up), out_buf(n_out) {}
};

std::unique_ptr<Problem> make_problem(const Case& c, const std::vector<float>& xs, const std::vector<float>& ups) {
  const bool gated = c.kind == ActKind::SwiGlu;
  const bool fused = c.layout == Layout::Fused || c.layout == Layout::FusedInPlace;
  const int64_t ld = fused ? 2 * c.dim + c.pad : c.dim + c.pad;
  const bool separate_out = c.layout == Layout::Separate || c.layout == Layout::Fused;
  const int64_t ldo = c.dim + (c.pad ? c.pad + 1 : 0);
  const size_t n_data = fused ? extent(c.rows, 2 * c.dim, ld) : extent(c.rows, c.dim, ld);
  const size_t n_up = gated && !fused ? extent(c.rows, c.dim, c.dim + c.pad) : 0;
  auto pr = std::make_unique<Problem>(n_data, n_up, separate_out ? extent(c.rows, c.dim, ldo) : 0);
  ActivationParams& p = pr->p;
  p.kind = c.kind, p.rows = c.rows, p.dim = c.dim;
  for (size_t i = 0; i < n_data; ++i) pr->data[i] = std::nanf("");
  for (size_t i = 0; i < n_up; ++i) pr->up_buf[i] = std::nanf("");
  for (size_t i = 0; i < pr->out_buf.size(); ++i) pr->out_buf[i] = unwritten();
  p.x = pr->data.data(), p.ldx = ld;
  if (gated) {
    p.up = fused ? pr->data.data() + c.dim : pr->up_buf.data();
    p.ldu = fused ? ld : c.dim + c.pad;
  }
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t i = 0; i < c.dim; ++i) {
      pr->data[r * ld + i] = xs[r * c.dim + i];
      if (gated) const_cast<float*>(p.up)[r * p.ldu + i] = ups[r * c.dim + i];
    }
  }
  if (separate_out) {
    p.out = pr->out_buf.data(), p.ldo = ldo;
  } else {
    p.out = pr->data.data(), p.ldo = ld;
    // The padding of an in-place output is the input's padding: mark it so stray writes show.
    for (int64_t r = 0; r + 1 < c.rows; ++r)
      for (int64_t i = c.dim + (fused ? c.dim : 0); i < ld; ++i) pr->data[r * ld + i] = unwritten();
  }
  return pr;
}

std::vector<float> compact_out(const ActivationParams& p) {
  std::vector<float> out(static_cast<size_t>(p.rows * p.dim));
  for (int64_t r = 0; r < p.rows; ++r)
    for (int64_t i = 0; i < p.dim; ++i) out[r * p.dim + i] = p.out[r * p.ldo + i];
  return out;
}

// Row padding of out still unwritten (for fused in-place, the up half must be untouched too).
bool padding_intact(const Case& c, const ActivationParams& p, const std::vector<float>& ups) {
  const bool fused_inplace = c.layout == Layout::FusedInPlace;
  for (int64_t r = 0; r < p.rows; ++r) {
    for (int64_t i = p.dim; i < p.ldo; ++i) {
      if (r + 1 == p.rows && i >= p.dim) break;
      const float v = p.out[r * p.ldo + i];
      if (fused_inplace && i < 2 * p.dim) {
        if (std::memcmp(&v, &ups[r * p.dim + (i - p.dim)], 4) != 0) return false;
      } else if (!is_unwritten(v)) {
        return false;
      }
    }
  }
  if (fused_inplace)  // the last row's up half
    for (int64_t i = 0; i < p.dim; ++i)
      if (std::memcmp(&p.out[(p.rows - 1) * p.ldo + p.dim + i], &ups[(p.rows - 1) * p.dim + i], 4) != 0) return false;
  return true;
}

std::string describe(const Case& c) {
  return std::string(ops::act_kind_name(c.kind)) + " rows=" + std::to_string(c.rows) + " dim=" + std::to_string(c.dim) +
         (c.pad ? " strided" : "") + layout_name(c.layout) + (c.sweep ? " sweep[-20,20]" : "");
}

std::vector<Case> cases() {
  std::vector<Case> out;
  const int64_t dims[] = {1, 3, 15, 17, 31, 33, 100, 1000, 1536 + 7};
  int i = 0;
  for (ActKind k : kKinds) {
    for (int64_t d : dims) {
      const int64_t rows = d >= 1000 ? 2 : 3 + (i % 3);
      out.push_back({k, rows, d, (i % 2) ? 3 : 0, Layout::Separate, false});
      out.push_back({k, rows, d, (i % 2) ? 0 : 5, Layout::InPlace, false});
      if (k == ActKind::SwiGlu) {
        out.push_back({k, rows, d, (i % 2) ? 0 : 2, Layout::Fused, false});
        out.push_back({k, rows, d, (i % 2) ? 2 : 0, Layout::FusedInPlace, false});
      }
      ++i;
    }
    out.push_back({k, 1, 40001, 0, Layout::Separate, true});      // one long row: split across threads
    out.push_back({k, 61, 4096 + 5, 7, Layout::InPlace, false});  // many rows: threaded
    out.push_back({k, 0, 17, 0, Layout::Separate, false});        // nothing to do
  }
  return out;
}

Result check_rejects(const char* what, ActivationParams p) {
  return expect_rejected("activation", what, [&] { ops::check_activation(p); });
}

std::vector<Result> check_cases() {
  float buf[64] = {};
  ActivationParams ok;
  ok.kind = ActKind::SwiGlu, ok.rows = 2, ok.dim = 3, ok.x = buf, ok.ldx = 6, ok.up = buf + 3, ok.ldu = 6, ok.out = buf + 20,
  ok.ldo = 3;
  std::vector<Result> out;
  ActivationParams p = ok;
  p.kind = static_cast<ActKind>(9);
  out.push_back(check_rejects("unknown kind", p));
  p = ok, p.rows = -1;
  out.push_back(check_rejects("negative rows", p));
  p = ok, p.dim = 0;
  out.push_back(check_rejects("dim 0", p));
  p = ok, p.ldx = 2;
  out.push_back(check_rejects("ldx < dim", p));
  p = ok, p.ldo = 2;
  out.push_back(check_rejects("ldo < dim", p));
  p = ok, p.up = nullptr;
  out.push_back(check_rejects("swiglu without up", p));
  p = ok, p.kind = ActKind::Silu;
  out.push_back(check_rejects("up given to silu", p));
  p = ok, p.out = buf, p.ldo = 5;
  out.push_back(check_rejects("in place with another stride", p));
  p = ok, p.out = reinterpret_cast<float*>(reinterpret_cast<char*>(buf + 20) + 1);
  out.push_back(check_rejects("misaligned out", p));
  p = ok, p.ldx = int64_t{1} << 62;
  out.push_back(check_rejects("overflowing ldx", p));
  out.push_back(expect_accepted("activation", "valid, in-place and empty problems accepted", [&] {
    ops::check_activation(ok);
    p = ok, p.out = buf, p.ldo = 6;
    ops::check_activation(p);
    p = ActivationParams{}, p.dim = 1, p.ldx = 1, p.ldo = 1;
    ops::check_activation(p);
  }));
  return out;
}

}  // namespace

std::vector<Result> parity_activation(uint64_t seed) {
  Rng rng(seed);
  const auto& family = ops::activation_family();
  const std::shared_ptr<ThreadPool> dflt = default_pool();
  ThreadPool three(3);
  std::vector<Result> results;
  int index = 0;
  for (const Case& c : cases()) {
    const size_t n = static_cast<size_t>(c.rows * c.dim);
    std::vector<float> xs(n), ups(n);
    for (size_t i = 0; i < n; ++i) {
      xs[i] = c.sweep ? -20.0f + 40.0f * static_cast<float>(i) / static_cast<float>(n > 1 ? n - 1 : 1)
                      : sample(rng, static_cast<int64_t>(i));
      ups[i] = rng.normal();
    }
    // The expectation: the reference, separate dense buffers.
    std::vector<float> want(n);
    {
      ActivationParams p;
      p.kind = c.kind, p.rows = c.rows, p.dim = c.dim;
      p.x = xs.data(), p.ldx = c.dim, p.out = want.data(), p.ldo = c.dim;
      if (c.kind == ActKind::SwiGlu) p.up = ups.data(), p.ldu = c.dim;
      if (n) family.reference().fn(p, ExecContext(*dflt));
    }
    for (const auto& v : family.runnable()) {
      ThreadPool& pool = (index++ % 2) ? three : *dflt;
      std::unique_ptr<Problem> pr = make_problem(c, xs, ups);
      Result r = variant_case("activation", v, describe(c) + " threads=" + std::to_string(pool.size()));
      run_case(r, [&] {
        ops::check_activation(pr->p);
        v.fn(pr->p, ExecContext(pool));
        const std::vector<float> got = compact_out(pr->p);
        compare(got.data(), want.data(), n, kTol, kFloor, &r);
        const bool pad_ok = padding_intact(c, pr->p, ups);
        r.guards_ok = pr->data.intact() && pr->up_buf.intact() && pr->out_buf.intact() && pad_ok;
        if (!pad_ok) r.note = "wrote into row padding (or the up half)";
      });
      results.push_back(std::move(r));
    }
  }
  for (Result& r : check_cases()) results.push_back(std::move(r));
  return results;
}

}  // namespace qvl::parity
