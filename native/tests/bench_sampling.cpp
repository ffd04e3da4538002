// Timed next-token choice for `npm run bench`: one sampling variant over one logits row of the
// given vocabulary, with the RNG advancing from call to call as a decode loop advances it.
#include <algorithm>
#include <chrono>
#include <vector>

#include "core/error.h"
#include "ops/sampling.h"
#include "tests/bench.h"

namespace qvl::bench {

namespace {

// Logits shaped like a language model's: most of the vocabulary spread over about ±10 and, for
// "peaked", a dozen tokens 8 to 20 above it (a confident step); "flat" has no such head, so the
// top-p nucleus holds a large part of the vocabulary.
std::vector<float> bench_logits(int64_t vocab, const std::string& row) {
  std::vector<float> lg(static_cast<size_t>(vocab));
  fill_values(lg.data(), lg.size(), 11);
  for (float& v : lg) v *= 6.0f;
  if (row == "peaked") {
    for (int64_t j = 0; j < 12 && j < vocab; ++j) lg[static_cast<size_t>((j * 7919) % vocab)] = 30.0f - static_cast<float>(j);
  } else {
    QVL_CHECK(row == "flat", Input, "benchSampling: row must be 'flat' or 'peaked' (got '" + row + "')");
  }
  return lg;
}

}  // namespace

double sampling_seconds(const SamplingCase& c) {
  QVL_CHECK(c.vocab >= 1 && c.vocab <= (int64_t{1} << 24), Input, "benchSampling: vocab must be in [1, 2^24]");
  QVL_CHECK(c.iters >= 1 && c.iters <= 100000, Input, "benchSampling: iters must be in [1, 100000]");
  const auto& variant = find_variant(ops::sampling_family(), c.variant, "benchSampling");
  const std::vector<float> lg = bench_logits(c.vocab, c.row);
  ops::SampleArgs a;
  a.logits = lg.data();
  a.vocab = c.vocab;
  a.params = c.params;
  ops::check_sampling(a);
  ops::SamplingRng rng = ops::sampling_rng(5);
  int64_t sink = variant.fn(a, rng);  // warm-up (the fast path's buffers grow here)
  double best = 1e30;
  for (int i = 0; i < c.iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    sink += variant.fn(a, rng);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return sink == -1 ? best * 1.0000001 : best;  // the branch keeps the results alive
}

}  // namespace qvl::bench
