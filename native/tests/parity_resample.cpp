// resample_bicubic parity: every variant must reproduce the reference byte for byte (the
// arithmetic is integer, so any difference is a bug, not rounding). Cases cover both
// coefficient roundings, 1..4 channels, up- and down-scaling per axis, one-axis resizes,
// identity, size-1 sides and extreme ratios. Plus the reference's own invariant: a constant
// image stays constant, and the entry point rejects inconsistent sizes.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "ops/resample.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

using ops::ResampleParams;
using ops::ResampleRounding;

struct Case {
  int64_t sw, sh, dw, dh;
  int ch;
};

const Case kCases[] = {
    {1, 1, 1, 1, 3},     {1, 1, 5, 3, 3},     {7, 5, 3, 11, 3},     {31, 17, 12, 40, 3},  {120, 90, 112, 84, 3},
    {300, 200, 308, 196, 3}, {224, 224, 256, 256, 3}, {97, 61, 97, 13, 3}, {61, 97, 13, 97, 3}, {5, 400, 3, 7, 3},
    {400, 5, 17, 2, 3},  {33, 33, 33, 33, 3}, {2, 2, 199, 1, 3},    {45, 29, 44, 30, 1},  {45, 29, 90, 15, 2},
    {45, 29, 11, 70, 4}, {1000, 3, 7, 3, 3},  {13, 1, 1, 13, 4},
};

std::string describe(const Case& c, ResampleRounding r) {
  return std::to_string(c.sw) + "x" + std::to_string(c.sh) + " -> " + std::to_string(c.dw) + "x" +
         std::to_string(c.dh) + " ch=" + std::to_string(c.ch) + (r == ResampleRounding::Pillow ? " pillow" : " torch");
}

Result check_rejects(const char* what, const ResampleParams& p) {
  return expect_rejected("resample_bicubic", what, [&] { ops::check_resample(p); });
}

std::vector<Result> check_cases() {
  uint8_t buf[64] = {};
  ResampleParams ok;
  ok.src = buf, ok.src_w = 2, ok.src_h = 2, ok.dst = buf, ok.dst_w = 3, ok.dst_h = 3;
  std::vector<Result> out;
  ResampleParams p = ok;
  p.src_w = 0;
  out.push_back(check_rejects("zero width", p));
  p = ok, p.dst_h = -3;
  out.push_back(check_rejects("negative height", p));
  p = ok, p.channels = 5;
  out.push_back(check_rejects("5 channels", p));
  p = ok, p.dst = nullptr;
  out.push_back(check_rejects("null dst", p));
  p = ok, p.src_w = int64_t{1} << 30;
  out.push_back(check_rejects("huge side", p));
  p = ok, p.rounding = static_cast<ResampleRounding>(7);
  out.push_back(check_rejects("unknown rounding", p));
  return out;
}

Result constant_case(ResampleRounding rounding, Rng& rng) {
  Result r;
  r.op = "resample_bicubic";
  r.variant = "reference";
  r.shape = std::string("constant image stays constant") + (rounding == ResampleRounding::Pillow ? " pillow" : " torch");
  const int64_t sw = 53, sh = 37, dw = 20, dh = 71;
  std::vector<uint8_t> src(sw * sh * 3), dst(dw * dh * 3);
  for (int rep = 0; rep < 4; ++rep) {
    const uint8_t v = static_cast<uint8_t>(rep == 0 ? 0 : rep == 1 ? 255 : rng.range(1, 254));
    for (auto& b : src) b = v;
    ResampleParams p;
    p.src = src.data(), p.src_w = sw, p.src_h = sh, p.dst = dst.data(), p.dst_w = dw, p.dst_h = dh;
    p.rounding = rounding;
    ops::resample_family().reference().fn(p, ExecContext(*default_pool()));
    for (uint8_t b : dst) {
      if (b != v) {
        r.passed = false;
        r.max_abs_err = std::max(r.max_abs_err, static_cast<double>(b > v ? b - v : v - b));
        r.note = "value " + std::to_string(v) + " not preserved";
      }
    }
  }
  return r;
}

}  // namespace

std::vector<Result> parity_resample(uint64_t seed) {
  Rng rng(seed);
  const auto& family = ops::resample_family();
  const std::shared_ptr<ThreadPool> dflt = default_pool();
  ThreadPool three(3);
  std::vector<Result> results = check_cases();
  int index = 0;
  for (const Case& c : kCases) {
    for (ResampleRounding rounding : {ResampleRounding::Pillow, ResampleRounding::Torch}) {
      ++index;
      // Mostly smooth content with a few hard edges, so both clipping and mid-range values occur.
      std::vector<uint8_t> src(static_cast<size_t>(c.sw * c.sh * c.ch));
      for (auto& b : src) b = static_cast<uint8_t>(rng.range(0, 3) == 0 ? (rng.range(0, 1) ? 255 : 0) : rng.range(0, 255));
      const size_t n = static_cast<size_t>(c.dw * c.dh * c.ch);
      ResampleParams p;
      p.src = src.data(), p.src_w = c.sw, p.src_h = c.sh, p.dst_w = c.dw, p.dst_h = c.dh, p.channels = c.ch;
      p.rounding = rounding;
      Guarded<uint8_t> ref(n, 0xCD);
      p.dst = ref.data();
      ops::check_resample(p);
      family.reference().fn(p, ExecContext(*dflt));
      for (const auto& v : family.runnable()) {
        if (v.fn == family.reference().fn) continue;
        Guarded<uint8_t> out(n, 0xCD);
        ResampleParams q = p;
        q.dst = out.data();
        v.fn(q, ExecContext(index % 2 ? three : *dflt));
        Result r;
        r.op = "resample_bicubic";
        r.variant = v.name;
        r.device = device_name(v.device);
        r.shape = describe(c, rounding);
        compare_exact(out.data(), ref.data(), n, &r);
        r.guards_ok = out.intact() && ref.intact();
        results.push_back(r);
      }
    }
  }
  results.push_back(constant_case(ResampleRounding::Pillow, rng));
  results.push_back(constant_case(ResampleRounding::Torch, rng));
  return results;
}

}  // namespace qvl::parity
