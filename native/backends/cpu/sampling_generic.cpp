// Portable scans for the fast sampling path.
#include <algorithm>
#include <functional>
#include <vector>

#include "backends/cpu/sampling_common.h"
#include "backends/cpu/sampling_fast.h"

namespace qvl::cpu {

namespace {

int64_t scale_generic(const float* x, int64_t n, float t, float* s) {
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] != x[i]) return i;
    s[i] = x[i] / t;
  }
  return -1;
}

float max_generic(const float* s, int64_t n) {
  float m = s[0];
  for (int64_t i = 1; i < n; ++i) m = s[i] > m ? s[i] : m;
  return m;
}

int64_t find_generic(const float* s, int64_t n, float v) {
  for (int64_t i = 0; i < n; ++i) if (s[i] == v) return i;
  return n;
}

// A min-heap of the k largest values seen so far; its top is the running threshold. Values equal
// to the top need not enter: they leave the multiset of the k largest unchanged.
float kth_largest_generic(const float* s, int64_t n, int64_t k) {
  if (k > 4096) return kth_largest_nth_element(s, n, k);
  std::vector<float> heap(s, s + k);
  std::make_heap(heap.begin(), heap.end(), std::greater<float>());
  for (int64_t i = k; i < n; ++i) {
    if (s[i] > heap.front()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<float>());
      heap.back() = s[i];
      std::push_heap(heap.begin(), heap.end(), std::greater<float>());
    }
  }
  return heap.front();
}

int64_t gather_ge_generic(const float* s, int64_t n, float lo, int32_t* ids, float* vals) {
  int64_t c = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (s[i] >= lo) ids[c] = static_cast<int32_t>(i), vals[c++] = s[i];
  }
  return c;
}

void weights_generic(const float* v, int64_t n, float m, uint64_t* q) {
  for (int64_t j = 0; j < n; ++j) q[j] = sampling_weight(v[j], m);
}

const SamplingScan kGeneric = {scale_generic, max_generic, find_generic, kth_largest_generic, gather_ge_generic, weights_generic};

}  // namespace

const SamplingScan& sampling_scan_generic() { return kGeneric; }

int32_t sampling_generic(const ops::SampleArgs& a, ops::SamplingRng& rng) { return sample_fast(a, rng, kGeneric); }

}  // namespace qvl::cpu
