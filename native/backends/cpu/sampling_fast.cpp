// Sampling without sorting the vocabulary. Only tokens with a nonzero weight can matter (a weight
// of 0 never wins the draw, and top-p, which ranks by score, reaches them only after the whole mass),
// and those are the scores within ~29 of the maximum; top-k narrows that further to the scores
// >= its threshold, found with a k-sized heap. The candidates are gathered in id order, the top-p
// prefix is found by a weighted quickselect (no sort at all), and the draw walks the candidates in id
// order, exactly as the reference walks the whole row.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "backends/cpu/sampling_common.h"
#include "backends/cpu/sampling_fast.h"
#include "core/error.h"

namespace qvl::cpu {

float kth_largest_nth_element(const float* s, int64_t n, int64_t k) {
  std::vector<float> tmp(s, s + n);
  std::nth_element(tmp.begin(), tmp.begin() + (k - 1), tmp.end(), [](float x, float y) { return x > y; });
  return tmp[k - 1];
}

int32_t sample_fast(const ops::SampleArgs& a, ops::SamplingRng& rng, const SamplingScan& scan) {
  const int64_t V = a.vocab;
  const ops::SamplingParams& p = a.params;
  const bool greedy = !p.do_sample || p.temperature == 0.0f;
  const float t = greedy ? 1.0f : p.temperature;

  thread_local std::vector<float> sbuf;
  thread_local std::vector<int32_t> ids;
  sbuf.resize(static_cast<size_t>(V));
  float* s = sbuf.data();
  const int64_t nan_at = scan.scale(a.logits, V, t, s);
  if (nan_at >= 0) fail(ErrorCode::Input, "sampling: logits[" + std::to_string(nan_at) + "] is NaN");
  if (p.repetition_penalty != 1.0f) {
    // Recomputed from the logit, so a repeated id is penalised once.
    const float pen = p.repetition_penalty;
    for (int64_t i = 0; i < a.n_seen; ++i) {
      const int32_t id = a.seen_ids[i];
      const float x = a.logits[id];
      s[id] = (x < 0 ? x * pen : x / pen) / t;
    }
  }
  const float m = scan.max(s, V);
  if (greedy) return static_cast<int32_t>(scan.find(s, V, m));

  // Every score with a nonzero weight is >= fl(m - 30) (rounding is monotone, and such a score
  // is >= m - 29).
  float lo = m - 30.0f;
  if (p.top_k > 0 && p.top_k < V) lo = std::max(lo, scan.kth_largest(s, V, p.top_k));
  ids.resize(static_cast<size_t>(V));
  const int64_t nc = scan.gather_ge(s, V, lo, ids.data());

  // Candidates in id order, each with a rank key: ascending key = descending score, then ascending
  // id (the reference's ranking; + 0.0f folds -0 into +0, which compare equal as floats).
  struct Cand {
    uint64_t key, q;
  };
  auto rank_key = [](float v, int32_t id) {
    uint32_t u;
    v += 0.0f;
    std::memcpy(&u, &v, 4);
    const uint32_t mono = (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // ascending with v
    return (static_cast<uint64_t>(~mono) << 32) | static_cast<uint32_t>(id);
  };
  thread_local std::vector<Cand> cand;
  cand.clear();
  uint64_t total = 0;
  for (int64_t j = 0; j < nc; ++j) {
    const int32_t i = ids[j];
    const uint64_t q = sampling_weight(s[i], m);
    if (q == 0) continue;
    cand.push_back({rank_key(s[i], i), q});
    total += q;
  }
  const int64_t n = static_cast<int64_t>(cand.size());

  // Top-p and min-p each keep a prefix of the ranking (the running mass only grows, the weights
  // only shrink along it), so the survivors are the candidates with key <= last.
  uint64_t last = UINT64_MAX;
  if (p.top_p < 1.0f) {
    const double limit = static_cast<double>(p.top_p) * static_cast<double>(total);
    // Prefilter: {q >= 2^b} is a prefix of the ranking; once its mass reaches the limit, nothing
    // ranked after it can be kept. One pass for the mass per power of two, one to compact.
    uint64_t mass[41] = {};
    for (const Cand& c : cand) mass[63 - __builtin_clzll(c.q)] += c.q;
    int b = 40;
    for (uint64_t acc = 0; b > 0; --b) {
      acc += mass[b];
      if (static_cast<double>(acc) >= limit) break;
    }
    thread_local std::vector<Cand> work;
    work.clear();
    for (const Cand& c : cand) if (c.q >> b) work.push_back(c);
    // The last candidate whose preceding mass is < limit, by a weighted quickselect: split the
    // unsettled ranks [lo, hi) at their median; the mass ranked before it decides which half holds
    // the cut. Integer masses make the decision at each candidate the reference's, exactly.
    auto by_key = [](const Cand& x, const Cand& y) { return x.key < y.key; };
    int64_t lo = 0, hi = static_cast<int64_t>(work.size());
    uint64_t mass_before = 0;  // of the ranks before lo
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      std::nth_element(work.begin() + lo, work.begin() + mid, work.begin() + hi, by_key);
      uint64_t left = 0;
      for (int64_t j = lo; j < mid; ++j) left += work[j].q;
      if (static_cast<double>(mass_before + left) < limit) {
        mass_before += left + work[mid].q;
        last = work[mid].key;
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
  }
  if (p.min_p > 0.0f) {
    // The lowest-ranked candidate with q >= thr (the best one always qualifies).
    const double thr = static_cast<double>(p.min_p) * kSamplingOne;
    uint64_t mlast = 0;
    for (const Cand& c : cand) if (static_cast<double>(c.q) >= thr && c.key > mlast) mlast = c.key;
    last = std::min(last, mlast);
  }
  uint64_t kept = 0;
  for (const Cand& c : cand) if (c.key <= last) kept += c.q;

  const uint64_t u = sampling_pick(rng, kept);
  uint64_t acc = 0;
  for (int64_t c = 0; c < n; ++c) {
    if (cand[c].key > last) continue;
    acc += cand[c].q;
    if (acc > u) return static_cast<int32_t>(cand[c].key & 0xffffffffu);
  }
  fail(ErrorCode::Native, "sampling: the draw fell outside the distribution");
}

}  // namespace qvl::cpu
