// layer_norm and rms_norm parity: every variant against the double reference.
//
// Tolerance. An rms_norm output is two fp32 roundings of w·(x·rs) (rs good to ~1 ulp since the
// sum is in double), so it is relatively accurate however small: relative 1e-6, floor 1e-3
// (measured 2e-7). A layer_norm output (x - mean)·rstd·w + b rounds the normalised value, which
// is O(1) by construction, before the bias cancels part of it: its error is ~1 ulp of |n·w| (up
// to ~6 at 4 sigma), not of the output, so it is measured against max(|ref|, 1): 1e-6 (measured
// 4e-7). A lost element, a wrong mean or an fp32-accumulated variance over long rows
// misses by orders of magnitude more.
// Inputs: N(0,1) rows, rows with a large mean (100 ± 1, where a one-pass fp32 variance is wrong),
// scales 1e3 and 1e-3, constant rows (zero variance: the output is the bias), weights in f32,
// bf16 and f16 or absent, bias present or not; strided and in-place layouts.
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "ops/norm.h"
#include "tests/parity.h"
#include "tests/parity_padded_rows.h"

namespace qvl::parity {

namespace {

using ops::NormParams;

constexpr double kRmsTol = 1e-6, kRmsFloor = 1e-3;
constexpr double kLayerTol = 1e-6, kLayerFloor = 1.0;

enum class Fill { Normal, Offset, Large, Small, Constant };
const char* fill_name(Fill f) {
  switch (f) {
    case Fill::Normal: return "N(0,1)";
    case Fill::Offset: return "N(100,1)";
    case Fill::Large: return "N(0,1e6)";
    case Fill::Small: return "N(0,1e-6)";
    case Fill::Constant: return "constant";
  }
  return "";
}

struct Case {
  bool rms;
  int64_t rows, dim, pad;
  bool in_place;
  Fill fill;
  int wt;  // 0: no weight, else weight dtype F32/BF16/F16 = 1/2/3
  bool bias;
  float eps;
};

DType wdtype(int wt) { return wt == 2 ? DType::BF16 : wt == 3 ? DType::F16 : DType::F32; }

// A [dim] parameter vector in its storage type, plus the same values as f32 for the record.
struct Param {
  std::vector<float> f;
  std::vector<uint16_t> h;
  const void* ptr(DType t) const { return t == DType::F32 ? static_cast<const void*>(f.data()) : h.data(); }
};

Param make_param(int64_t dim, DType t, float mean, float sd, Rng& rng) {
  Param p;
  p.f.resize(static_cast<size_t>(dim));
  p.h.resize(static_cast<size_t>(dim));
  for (int64_t i = 0; i < dim; ++i) {
    const float v = mean + sd * rng.normal();
    if (t == DType::BF16) p.h[i] = f32_to_bf16(v);
    else if (t == DType::F16) p.h[i] = f32_to_f16(v);
    p.f[i] = v;
  }
  return p;
}

std::vector<float> make_input(const Case& c, Rng& rng) {
  std::vector<float> xs(static_cast<size_t>(c.rows * c.dim));
  for (int64_t r = 0; r < c.rows; ++r) {
    const float level = rng.uniform(-3.0f, 3.0f);
    for (int64_t i = 0; i < c.dim; ++i) {
      float& x = xs[r * c.dim + i];
      switch (c.fill) {
        case Fill::Normal: x = rng.normal(); break;
        case Fill::Offset: x = 100.0f + rng.normal(); break;
        case Fill::Large: x = 1e3f * rng.normal(); break;
        case Fill::Small: x = 1e-3f * rng.normal(); break;
        case Fill::Constant: x = c.rms && r == 0 ? 0.0f : level; break;
      }
    }
  }
  return xs;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  const int64_t dims[] = {1, 3, 15, 17, 31, 33, 100, 1000, 1536 + 7};
  const Fill fills[] = {Fill::Normal, Fill::Offset, Fill::Large, Fill::Small, Fill::Constant};
  int i = 0;
  for (int rms = 0; rms < 2; ++rms) {
    for (int64_t d : dims) {
      for (Fill f : fills) {
        for (int wt = 0; wt < 4; ++wt, ++i) {
          const int64_t rows = d >= 1000 ? 2 : 3 + (i % 3);
          const bool bias = !rms && (i % 2 == 0);
          const float eps = (i % 3 == 0) ? 1e-5f : 1e-6f;
          out.push_back({rms == 1, rows, d, (i % 2) ? 3 : 0, (i % 4) == 1, f, wt, bias, eps});
        }
      }
    }
    out.push_back({rms == 1, 67, 4096 + 5, 1, false, Fill::Normal, 2, rms == 0, 1e-6f});  // threaded
    out.push_back({rms == 1, 3, 70001, 0, true, Fill::Offset, 1, rms == 0, 1e-6f});       // long rows
    out.push_back({rms == 1, 0, 17, 0, false, Fill::Normal, 1, false, 1e-6f});            // nothing to do
  }
  return out;
}

std::string describe(const Case& c) {
  static const char* wn[] = {"none", "f32", "bf16", "f16"};
  return "rows=" + std::to_string(c.rows) + " dim=" + std::to_string(c.dim) + (c.pad ? " strided" : "") +
         (c.in_place ? " inplace " : " ") + fill_name(c.fill) + " w=" + wn[c.wt] + (c.bias ? " bias" : "") +
         (c.eps == 1e-5f ? " eps=1e-5" : "");
}

Result check_rejects(bool rms, const char* what, NormParams p) {
  return expect_rejected(rms ? "rms_norm" : "layer_norm", what, [&] {
    if (rms) ops::check_rms_norm(p);
    else ops::check_layer_norm(p);
  });
}

std::vector<Result> check_cases(bool rms) {
  float buf[64] = {};
  NormParams ok;
  ok.rows = 2, ok.dim = 3, ok.x = buf, ok.ldx = 4, ok.out = buf + 20, ok.ldo = 3, ok.weight = buf + 40;
  std::vector<Result> out;
  NormParams p = ok;
  p.rows = -1;
  out.push_back(check_rejects(rms, "negative rows", p));
  p = ok, p.dim = 0;
  out.push_back(check_rejects(rms, "dim 0", p));
  p = ok, p.ldx = 2;
  out.push_back(check_rejects(rms, "ldx < dim", p));
  p = ok, p.ldo = 1;
  out.push_back(check_rejects(rms, "ldo < dim", p));
  p = ok, p.x = nullptr;
  out.push_back(check_rejects(rms, "null x", p));
  p = ok, p.out = buf, p.ldo = 3;
  out.push_back(check_rejects(rms, "in place with another stride", p));
  p = ok, p.w_dtype = DType::I32;
  out.push_back(check_rejects(rms, "i32 weight", p));
  p = ok, p.w_dtype = DType::BF16, p.weight = reinterpret_cast<const char*>(buf) + 1;
  out.push_back(check_rejects(rms, "misaligned bf16 weight", p));
  p = ok, p.eps = -1e-6f;
  out.push_back(check_rejects(rms, "negative eps", p));
  p = ok, p.eps = std::nanf("");
  out.push_back(check_rejects(rms, "NaN eps", p));
  p = ok, p.ldx = int64_t{1} << 62;
  out.push_back(check_rejects(rms, "overflowing ldx", p));
  if (rms) {
    p = ok, p.bias = buf;
    out.push_back(check_rejects(rms, "bias given to rms_norm", p));
  }
  out.push_back(expect_accepted(rms ? "rms_norm" : "layer_norm", "valid, in-place and empty problems accepted", [&] {
    const auto check = rms ? &ops::check_rms_norm : &ops::check_layer_norm;
    check(ok);
    p = ok, p.out = buf, p.ldo = 4, p.weight = nullptr, p.eps = 0;
    check(p);
    p = NormParams{}, p.dim = 5, p.ldx = 5, p.ldo = 5;
    check(p);
  }));
  return out;
}

std::vector<Result> run_suite(bool rms, uint64_t seed) {
  Rng rng(seed);
  const auto& family = rms ? ops::rms_norm_family() : ops::layer_norm_family();
  const std::shared_ptr<ThreadPool> dflt = default_pool();
  ThreadPool three(3);
  std::vector<Result> results;
  int index = 0;
  for (const Case& c : cases()) {
    if (c.rms != rms) continue;
    const DType wt = wdtype(c.wt);
    const std::vector<float> xs = make_input(c, rng);
    const Param w = make_param(c.dim, wt, 1.0f, 0.3f, rng), b = make_param(c.dim, wt, 0.0f, 0.5f, rng);
    NormParams base;
    base.rows = c.rows, base.dim = c.dim, base.eps = c.eps, base.w_dtype = wt;
    base.weight = c.wt ? w.ptr(wt) : nullptr;
    base.bias = c.bias ? b.ptr(wt) : nullptr;
    std::vector<float> want(xs.size());
    if (c.rows) {
      NormParams p = base;
      p.x = xs.data(), p.ldx = c.dim, p.out = want.data(), p.ldo = c.dim;
      family.reference().fn(p, ExecContext(*dflt));
    }
    for (const auto& v : family.runnable()) {
      ThreadPool& pool = (index++ % 2) ? three : *dflt;
      PaddedRows bufs(xs, c.rows, c.dim, c.pad, c.in_place);
      NormParams p = base;
      p.x = bufs.x(), p.ldx = bufs.ldx();
      p.out = bufs.out(), p.ldo = bufs.ldo();
      Result r = variant_case(rms ? "rms_norm" : "layer_norm", v, describe(c) + " threads=" + std::to_string(pool.size()));
      run_case(r, [&] {
        if (rms) ops::check_rms_norm(p);
        else ops::check_layer_norm(p);
        v.fn(p, ExecContext(pool));
        bufs.finish(want, rms ? kRmsTol : kLayerTol, rms ? kRmsFloor : kLayerFloor, &r);
      });
      results.push_back(std::move(r));
    }
  }
  for (Result& r : check_cases(rms)) results.push_back(std::move(r));
  return results;
}

}  // namespace

std::vector<Result> parity_layer_norm(uint64_t seed) { return run_suite(false, seed); }
std::vector<Result> parity_rms_norm(uint64_t seed) { return run_suite(true, seed); }

}  // namespace qvl::parity
