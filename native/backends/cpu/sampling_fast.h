// The fast sampling path shared by the generic and AVX-512 variants. Only the passes over the
// whole vocabulary and the candidates' weights differ between them (plain comparisons, copies and
// IEEE divisions, exact in any ISA; the weights equal sampling_weight's bit for bit, see
// weights_avx512); everything after that is plain C++ over the candidates.
#pragma once
#include <cstdint>

#include "ops/sampling.h"

namespace qvl::cpu {

struct SamplingScan {
  // s[i] = x[i] / t for all i (t > 0; t == 1 copies). Returns the first i with x[i] NaN, or -1.
  int64_t (*scale)(const float* x, int64_t n, float t, float* s);
  // Largest value of s (no NaN in s).
  float (*max)(const float* s, int64_t n);
  // First i with s[i] == v, or n.
  int64_t (*find)(const float* s, int64_t n, float v);
  // The k-th largest value of s counting repeats, 1 <= k < n.
  float (*kth_largest)(const float* s, int64_t n, int64_t k);
  // Writes the ids i with s[i] >= lo in ascending order and their scores; returns how many. ids
  // and vals hold n + 16 (a variant may write whole vectors past the count).
  int64_t (*gather_ge)(const float* s, int64_t n, float lo, int32_t* ids, float* vals);
  // q[j] = sampling_weight(v[j], m) for j < n, bit for bit (m >= every v[j]).
  void (*weights)(const float* v, int64_t n, float m, uint64_t* q);
};

// The scans of each variant, for the parity cases of their parts (tests/parity_sampling.cpp).
const SamplingScan& sampling_scan_generic();
const SamplingScan& sampling_scan_avx512();

int32_t sample_fast(const ops::SampleArgs& a, ops::SamplingRng& rng, const SamplingScan& scan);

// Generic heap selection, shared by the variants for large k.
float kth_largest_nth_element(const float* s, int64_t n, int64_t k);

}  // namespace qvl::cpu
