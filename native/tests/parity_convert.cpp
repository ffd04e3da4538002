// convert parity: every variant must give the reference's bits for every supported pair, over
// random bit patterns (NaN, ±inf, subnormals, -0 included) and round-to-even ties, on sizes that
// straddle the generic variant's pieces, on pools of 1 and 3 threads; between integer dtypes, the
// same first value that does not fit (planted at piece boundaries, or none).
#include <algorithm>
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

// Random values of t; between integer dtypes, values that fit `to` except at `bad` (when >= 0).
std::vector<unsigned char> random_values(DType t, DType to, int64_t n, int64_t bad, Rng& rng) {
  std::vector<unsigned char> b(static_cast<size_t>(n) * dtype_size(t));
  for (int64_t i = 0; i < n; ++i) {
    uint64_t r = rng.next();
    if (t == DType::F32) {
      uint32_t w = static_cast<uint32_t>(r);
      if (i % 5 == 1) w &= 0xffff8000u | 0x8000u;  // a bf16 round-to-even tie or near it
      if (i % 11 == 3) w = 0x7f800000u | (w & 0x80000000u);
      if (i % 13 == 4) w &= 0x807fffffu;  // subnormal or zero
      std::memcpy(b.data() + 4 * i, &w, 4);
    } else if (t == DType::I32 || t == DType::I64 || t == DType::U8) {
      int64_t v = static_cast<int64_t>(r);
      if (t == DType::I32) v = static_cast<int32_t>(r);
      if (t == DType::U8) v = static_cast<uint8_t>(r);
      // Fit the target's range (u8: 0..255, i32: its range) unless this is the planted value.
      if (i != bad && to == DType::U8) v = static_cast<uint8_t>(v);
      if (i != bad && to == DType::I32) v = static_cast<int32_t>(v);
      if (i == bad) v = to == DType::U8 ? (i % 2 ? -1 : 256) : (int64_t{1} << 40) * (i % 2 ? -1 : 1);
      if (t == DType::I32) {
        const int32_t x = static_cast<int32_t>(v);
        std::memcpy(b.data() + 4 * i, &x, 4);
      } else if (t == DType::I64) {
        std::memcpy(b.data() + 8 * i, &v, 8);
      } else {
        b[static_cast<size_t>(i)] = static_cast<uint8_t>(v);
      }
    } else if (t == DType::F8E4M3) {
      b[static_cast<size_t>(i)] = static_cast<uint8_t>(r);
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
  const std::pair<DType, DType> pairs[] = {
      {DType::F32, DType::BF16}, {DType::BF16, DType::F32}, {DType::F32, DType::F16},   {DType::F16, DType::F32},
      {DType::F32, DType::F32},  {DType::BF16, DType::F16}, {DType::F16, DType::BF16},  {DType::BF16, DType::BF16},
      {DType::F8E4M3, DType::F32}, {DType::F8E4M3, DType::BF16}, {DType::F8E4M3, DType::F8E4M3},
      {DType::I32, DType::F32},  {DType::I64, DType::BF16}, {DType::U8, DType::F16},    {DType::I64, DType::F32},
      {DType::I32, DType::I64},  {DType::I64, DType::I32},  {DType::I32, DType::U8},    {DType::U8, DType::I32},
      {DType::I64, DType::U8},   {DType::I64, DType::I64}};
  const auto integer = [](DType t) { return t == DType::I32 || t == DType::I64 || t == DType::U8; };
  for (auto [from, to] : pairs) {
    // Between integer dtypes that can overflow: also a planted value that does not fit, at a
    // piece boundary and past it (a later one must not win).
    const bool narrows = integer(from) && integer(to) && from != to && to != DType::I64 && from != DType::U8;
    for (int64_t n : {int64_t{1}, int64_t{17}, int64_t{16384}, int64_t{16385}, int64_t{50001}}) {
      for (int64_t bad : {int64_t{-1}, n - 1, std::min<int64_t>(n - 1, 16384)}) {
        if (bad >= 0 && !narrows) break;
        const std::vector<unsigned char> src = random_values(from, to, n, bad, rng);
        std::vector<unsigned char> want(static_cast<size_t>(n) * dtype_size(to));
        ops::ConvertParams p;
        p.src = src.data(), p.src_dtype = from, p.dst_dtype = to, p.n = n;
        p.dst = want.data();
        const int64_t want_at = family.reference().fn(p, ExecContext(one));
        for (const auto& v : family.runnable()) {
          for (ThreadPool* pool : {&one, &three}) {
            std::vector<unsigned char> got(want.size() + 8, 0xa5);
            p.dst = got.data();
            const int64_t at = v.fn(p, ExecContext(*pool));
            Result r;
            r.op = "convert", r.variant = v.name;
            r.device = device_name(v.device);
            r.shape = std::string(dtype_name(from)) + "->" + dtype_name(to) + " n=" + std::to_string(n) +
                      (bad >= 0 ? " unfit=" + std::to_string(bad) : "") + " threads=" + std::to_string(pool->size());
            // When a value does not fit, dst is only partly written: the index is the result.
            r.passed = at == want_at && want_at == bad &&
                       (bad >= 0 || std::memcmp(got.data(), want.data(), want.size()) == 0);
            for (size_t i = want.size(); i < got.size(); ++i) r.guards_ok = r.guards_ok && got[i] == 0xa5;
            r.passed = r.passed && r.guards_ok;
            if (!r.passed)
              r.note = !r.guards_ok ? "wrote past dst"
                       : at != want_at || want_at != bad
                           ? "unfit at " + std::to_string(at) + ", reference " + std::to_string(want_at) + ", planted " +
                                 std::to_string(bad)
                           : "bits differ from the reference";
            results.push_back(r);
          }
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
  results.push_back(expect_rejected("convert", "bf16 -> f8_e4m3 refused", [] {
    uint16_t x = 0;
    uint8_t y = 0;
    ops::ConvertParams p;
    p.src = &x, p.src_dtype = DType::BF16, p.dst = &y, p.dst_dtype = DType::F8E4M3, p.n = 1;
    ops::check_convert(p);
  }));
  results.push_back(expect_rejected("convert", "f32 -> i32 refused", [] {
    float x = 0;
    int32_t y = 0;
    ops::ConvertParams p;
    p.src = &x, p.src_dtype = DType::F32, p.dst = &y, p.dst_dtype = DType::I32, p.n = 1;
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
