// Plain sampling: every processor over the whole vocabulary, one full sort for the ranking,
// written to read like the definitions in ops/sampling.h.
#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "backends/cpu/sampling_common.h"
#include "core/error.h"

namespace qvl::cpu {

int32_t sampling_ref(const ops::SampleArgs& a, ops::SamplingRng& rng) {
  const int64_t V = a.vocab;
  const ops::SamplingParams& p = a.params;
  for (int64_t i = 0; i < V; ++i) {
    if (std::isnan(a.logits[i])) fail(ErrorCode::Input, "sampling: logits[" + std::to_string(i) + "] is NaN");
  }
  std::vector<float> s(a.logits, a.logits + V);

  if (p.repetition_penalty != 1.0f) {
    std::vector<bool> seen(static_cast<size_t>(V), false);
    for (int64_t i = 0; i < a.n_seen; ++i) seen[a.seen_ids[i]] = true;
    for (int64_t i = 0; i < V; ++i) {
      if (seen[i]) s[i] = s[i] < 0 ? s[i] * p.repetition_penalty : s[i] / p.repetition_penalty;
    }
  }

  if (!p.do_sample || p.temperature == 0.0f) {
    int64_t best = 0;
    for (int64_t i = 1; i < V; ++i) if (s[i] > s[best]) best = i;
    return static_cast<int32_t>(best);
  }

  if (p.temperature != 1.0f) for (float& v : s) v /= p.temperature;
  const float m = *std::max_element(s.begin(), s.end());
  std::vector<uint64_t> q(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; ++i) q[i] = sampling_weight(s[i], m);
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return s[x] > s[y] || (s[x] == s[y] && x < y); });
  std::vector<char> keep(static_cast<size_t>(V), 1);

  if (p.top_k > 0 && p.top_k < V) {
    const float kth = s[order[p.top_k - 1]];
    for (int64_t i = 0; i < V; ++i) if (s[i] < kth) keep[i] = 0;
  }
  if (p.top_p < 1.0f) {
    uint64_t total = 0;
    for (int64_t i = 0; i < V; ++i) if (keep[i]) total += q[i];
    const double limit = static_cast<double>(p.top_p) * static_cast<double>(total);
    uint64_t cum = 0;
    for (int32_t i : order) {
      if (!keep[i]) continue;
      if (static_cast<double>(cum) < limit) {
        cum += q[i];
      } else {
        keep[i] = 0;
      }
    }
  }
  if (p.min_p > 0.0f) {
    const double thr = static_cast<double>(p.min_p) * kSamplingOne;
    for (int64_t i = 0; i < V; ++i) if (keep[i] && static_cast<double>(q[i]) < thr) keep[i] = 0;
  }

  uint64_t total = 0;
  for (int64_t i = 0; i < V; ++i) if (keep[i]) total += q[i];
  const uint64_t u = sampling_pick(rng, total);
  uint64_t acc = 0;
  for (int64_t i = 0; i < V; ++i) {
    if (!keep[i]) continue;
    acc += q[i];
    if (acc > u) return static_cast<int32_t>(i);
  }
  fail(ErrorCode::Native, "sampling: the draw fell outside the distribution");
}

}  // namespace qvl::cpu
