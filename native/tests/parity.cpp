#include "tests/parity.h"

#include <algorithm>

namespace qvl::parity {

void compare(const float* out, const float* ref, size_t n, double tol, double floor, Result* r) {
  r->tolerance = tol;
  for (size_t i = 0; i < n; ++i) {
    const double o = out[i], e = ref[i];
    const double abs_err = std::fabs(o - e);
    const double rel = abs_err / std::max(std::fabs(e), floor);
    if (std::isnan(o) != std::isnan(e) || (!std::isnan(o) && std::isinf(o) != std::isinf(e))) {
      r->passed = false;
      if (r->note.empty()) r->note = "NaN/Inf mismatch at element " + std::to_string(i);
      continue;
    }
    if (std::isnan(o) || std::isinf(o)) continue;
    r->max_abs_err = std::max(r->max_abs_err, abs_err);
    r->max_rel_err = std::max(r->max_rel_err, rel);
    if (rel > tol) {
      if (r->passed) r->note = "first miss at element " + std::to_string(i);
      r->passed = false;
    }
  }
}

std::vector<Result> run(const std::string& filter, uint64_t seed) {
  std::vector<Result> all;
  for (const Entry& e : suites()) {
    if (!filter.empty() && filter != e.op) continue;
    for (Result& r : e.run(seed)) {
      r.passed = r.passed && r.guards_ok;
      if (!r.guards_ok && r.note.empty()) r.note = "write outside the output buffer";
      all.push_back(std::move(r));
    }
  }
  return all;
}

}  // namespace qvl::parity
