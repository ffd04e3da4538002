// finite parity: every variant must report the same first non-finite index as the reference, for
// NaN / +inf / -inf planted at awkward places (first, last, piece boundaries, several at once),
// for all-finite data holding the extremes (max, subnormals, -0), and on pools of 1 and 3 threads.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/dtype.h"
#include "core/threadpool.h"
#include "ops/finite.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

// Bit patterns of (finite max, subnormal, NaN, +inf, -inf) per dtype.
struct Patterns {
  uint32_t max, sub, nan, pinf, ninf;
};

Patterns patterns(DType t) {
  if (t == DType::F32) return {0x7f7fffffu, 0x00000001u, 0x7fc00001u, 0x7f800000u, 0xff800000u};
  if (t == DType::BF16) return {0x7f7fu, 0x0001u, 0x7fc1u, 0x7f80u, 0xff80u};
  // f8_e4m3 has no infinity: its two NaNs stand in for the infinities.
  if (t == DType::F8E4M3) return {0x7eu, 0x01u, 0x7fu, 0xffu, 0x7fu};
  return {0x7bffu, 0x0001u, 0x7e01u, 0x7c00u, 0xfc00u};
}

struct Data {
  std::vector<uint32_t> w;
  std::vector<uint16_t> h;
  std::vector<uint8_t> b;
  DType t;
  void set(int64_t i, uint32_t bits) {
    if (t == DType::F32) w[i] = bits;
    else if (t == DType::F8E4M3) b[i] = static_cast<uint8_t>(bits);
    else h[i] = static_cast<uint16_t>(bits);
  }
  const void* ptr() const {
    if (t == DType::F32) return w.data();
    if (t == DType::F8E4M3) return b.data();
    return h.data();
  }
};

Data finite_data(DType t, int64_t n, Rng& rng) {
  Data d{{}, {}, {}, t};
  const Patterns p = patterns(t);
  if (t == DType::F32) d.w.resize(n);
  else if (t == DType::F8E4M3) d.b.resize(n);
  else d.h.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t r = static_cast<uint32_t>(rng.next());
    // Random finite values: clear the top exponent bit so the exponent is never all ones.
    uint32_t bits = t == DType::F32      ? (r & 0xbfffffffu)
                    : t == DType::F8E4M3 ? (r & 0xbfu)
                                         : (r & (t == DType::BF16 ? 0xbfffu : 0xbbffu));
    if (i % 97 == 5) bits = p.max;
    if (i % 89 == 7) bits = p.sub;
    d.set(i, bits);
  }
  return d;
}

}  // namespace

std::vector<Result> parity_finite(uint64_t seed) {
  Rng rng(seed);
  const auto& family = ops::finite_family();
  ThreadPool one(1), three(3);
  std::vector<Result> results;
  const DType types[] = {DType::F32, DType::BF16, DType::F16, DType::F8E4M3};
  const int64_t sizes[] = {1, 7, 65536, 65537, 300001};
  for (DType t : types) {
    const Patterns pat = patterns(t);
    for (int64_t n : sizes) {
      // -1: all finite; otherwise plant at these places (a later bad value must not win).
      std::vector<std::vector<int64_t>> plants = {{}, {0}, {n - 1}, {n / 2, n - 1}};
      if (n > 65536) plants.push_back({65536, 3});
      for (size_t k = 0; k < plants.size(); ++k) {
        Data d = finite_data(t, n, rng);
        const uint32_t bad[] = {pat.nan, pat.pinf, pat.ninf};
        for (size_t j = 0; j < plants[k].size(); ++j) d.set(plants[k][j], bad[(k + j) % 3]);
        ops::FiniteParams p;
        p.x = d.ptr(), p.dtype = t, p.n = n;
        const int64_t want = family.reference().fn(p, ExecContext(one));
        int64_t expect = -1;
        for (int64_t at : plants[k]) expect = expect < 0 ? at : std::min(expect, at);
        for (const auto& v : family.runnable()) {
          for (ThreadPool* pool : {&one, &three}) {
            Result r;
            r.op = "finite", r.variant = v.name;
            r.device = device_name(v.device);
            r.shape = std::string("n=") + std::to_string(n) + " " + dtype_name(t) + " planted=" +
                      std::to_string(plants[k].size()) + " threads=" + std::to_string(pool->size());
            const int64_t got = v.fn(p, ExecContext(*pool));
            r.passed = got == want && want == expect;
            if (!r.passed) r.note = "got " + std::to_string(got) + ", reference " + std::to_string(want) +
                                    ", planted " + std::to_string(expect);
            results.push_back(r);
          }
        }
      }
    }
  }
  results.push_back(expect_accepted("finite", "valid and empty problems accepted", [] {
    float x = 1.0f;
    ops::FiniteParams p;
    p.x = &x, p.n = 1;
    ops::check_finite(p);
    p.x = nullptr, p.n = 0;
    ops::check_finite(p);
  }));
  results.push_back(expect_rejected("finite", "i32 data refused", [] {
    int32_t x = 0;
    ops::FiniteParams p;
    p.x = &x, p.dtype = DType::I32, p.n = 1;
    ops::check_finite(p);
  }));
  results.push_back(expect_rejected("finite", "null data refused", [] {
    ops::FiniteParams p;
    p.n = 4;
    ops::check_finite(p);
  }));
  results.push_back(expect_rejected("finite", "misaligned f32 refused", [] {
    alignas(4) unsigned char raw[12] = {};
    ops::FiniteParams p;
    p.x = raw + 1, p.n = 2;
    ops::check_finite(p);
  }));
  return results;
}

}  // namespace qvl::parity
