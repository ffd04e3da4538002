// Standalone parity runner: `qwenvl_parity [op] [seed]`. Exit status 1 when any case fails.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/parity.h"

int main(int argc, char** argv) {
  const std::string filter = argc > 1 ? argv[1] : "";
  const uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1234;
  int failed = 0, passed = 0;
  for (const auto& r : qvl::parity::run(filter, seed)) {
    std::printf("%-5s %-12s %-12s %-44s abs=%.3g rel=%.3g tol=%.3g %s\n", r.passed ? "ok" : "FAIL", r.op.c_str(),
                r.variant.c_str(), r.shape.c_str(), r.max_abs_err, r.max_rel_err, r.tolerance, r.note.c_str());
    (r.passed ? passed : failed)++;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
