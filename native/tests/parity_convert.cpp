// convert parity: every variant must give the reference's bits for every supported pair, over
// random bit patterns (NaN, ±inf, subnormals, -0 included) and round-to-even ties, on sizes that
// straddle the generic variant's pieces, on pools of 1 and 3 threads.
#include <cstring>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/dtype.h"
#include "core/threadpool.h"
#include "ops/convert.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

std::vector<unsigned char> random_values(DType t, int64_t n, Rng& rng) {
  std::vector<unsigned char> b(static_cast<size_t>(n) * dtype_size(t));
  for (int64_t i = 0; i < n; ++i) {
    uint32_t r = static_cast<uint32_t>(rng.next());
    if (t == DType::F32) {
      if (i % 5 == 1) r &= 0xffff8000u | 0x8000u;  // a bf16 round-to-even tie or near it
      if (i % 11 == 3) r = 0x7f800000u | (r & 0x80000000u);
      if (i % 13 == 4) r &= 0x807fffffu;  // subnormal or zero
      std::memcpy(b.data() + 4 * i, &r, 4);
    } else {
      const uint16_t h = static_cast<uint16_t>(r);
      std::memcpy(b.data() + 2 * i, &h, 2);
    }
  }
  return b;
}

}  // namespace

std::vector<Result> parity_convert(uint64_t seed) {
  Rng rng(seed);
  const auto& family = ops::convert_family();
  ThreadPool one(1), three(3);
  std::vector<Result> results;
  const std::pair<DType, DType> pairs[] = {{DType::F32, DType::BF16}, {DType::BF16, DType::F32}, {DType::F32, DType::F16},
                                           {DType::F16, DType::F32}, {DType::F32, DType::F32}};
  for (auto [from, to] : pairs) {
    for (int64_t n : {int64_t{1}, int64_t{17}, int64_t{16384}, int64_t{16385}, int64_t{50001}}) {
      const std::vector<unsigned char> src = random_values(from, n, rng);
      std::vector<unsigned char> want(static_cast<size_t>(n) * dtype_size(to));
      ops::ConvertParams p;
      p.src = src.data(), p.src_dtype = from, p.dst_dtype = to, p.n = n;
      p.dst = want.data();
      family.reference().fn(p, ExecContext(one));
      for (const auto& v : family.runnable()) {
        for (ThreadPool* pool : {&one, &three}) {
          std::vector<unsigned char> got(want.size() + 8, 0xa5);
          p.dst = got.data();
          v.fn(p, ExecContext(*pool));
          Result r;
          r.op = "convert", r.variant = v.name;
          r.device = device_name(v.device);
          r.shape = std::string(dtype_name(from)) + "->" + dtype_name(to) + " n=" + std::to_string(n) +
                    " threads=" + std::to_string(pool->size());
          r.passed = std::memcmp(got.data(), want.data(), want.size()) == 0;
          for (size_t i = want.size(); i < got.size(); ++i) r.guards_ok = r.guards_ok && got[i] == 0xa5;
          r.passed = r.passed && r.guards_ok;
          if (!r.passed) r.note = r.guards_ok ? "bits differ from the reference" : "wrote past dst";
          results.push_back(r);
        }
      }
    }
  }
  results.push_back(expect_accepted("convert", "valid and empty problems accepted", [] {
    float x = 1.0f;
    uint16_t y = 0;
    ops::ConvertParams p;
    p.src = &x, p.dst = &y, p.n = 1;
    ops::check_convert(p);
    p.src = nullptr, p.dst = nullptr, p.n = 0;
    ops::check_convert(p);
  }));
  results.push_back(expect_rejected("convert", "bf16 -> f16 refused", [] {
    uint16_t x = 0, y = 0;
    ops::ConvertParams p;
    p.src = &x, p.src_dtype = DType::BF16, p.dst = &y, p.dst_dtype = DType::F16, p.n = 1;
    ops::check_convert(p);
  }));
  results.push_back(expect_rejected("convert", "i32 refused", [] {
    int32_t x = 0;
    float y = 0;
    ops::ConvertParams p;
    p.src = &x, p.src_dtype = DType::I32, p.dst = &y, p.dst_dtype = DType::F32, p.n = 1;
    ops::check_convert(p);
  }));
  results.push_back(expect_rejected("convert", "overlapping dst refused", [] {
    float x[4] = {};
    ops::ConvertParams p;
    p.src = x, p.src_dtype = DType::F32, p.dst = x + 1, p.dst_dtype = DType::BF16, p.n = 3;
    ops::check_convert(p);
  }));
  results.push_back(expect_rejected("convert", "null data refused", [] {
    ops::ConvertParams p;
    p.n = 4;
    ops::check_convert(p);
  }));
  return results;
}

}  // namespace qvl::parity
