// Sampling without sorting the vocabulary. Only tokens with a nonzero weight can matter (a weight
// of 0 never wins the draw, and top-p, which ranks by score, reaches them only after the whole
// mass), and those are the scores within ~29 of the maximum; top-k narrows that further to the
// scores >= its threshold, found with a k-sized heap. The candidates are gathered in id order with
// their exact weights, the top-p cut is found by a radix selection on the ranking key (a sort
// only when top-k left a few hundred candidates at most), and the draw walks the candidates in id
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

namespace {

// The reference's ranking as one key: (rank_u(score), id) ascending = score descending, then id
// ascending. rank_u is the float's order-preserving bit pattern, inverted; + 0.0f folds -0 into +0,
// which compare equal as floats (scores are never NaN).
inline uint32_t rank_u(float v) {
  uint32_t u;
  v += 0.0f;
  std::memcpy(&u, &v, 4);
  const uint32_t mono = (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // ascending with v
  return ~mono;
}

// Where top-p cuts the ranking: every candidate ranked at or before (u, id) is kept; mass is the
// weight of those.
struct NucleusCut {
  uint32_t u = UINT32_MAX;
  int32_t id = INT32_MAX;
  uint64_t mass = 0;
};

// The reference keeps, in rank order, each candidate whose preceding mass m_before satisfies
// (double)m_before < limit. m_before only grows along the ranking and the conversion to double is
// monotone, so the kept set is a prefix and its last member is the cut. A radix selection finds it
// without ordering anything: bucket the candidates by the top 12 bits of u and sum each bucket's
// weight; buckets follow the ranking, so the first bucket whose running mass through its end
// reaches the limit holds the cut: an earlier bucket's members have m_before at most its own
// running mass, which is below the limit (kept whole), a later one's at least that bucket's, which
// is not (dropped whole). The same on
// that bucket's members by the next 12 bits, then the last 8; the members left share u, so their
// ranking is id order, the order they are stored in, and the reference's test runs on them one by
// one. Masses are exact integers, so every comparison is the reference's.
NucleusCut nucleus_cut(const uint32_t* us, const int32_t* ids, const uint64_t* q, int64_t n, double limit,
                       std::vector<int32_t>& members, std::vector<int32_t>& next) {
  uint64_t base = 0;  // mass of the ranks before the current bucket
  // The reference's test, one candidate after another, on members in rank order after `base`.
  auto walk = [&] {
    NucleusCut cut;
    for (const int32_t j : members) {
      if (!(static_cast<double>(base) < limit)) break;
      base += q[j];
      cut.u = us[j];
      cut.id = ids[j];
    }
    cut.mass = base;
    return cut;
  };
  if (n <= 256) {
    // Few candidates (top-k did the narrowing): ranking them costs less than the 8,448 buckets'
    // set-up and scans. Candidates are in id order, so (u, index) order is the ranking.
    members.resize(static_cast<size_t>(n));
    std::iota(members.begin(), members.end(), 0);
    std::sort(members.begin(), members.end(), [&](int32_t x, int32_t y) { return us[x] < us[y] || (us[x] == us[y] && x < y); });
    return walk();
  }
  uint64_t hist[4096];
  // Finds the bucket holding the cut from hist (the first whose running mass reaches the limit)
  // and adds the mass of the buckets before it to base.
  auto crossing = [&](uint32_t buckets) {
    uint32_t b = 0;
    for (; b + 1 < buckets; ++b) {
      if (static_cast<double>(base + hist[b]) >= limit) break;
      base += hist[b];
    }
    return b;
  };
  std::fill(hist, hist + 4096, 0);
  for (int64_t j = 0; j < n; ++j) hist[us[j] >> 20] += q[j];
  uint32_t b = crossing(4096);
  members.clear();
  for (int64_t j = 0; j < n; ++j) if ((us[j] >> 20) == b) members.push_back(static_cast<int32_t>(j));
  for (const auto& [shift, buckets] : {std::pair<int, uint32_t>{8, 4096}, {0, 256}}) {
    std::fill(hist, hist + buckets, 0);
    for (const int32_t j : members) hist[(us[j] >> shift) & (buckets - 1)] += q[j];
    b = crossing(buckets);
    next.clear();
    for (const int32_t j : members) if (((us[j] >> shift) & (buckets - 1)) == b) next.push_back(j);
    members.swap(next);
  }
  // Every member has the same u, in id order; the first always passes ((double)base < limit: the
  // buckets before it did not reach the limit, and limit > 0).
  return walk();
}

}  // namespace

int32_t sample_fast(const ops::SampleArgs& a, ops::SamplingRng& rng, const SamplingScan& scan) {
  const int64_t V = a.vocab;
  const ops::SamplingParams& p = a.params;
  const bool greedy = !p.do_sample || p.temperature == 0.0f;
  const float t = greedy ? 1.0f : p.temperature;

  thread_local std::vector<float> sbuf, vals;
  thread_local std::vector<int32_t> ids;
  thread_local std::vector<uint32_t> us;
  thread_local std::vector<uint64_t> qs;
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
  ids.resize(static_cast<size_t>(V) + 16);
  vals.resize(static_cast<size_t>(V) + 16);
  const int64_t nc = scan.gather_ge(s, V, lo, ids.data(), vals.data());
  qs.resize(static_cast<size_t>(nc));
  scan.weights(vals.data(), nc, m, qs.data());

  uint64_t total = 0;
  us.resize(static_cast<size_t>(nc));
  for (int64_t j = 0; j < nc; ++j) total += qs[j], us[j] = rank_u(vals[j]);

  // The survivors: ranked at or before the top-p cut, with q >= the min-p threshold.
  NucleusCut cut;
  uint64_t kept = total;
  if (p.top_p < 1.0f) {
    thread_local std::vector<int32_t> members, next;
    cut = nucleus_cut(us.data(), ids.data(), qs.data(), nc, static_cast<double>(p.top_p) * static_cast<double>(total),
                      members, next);
    kept = cut.mass;
  }
  const double thr = static_cast<double>(p.min_p) * kSamplingOne;
  auto survives = [&](int64_t j) {
    const uint32_t u = us[j];
    return (u < cut.u || (u == cut.u && ids[j] <= cut.id)) && static_cast<double>(qs[j]) >= thr;
  };
  if (p.min_p > 0.0f) {
    kept = 0;
    for (int64_t j = 0; j < nc; ++j) if (survives(j)) kept += qs[j];
  }

  const uint64_t u = sampling_pick(rng, kept);
  uint64_t acc = 0;
  for (int64_t j = 0; j < nc; ++j) {
    if (qs[j] == 0 || !survives(j)) continue;
    acc += qs[j];
    if (acc > u) return ids[j];
  }
  fail(ErrorCode::Native, "sampling: the draw fell outside the distribution");
}

}  // namespace qvl::cpu
