#include "core/exec_context.h"

#include <cstring>

namespace qvl {

void OpProfiler::add(const char* op, uint64_t ns) {
  for (Counter& c : counters_) {
    if (c.op == op || std::strcmp(c.op, op) == 0) {
      c.ns += ns;
      ++c.calls;
      return;
    }
  }
  counters_.push_back(Counter{op, ns, 1});
}

uint64_t OpProfiler::total_ns() const {
  uint64_t total = 0;
  for (const Counter& c : counters_) total += c.ns;
  return total;
}

}  // namespace qvl
