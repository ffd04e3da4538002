// read_stream parity: the streaming read the placement probe and the memory floor time must sum
// the same words as its plain loop, for lengths around its 128-byte steps (tails, partial words)
// and at every misalignment of the start.
#include <string>
#include <vector>

#include "core/read_stream.h"
#include "tests/parity.h"

namespace qvl::parity {

std::vector<Result> parity_read_stream(uint64_t seed) {
  Rng rng(seed);
  std::vector<unsigned char> buf(70000 + 16);
  for (auto& b : buf) b = static_cast<unsigned char>(rng.next());
  std::vector<Result> results;
  for (size_t n : {size_t{0}, size_t{7}, size_t{8}, size_t{9}, size_t{127}, size_t{128}, size_t{129}, size_t{1000},
                   size_t{4120}, size_t{65549}, size_t{70000}}) {
    for (size_t off = 0; off < 8; off += 3) {
      Result r;
      r.op = "read_stream", r.variant = "read_stream", r.device = "cpu";
      r.shape = "bytes=" + std::to_string(n) + " offset=" + std::to_string(off);
      r.passed = read_stream(buf.data() + off, n) == read_stream_ref(buf.data() + off, n);
      if (!r.passed) r.note = "sum differs from the plain loop";
      results.push_back(r);
    }
  }
  return results;
}

}  // namespace qvl::parity
