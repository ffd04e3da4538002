#include "ops/sampling.h"

#include "ops/backends.h"
#include "ops/backends.h"

#include <cmath>
#include <limits>
#include <string>

namespace qvl::ops {

const OpFamily<SampleFn>& sampling_family() {
  static const OpFamily<SampleFn> family("sampling", QVL_BACKEND_VARIANTS(sampling));
  return family;
}

SamplingRng sampling_rng(uint64_t seed) {
  SamplingRng r;
  uint64_t x = seed;
  for (uint64_t& s : r.s) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    s = z ^ (z >> 31);
  }
  return r;
}

uint64_t sampling_rng_next(SamplingRng& rng) {
  uint64_t* s = rng.s;
  auto rotl = [](uint64_t v, int k) { return (v << k) | (v >> (64 - k)); };
  const uint64_t result = rotl(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

void check_sampling(const SampleArgs& a) {
  const SamplingParams& p = a.params;
  QVL_CHECK(a.vocab >= 1 && a.vocab <= std::numeric_limits<int32_t>::max(), Input,
            "sampling: vocab must be in [1, 2^31) (got " + std::to_string(a.vocab) + ")");
  QVL_CHECK(a.logits, Input, "sampling: logits is null");
  QVL_CHECK(std::isfinite(p.temperature) && p.temperature >= 0, Input,
            "sampling: temperature must be finite and >= 0 (got " + std::to_string(p.temperature) + ")");
  QVL_CHECK(p.top_k >= 0, Input, "sampling: top_k must be >= 0 (got " + std::to_string(p.top_k) + ")");
  QVL_CHECK(p.top_p > 0 && p.top_p <= 1, Input, "sampling: top_p must be in (0, 1] (got " + std::to_string(p.top_p) + ")");
  QVL_CHECK(p.min_p >= 0 && p.min_p <= 1, Input, "sampling: min_p must be in [0, 1] (got " + std::to_string(p.min_p) + ")");
  QVL_CHECK(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0, Input,
            "sampling: repetition_penalty must be finite and > 0 (got " + std::to_string(p.repetition_penalty) + ")");
  QVL_CHECK(a.n_seen >= 0, Input, "sampling: n_seen must be >= 0");
  QVL_CHECK(a.n_seen == 0 || a.seen_ids, Input, "sampling: seen_ids is null");
  for (int64_t i = 0; i < a.n_seen; ++i) {
    QVL_CHECK(a.seen_ids[i] >= 0 && a.seen_ids[i] < a.vocab, Input,
              "sampling: seen_ids[" + std::to_string(i) + "] = " + std::to_string(a.seen_ids[i]) + " is outside [0, " +
                  std::to_string(a.vocab) + ")");
  }
}

int32_t sample_token(const SampleArgs& a, SamplingRng& rng) {
  check_sampling(a);
  return sampling_family().best().fn(a, rng);
}

int32_t argmax_token(const float* logits, int64_t vocab) {
  SampleArgs a;
  a.logits = logits;
  a.vocab = vocab;
  SamplingRng unused{};
  return sample_token(a, unused);
}

}  // namespace qvl::ops
