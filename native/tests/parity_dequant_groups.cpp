// dequant_groups parity: every variant must give the reference's f32 bits for q4 (codes minus
// zero points), q8 (int8 codes) and f8 (every e4m3 byte, NaNs included), on groups that are not
// multiples of 32, a partial last group, one group per row, single rows and columns, and pools of
// 1 and 3 threads. A hand-built case pins the formulas themselves.
#include <cstring>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/dequant_groups.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

struct Case {
  WeightFormat format;
  int64_t out, in, group;
};

void dequant_case(const Case& c, Rng& rng, ThreadPool& one, ThreadPool& three, std::vector<Result>* results) {
  const auto& family = ops::dequant_groups_family();
  const int64_t groups = (c.in + c.group - 1) / c.group;
  std::vector<uint8_t> codes(static_cast<size_t>(c.out * c.in)), zeros;
  for (auto& q : codes) q = static_cast<uint8_t>(c.format == WeightFormat::Q4 ? rng.range(0, 15) : rng.range(0, 255));
  std::vector<float> scales(static_cast<size_t>(c.out * groups));
  for (auto& s : scales) s = rng.uniform(-0.1f, 0.1f);
  if (c.format == WeightFormat::Q4) {
    zeros.resize(scales.size());
    for (auto& z : zeros) z = static_cast<uint8_t>(rng.range(0, 15));
  }
  ops::DequantGroupsParams p;
  p.format = c.format, p.out = c.out, p.in = c.in, p.group = c.group;
  p.codes = codes.data(), p.scales = scales.data(), p.zeros = zeros.empty() ? nullptr : zeros.data();
  Guarded<float> want(codes.size(), unwritten());
  p.dst = want.data();
  family.reference().fn(p, ExecContext(one));
  const std::string shape = std::string(weight_format_name(c.format)) + " out=" + std::to_string(c.out) +
                            " in=" + std::to_string(c.in) + " group=" + std::to_string(c.group);
  for (const auto& v : family.runnable()) {
    for (ThreadPool* pool : {&one, &three}) {
      Result r = variant_case("dequant_groups", v, shape + " threads=" + std::to_string(pool->size()));
      r.format = weight_format_name(c.format);
      Guarded<float> got(codes.size(), unwritten());
      p.dst = got.data();
      run_case(r, [&] { v.fn(p, ExecContext(*pool)); });
      r.guards_ok = got.intact();
      const bool same = codes.empty() || std::memcmp(got.data(), want.data(), codes.size() * sizeof(float)) == 0;
      r.passed = r.passed && r.guards_ok && same;
      if (!r.passed && r.note.empty()) r.note = r.guards_ok ? "bits differ from the reference" : "wrote past dst";
      results->push_back(r);
    }
  }
}

// Known values: q4 (q − z)·s, q8 int8·s, f8 e4m3·s with a partial last group.
void known_answers(ThreadPool& pool, std::vector<Result>* results) {
  for (const auto& v : ops::dequant_groups_family().runnable()) {
    Result r = variant_case("dequant_groups", v, "known: q4, q8, f8 values");
    const uint8_t q4[3] = {0, 7, 15}, z4[2] = {7, 1};
    const uint8_t q8[3] = {0x80, 0xff, 0x05};
    const uint8_t f8[3] = {0x38, 0xb8, 0x7e};  // 1.0, -1.0, 448
    const float s[2] = {0.5f, 2.0f};
    float d[3] = {};
    ops::DequantGroupsParams p;
    p.out = 1, p.in = 3, p.group = 2, p.scales = s, p.dst = d;
    bool ok = true;
    run_case(r, [&] {
      p.format = WeightFormat::Q4, p.codes = q4, p.zeros = z4;
      v.fn(p, ExecContext(pool));
      ok = ok && d[0] == -3.5f && d[1] == 0.0f && d[2] == 28.0f;
      p.format = WeightFormat::Q8, p.codes = q8, p.zeros = nullptr;
      v.fn(p, ExecContext(pool));
      ok = ok && d[0] == -64.0f && d[1] == -0.5f && d[2] == 10.0f;
      p.format = WeightFormat::F8, p.codes = f8;
      v.fn(p, ExecContext(pool));
      ok = ok && d[0] == 0.5f && d[1] == -0.5f && d[2] == 896.0f;
    });
    r.passed = r.passed && ok;
    if (!r.passed && r.note.empty()) r.note = "wrong values";
    results->push_back(r);
  }
}

}  // namespace

std::vector<Result> parity_dequant_groups(uint64_t seed) {
  Rng rng(seed);
  ThreadPool one(1), three(3);
  std::vector<Result> results;
  const Case cases[] = {
      {WeightFormat::Q4, 1, 1, 1},    {WeightFormat::Q4, 37, 48, 16}, {WeightFormat::Q4, 33, 100, 100},
      {WeightFormat::Q4, 5, 70, 32},  {WeightFormat::Q8, 37, 48, 16}, {WeightFormat::Q8, 17, 81, 27},
      {WeightFormat::Q8, 1, 255, 7},  {WeightFormat::F8, 37, 300, 128}, {WeightFormat::F8, 130, 129, 128},
      {WeightFormat::F8, 16, 256, 256}, {WeightFormat::Q4, 0, 16, 16},
  };
  for (const Case& c : cases) dequant_case(c, rng, one, three, &results);
  known_answers(three, &results);
  results.push_back(expect_accepted("dequant_groups", "valid and empty problems accepted", [] {
    uint8_t q[4] = {};
    float s[2] = {}, d[4] = {};
    ops::DequantGroupsParams p;
    p.format = WeightFormat::Q8, p.out = 1, p.in = 4, p.group = 3, p.codes = q, p.scales = s, p.dst = d;
    ops::check_dequant_groups(p);
    p.out = 0, p.codes = nullptr, p.scales = nullptr, p.dst = nullptr;
    ops::check_dequant_groups(p);
  }));
  const auto rejected = [&](const std::string& what, auto&& edit) {
    results.push_back(expect_rejected("dequant_groups", what, [&] {
      uint8_t q[4] = {}, z[2] = {};
      float s[2] = {}, d[4] = {};
      ops::DequantGroupsParams p;
      p.format = WeightFormat::Q4, p.out = 1, p.in = 4, p.group = 2, p.codes = q, p.scales = s, p.zeros = z, p.dst = d;
      edit(p);
      ops::check_dequant_groups(p);
    }));
  };
  rejected("bf16 format", [](ops::DequantGroupsParams& p) { p.format = WeightFormat::BF16, p.zeros = nullptr; });
  rejected("q4 without zero points", [](ops::DequantGroupsParams& p) { p.zeros = nullptr; });
  rejected("q8 with zero points", [](ops::DequantGroupsParams& p) { p.format = WeightFormat::Q8; });
  rejected("group 0", [](ops::DequantGroupsParams& p) { p.group = 0; });
  rejected("null dst", [](ops::DequantGroupsParams& p) { p.dst = nullptr; });
  return results;
}

}  // namespace qvl::parity
