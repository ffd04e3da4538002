// The exact arithmetic every sampling variant shares (see ops/sampling.h): the fixed-point
// probability weight of a score and the draw. Plain C++ in no ISA-attributed function, so the
// compiler can never contract or vectorise it differently in one variant than in another.
#pragma once
#include <cmath>
#include <cstdint>

#include "ops/sampling.h"

namespace qvl::cpu {

constexpr double kSamplingOne = 1099511627776.0;  // 2^40: the weight of the best token
constexpr uint64_t kSamplingOneU = 1ull << 40;

// round(exp(s - m) * 2^40); m is the row's maximum score. Beyond a gap of 29 the weight rounds to 0
// (exp(-29) * 2^40 < 0.3): the early return only skips the exp. Exact ties with m (including
// +inf == +inf and an all -inf row) weigh 2^40.
inline uint64_t sampling_weight(float s, float m) {
  if (s == m) return kSamplingOneU;
  const double d = static_cast<double>(m) - static_cast<double>(s);
  if (!(d <= 29.0)) return 0;
  return static_cast<uint64_t>(std::llround(std::exp(-d) * kSamplingOne));
}

// A uniform integer in [0, total) from one RNG output: floor(r * total / 2^64).
inline uint64_t sampling_pick(ops::SamplingRng& rng, uint64_t total) {
  const unsigned __int128 r = static_cast<unsigned __int128>(ops::sampling_rng_next(rng)) * total;
  return static_cast<uint64_t>(r >> 64);
}

}  // namespace qvl::cpu
