// The parity harness: every variant of every op family against its plain reference, on random
// inputs of awkward sizes, with guard regions around every output to catch stray writes.
// A suite per op family lives in tests/parity_<op>.cpp and is listed in tests/parity_catalog.cpp.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/error.h"

namespace qvl::parity {

struct Result {
  std::string op;        // op family, e.g. "matmul"
  std::string variant;   // kernel variant, e.g. "avx512"
  std::string shape;     // the case, e.g. "M=7 K=33 N=65 w=bf16 bias"
  std::string device;    // where the variant ran (device_name of its registered device: "cpu", "cuda")
  std::string format;    // the weight format of the case, for ops that read weights (matmul, moe); else empty
  double max_abs_err = 0;
  double max_rel_err = 0;  // max over elements of |out-ref| / max(|ref|, floor)
  double tolerance = 0;
  bool guards_ok = true;
  bool passed = true;
  std::string note;
};

using Suite = std::vector<Result> (*)(uint64_t seed);
struct Entry {
  const char* op;
  Suite run;
};
const std::vector<Entry>& suites();
// Runs the suites whose op name equals `filter` (all when empty).
std::vector<Result> run(const std::string& filter, uint64_t seed);

// splitmix64: deterministic across platforms.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed ? seed : 0x9e3779b97f4a7c15ull) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
  float uniform(float lo, float hi) { return lo + static_cast<float>(uniform()) * (hi - lo); }
  float normal() {
    const double u1 = uniform() + 1e-300, u2 = uniform();
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  int64_t range(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1)); }

 private:
  uint64_t s_;
};

// A buffer of n elements with guard elements on both sides filled with a bit pattern that no
// kernel would write; intact() says whether they survived.
template <class T>
class Guarded {
 public:
  static constexpr size_t kGuard = 64;
  explicit Guarded(size_t n, T fill = T()) : n_(n), buf_(n + 2 * kGuard) {
    unsigned char* b = reinterpret_cast<unsigned char*>(buf_.data());
    for (size_t i = 0; i < kGuard * sizeof(T); ++i) b[i] = pattern(i);
    unsigned char* e = reinterpret_cast<unsigned char*>(buf_.data() + kGuard + n);
    for (size_t i = 0; i < kGuard * sizeof(T); ++i) e[i] = pattern(i);
    for (size_t i = 0; i < n; ++i) buf_[kGuard + i] = fill;
  }
  T* data() { return buf_.data() + kGuard; }
  const T* data() const { return buf_.data() + kGuard; }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return buf_[kGuard + i]; }
  const T& operator[](size_t i) const { return buf_[kGuard + i]; }
  bool intact() const {
    const unsigned char* b = reinterpret_cast<const unsigned char*>(buf_.data());
    const unsigned char* e = reinterpret_cast<const unsigned char*>(buf_.data() + kGuard + n_);
    for (size_t i = 0; i < kGuard * sizeof(T); ++i) {
      if (b[i] != pattern(i) || e[i] != pattern(i)) return false;
    }
    return true;
  }

 private:
  static unsigned char pattern(size_t i) { return static_cast<unsigned char>(0xA5 ^ (i * 29)); }
  size_t n_;
  std::vector<T> buf_;
};

// Outputs start as this NaN bit pattern, which no kernel writes: an output a kernel forgot fails
// the compare, and row padding that must stay unwritten can be checked bit for bit.
constexpr uint32_t kUnwritten = 0x7fc0dead;
inline float unwritten() {
  float v;
  std::memcpy(&v, &kUnwritten, 4);
  return v;
}
inline bool is_unwritten(float v) { return std::memcmp(&v, &kUnwritten, 4) == 0; }

// Elements spanned by `rows` rows of `cols` values `ld` apart (no padding after the last row).
inline size_t extent(int64_t rows, int64_t cols, int64_t ld) {
  return rows == 0 ? 0 : static_cast<size_t>((rows - 1) * ld + cols);
}

// A case run by variant v (an ops::Variant of any family) on the host or its device, named by shape.
template <class V>
Result variant_case(const std::string& op, const V& v, const std::string& shape) {
  Result r;
  r.op = op;
  r.variant = v.name;
  r.device = device_name(v.device);
  r.shape = shape;
  return r;
}

// Runs fn, failing r when it throws: a throw from the code under test is a failed case, not a
// crashed suite.
template <class Fn>
void run_case(Result& r, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    r.passed = false;
    r.note = std::string("threw: ") + e.what();
  }
}

// Compares out against ref element-wise and fills the error fields of r. Passes when every
// element satisfies |out-ref| <= tol * max(|ref|, floor) (floor keeps tiny references from
// demanding impossible relative accuracy); NaN anywhere in out fails.
void compare(const float* out, const float* ref, size_t n, double tol, double floor, Result* r);
// A "check" case that passes when fn throws qvl::Error with the given code: an entry point's
// validation rejecting a bad problem.
template <class Fn>
Result expect_rejected(const std::string& op, const std::string& what, Fn&& fn, ErrorCode code = ErrorCode::Input) {
  Result r;
  r.op = op, r.variant = "check", r.shape = what;
  try {
    fn();
    r.passed = false, r.note = "accepted";
  } catch (const Error& e) {
    r.passed = e.code() == code;
    if (!r.passed) r.note = std::string("wrong error code: ") + e.what();
  }
  return r;
}

// A "check" case that passes when fn (valid problems given to a check_* entry point) throws nothing.
template <class Fn>
Result expect_accepted(const std::string& op, const std::string& what, Fn&& fn) {
  Result r;
  r.op = op, r.variant = "check", r.shape = what;
  try {
    fn();
  } catch (const Error& e) {
    r.passed = false, r.note = e.what();
  }
  return r;
}

// Exact comparison for integer outputs (token ids, top-k indices).
template <class T>
void compare_exact(const T* out, const T* ref, size_t n, Result* r) {
  r->tolerance = 0;
  for (size_t i = 0; i < n; ++i) {
    if (out[i] != ref[i]) {
      r->passed = false;
      r->max_abs_err = 1;
      r->note = "first mismatch at element " + std::to_string(i);
      return;
    }
  }
}

}  // namespace qvl::parity
