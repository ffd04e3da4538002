// Sampling parity: the fast variants must choose exactly the reference's token from the same RNG
// state, and leave the RNG in the same state, over random rows (ties, -inf, +inf, flat rows, the
// full 151936 vocabulary) and many parameter sets. Plus: hand-checked semantics (penalty, top-k
// ties, greedy ties), parameter validation, and the reference's draw frequencies against the
// probabilities they should follow.
#include <cmath>
#include <cstring>
#include <algorithm>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "backends/cpu/sampling_common.h"
#include "backends/cpu/sampling_fast.h"
#include "core/error.h"
#include "ops/sampling.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

using ops::SampleArgs;
using ops::SamplingParams;
using ops::SamplingRng;

SamplingParams sp(bool sample, float t, int64_t k, float p, float minp, float pen) {
  SamplingParams s;
  s.do_sample = sample, s.temperature = t, s.top_k = k, s.top_p = p, s.min_p = minp, s.repetition_penalty = pen;
  return s;
}

std::vector<SamplingParams> param_sets(int64_t V) {
  return {
      sp(false, 1, 0, 1, 0, 1),        sp(false, 0.7f, 20, 0.8f, 0, 1.3f), sp(true, 1, 0, 1, 0, 1),
      sp(true, 0.7f, 20, 0.8f, 0, 1),  sp(true, 0.7f, 20, 1, 0, 1),        sp(true, 1, 0, 0.9f, 0, 1),
      sp(true, 1, 0, 0.01f, 0, 1),     sp(true, 1.3f, 0, 0.999f, 0, 1),    sp(true, 1, 0, 1, 0.05f, 1),
      sp(true, 1, 0, 1, 1.0f, 1),      sp(true, 1, 1, 1, 0, 1),            sp(true, 1, V > 1 ? V - 1 : 1, 1, 0, 1),
      sp(true, 1, V + 5, 0.5f, 0, 1),  sp(true, 0, 20, 0.8f, 0, 1),        sp(true, 1e-3f, 0, 1, 0, 1),
      sp(true, 5, 0, 0.95f, 0, 1),     sp(true, 1, 0, 1, 0, 1.3f),         sp(true, 0.8f, 40, 0.7f, 0, 0.7f),
      sp(true, 1.2f, 50, 0.95f, 0.02f, 1.1f), sp(true, 0.6f, 5000, 0.97f, 0.001f, 1.05f),
      // top-p alone at its extremes (the nucleus is the best token; all but a sliver of the mass),
      // and with min-p on top of it.
      sp(true, 1, 0, 1e-6f, 0, 1),     sp(true, 0.9f, 0, 0.99999994f, 0, 1), sp(true, 0.8f, 0, 0.6f, 0.2f, 1),
      sp(true, 2, 0, 0.3f, 0, 1),
  };
}

// Row kinds: awkward value distributions for ranking, ties and the weight cut-off.
std::vector<float> make_row(Rng& rng, int64_t V, int kind) {
  std::vector<float> r(static_cast<size_t>(V));
  for (float& v : r) v = rng.normal() * 3.0f;
  switch (kind) {
    case 1:  // coarse values: many exact ties, also at the top
      for (float& v : r) v = std::round(v * 2.0f) / 2.0f;
      break;
    case 2:  // masked tokens
      for (float& v : r) if (rng.uniform() < 0.3) v = -INFINITY;
      break;
    case 3:  // flat
      for (float& v : r) v = 0.5f;
      break;
    case 4:  // +inf entries
      r[static_cast<size_t>(rng.range(0, V - 1))] = INFINITY;
      r[static_cast<size_t>(rng.range(0, V - 1))] = INFINITY;
      break;
    case 5:  // large scores: s / 1e-3 overflows, differences beyond the weight cut-off
      for (float& v : r) v *= 1e36f;
      break;
    case 6:  // all -inf
      for (float& v : r) v = -INFINITY;
      break;
    case 7:  // narrow: a lot of the vocabulary within the weight window
      for (float& v : r) v *= 0.05f;
      break;
    case 8:  // peaked: a few tokens far above a flat rest, as in a confident decode step
      for (float& v : r) v *= 0.5f;
      for (int j = 0; j < 5; ++j) r[static_cast<size_t>(rng.range(0, V - 1))] = 12.0f - 1.5f * static_cast<float>(j);
      break;
    case 9:  // dense: scores a few thousand ulps apart with repeats, so that the top-p cut is
             // found among equal exponents and leading mantissa bits (and equal scores)
      for (float& v : r) {
        uint32_t bits;
        v = 3.0f;
        std::memcpy(&bits, &v, 4);
        bits -= static_cast<uint32_t>(rng.range(0, V < 64 ? 3 : 20000));
        std::memcpy(&v, &bits, 4);
      }
      break;
    default: break;
  }
  return r;
}

const char* kind_name(int kind) {
  static const char* names[] = {"normal", "ties", "-inf", "flat", "+inf", "huge", "all -inf", "narrow", "peaked", "dense"};
  return names[kind];
}

bool throws_input(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code() == ErrorCode::Input;
  }
  return false;
}

bool same_rng(const SamplingRng& a, const SamplingRng& b) {
  for (int i = 0; i < 4; ++i) if (a.s[i] != b.s[i]) return false;
  return true;
}

Result semantics(const ops::Variant<ops::SampleFn>& v) {
  Result r;
  r.op = "sampling";
  r.variant = v.name;
  r.device = device_name(v.device);
  r.shape = "hand-checked semantics";
  auto bad = [&](const std::string& what) {
    if (r.passed) r.note = what;
    r.passed = false;
  };
  SamplingRng rng = ops::sampling_rng(7);
  auto run = [&](const std::vector<float>& lg, SamplingParams p, const std::vector<int32_t>& seen = {}) {
    SampleArgs a;
    a.logits = lg.data(), a.vocab = static_cast<int64_t>(lg.size());
    a.seen_ids = seen.data(), a.n_seen = static_cast<int64_t>(seen.size());
    a.params = p;
    ops::check_sampling(a);
    return v.fn(a, rng);
  };
  auto tally = [&](int* h, const std::vector<float>& lg, SamplingParams p) {
    const int32_t id = run(lg, p);
    if (id < 0 || id >= static_cast<int32_t>(lg.size())) {
      bad("token id out of range");
    } else {
      ++h[id];
    }
  };
  try {
    if (run({0, 5, 5, 1}, SamplingParams{}) != 1) bad("greedy tie must pick the first max");
    if (run({-1, -0.0f, 0.0f}, SamplingParams{}) != 1) bad("greedy: -0 and +0 tie, first wins");
    if (run({2, -2, 1.5f}, SamplingParams{}) != 0) bad("greedy without penalty");
    // Penalty 2 on ids {0, 1} (0 twice: once only): [1, -4, 1.5] -> 2.
    if (run({2, -2, 1.5f}, sp(false, 1, 0, 1, 0, 2), {0, 1, 0}) != 2) bad("repetition penalty");
    if (run({2, -2, 1.5f}, sp(true, 0, 0, 1, 0, 2), {0, 1, 0}) != 2) bad("temperature 0 -> greedy with penalty");
    // top_k = 1 keeps both tied maxima and nothing else.
    int hits[4] = {0, 0, 0, 0};
    for (int i = 0; i < 400; ++i) tally(hits, {1, 3, 3, 2}, sp(true, 1, 1, 1, 0, 1));
    if (hits[0] || hits[3] || hits[1] < 120 || hits[2] < 120) bad("top_k must keep exactly the tied maxima");
    // top_p = 0.85 over p = [.5 .3 .15 .05] keeps three tokens (mass before the 4th: .95).
    const std::vector<float> lg4 = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
    int h4[4] = {0, 0, 0, 0};
    for (int i = 0; i < 400; ++i) tally(h4, lg4, sp(true, 1, 0, 0.85f, 0, 1));
    if (h4[3] || !h4[2]) bad("top_p keeps the smallest prefix reaching top_p");
    // min_p = 0.4: p/p_max = [1, .6, .3, .1] keeps two.
    int h5[4] = {0, 0, 0, 0};
    for (int i = 0; i < 400; ++i) tally(h5, lg4, sp(true, 1, 0, 1, 0.4f, 1));
    if (h5[2] || h5[3] || !h5[1]) bad("min_p keeps p >= min_p * p_max");
    for (SamplingParams p : {sp(false, 1, 0, 1, 0, 1), sp(true, 0.7f, 20, 0.8f, 0, 1)}) {
      if (!throws_input([&] { run({0, NAN, 1}, p); })) bad("a NaN logit must be E_INPUT");
    }
    if (!throws_input([&] { run({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, NAN}, SamplingParams{}); }))
      bad("a NaN logit in the vector tail must be E_INPUT");
  } catch (const std::exception& e) {
    bad(std::string("threw ") + e.what());
  }
  return r;
}

Result validation() {
  Result r;
  r.op = "sampling";
  r.variant = "checks";
  r.shape = "E_INPUT on bad parameters and ids";
  std::vector<float> lg = {0, 1, 2};
  std::vector<int32_t> seen = {0, 3};
  const std::vector<std::pair<const char*, std::function<void(SampleArgs&)>>> cases = {
      {"temperature<0", [](SampleArgs& a) { a.params.temperature = -0.5f; }},
      {"temperature NaN", [](SampleArgs& a) { a.params.temperature = NAN; }},
      {"temperature inf", [](SampleArgs& a) { a.params.temperature = INFINITY; }},
      {"top_p=0", [](SampleArgs& a) { a.params.top_p = 0; }},
      {"top_p>1", [](SampleArgs& a) { a.params.top_p = 1.5f; }},
      {"top_k<0", [](SampleArgs& a) { a.params.top_k = -1; }},
      {"min_p<0", [](SampleArgs& a) { a.params.min_p = -0.1f; }},
      {"min_p>1", [](SampleArgs& a) { a.params.min_p = 1.01f; }},
      {"penalty=0", [](SampleArgs& a) { a.params.repetition_penalty = 0; }},
      {"penalty<0", [](SampleArgs& a) { a.params.repetition_penalty = -1; }},
      {"seen id = V", [&](SampleArgs& a) { a.seen_ids = seen.data(), a.n_seen = 2; }},
      {"seen id < 0", [&](SampleArgs& a) { seen[1] = -1, a.seen_ids = seen.data(), a.n_seen = 2; }},
      {"vocab 0", [](SampleArgs& a) { a.vocab = 0; }},
      {"null logits", [](SampleArgs& a) { a.logits = nullptr; }},
  };
  SampleArgs ok;
  ok.logits = lg.data(), ok.vocab = 3;
  ok.params = sp(true, 0.7f, 2, 0.9f, 0.1f, 1.2f);
  SamplingRng rng = ops::sampling_rng(1);
  if (throws_input([&] { ops::sample_token(ok, rng); })) r.passed = false, r.note = "a valid call was rejected";
  for (const auto& [name, mutate] : cases) {
    SampleArgs a = ok;
    mutate(a);
    if (!throws_input([&] { ops::sample_token(a, rng); })) {
      r.passed = false;
      r.note += std::string(r.note.empty() ? "" : "; ") + "not rejected: " + name;
    }
  }
  if (ops::argmax_token(lg.data(), 3) != 2) r.passed = false, r.note += "; argmax_token";
  return r;
}

// The reference's draws follow the distribution: counts within 5 sigma of n·p for every token.
Result frequencies() {
  Result r;
  r.op = "sampling";
  r.variant = "reference";
  r.shape = "draw frequencies, V=6, 200000 draws";
  const std::vector<float> lg = {1.0f, 0.2f, -0.5f, 2.0f, 2.0f, -3.0f};
  const auto& ref = ops::sampling_family().reference();
  SampleArgs a;
  a.logits = lg.data(), a.vocab = 6;
  a.params = sp(true, 1.5f, 0, 1, 0, 1);
  double z = 0, p[6];
  for (int i = 0; i < 6; ++i) z += (p[i] = std::exp(lg[i] / 1.5));
  const int n = 200000;
  int count[6] = {0, 0, 0, 0, 0, 0};
  SamplingRng rng = ops::sampling_rng(99);
  for (int i = 0; i < n; ++i) ++count[ref.fn(a, rng)];
  for (int i = 0; i < 6; ++i) {
    const double e = n * p[i] / z, sd = std::sqrt(e * (1 - p[i] / z));
    const double dev = std::fabs(count[i] - e) / sd;
    r.max_abs_err = std::max(r.max_abs_err, dev);
    if (dev > 5) r.passed = false, r.note = "token " + std::to_string(i) + " off by " + std::to_string(dev) + " sigma";
  }
  r.tolerance = 5;
  return r;
}

// A fast variant's weight pass against sampling_weight itself, value by value: the draws above
// would almost never notice a weight off by one. Scores spread over the whole weight window, and
// crowded just below the best one, where the weight is near 2^40 and one lane in ~100 is too close
// to a half-integer for the fast exp to decide (std::exp decides those).
Result weights_parity(const ops::Variant<ops::SampleFn>& v, const cpu::SamplingScan& scan, Rng& rng) {
  Result r;
  r.op = "sampling";
  r.variant = v.name;
  r.device = device_name(v.device);
  r.shape = "weights of 4 x 2^19+7 scores against sampling_weight";
  const int64_t n = (int64_t{1} << 19) + 7;
  std::vector<float> vals(static_cast<size_t>(n));
  std::vector<uint64_t> q(static_cast<size_t>(n) + 8, 0x5a5a5a5a5a5a5a5aull);
  int64_t wrong = 0;
  for (const float m : {0.0f, 17.25f, -5.2f, 3.0e4f}) {
    for (int64_t i = 0; i < n; ++i) {
      const double d = i % 3 == 0 ? rng.uniform() * 31.0 : i % 3 == 1 ? rng.uniform() * 0.05 : 29.0 + (rng.uniform() - 0.5) * 1e-4;
      vals[static_cast<size_t>(i)] = static_cast<float>(m - d);
    }
    vals[0] = m;  // the best token
    scan.weights(vals.data(), n, m, q.data());
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t want = cpu::sampling_weight(vals[static_cast<size_t>(i)], m), got = q[static_cast<size_t>(i)];
      if (got != want) {
        if (wrong++ == 0) {
          r.note = "m=" + std::to_string(m) + " s=" + std::to_string(vals[static_cast<size_t>(i)]) + ": " +
                   std::to_string(got) + " vs " + std::to_string(want);
        }
        r.max_abs_err = std::max(r.max_abs_err, std::fabs(static_cast<double>(got) - static_cast<double>(want)));
      }
    }
    for (size_t i = static_cast<size_t>(n); i < q.size(); ++i) r.guards_ok &= q[i] == 0x5a5a5a5a5a5a5a5aull;
  }
  // The special rows: +inf best (ties weigh 2^40, the rest 0), all -inf.
  const std::vector<float> inf_row = {INFINITY, 1.0f, -INFINITY, INFINITY, -3.0f};
  scan.weights(inf_row.data(), 5, INFINITY, q.data());
  if (q[0] != cpu::kSamplingOneU || q[1] != 0 || q[2] != 0 || q[3] != cpu::kSamplingOneU || q[4] != 0) ++wrong, r.note += " +inf row";
  const std::vector<float> ninf_row = {-INFINITY, -INFINITY};
  scan.weights(ninf_row.data(), 2, -INFINITY, q.data());
  if (q[0] != cpu::kSamplingOneU || q[1] != cpu::kSamplingOneU) ++wrong, r.note += " all -inf row";
  if (wrong > 0) r.note = std::to_string(wrong) + " weights differ; first " + r.note;
  r.passed = wrong == 0 && r.guards_ok;
  return r;
}

}  // namespace

std::vector<Result> parity_sampling(uint64_t seed) {
  std::vector<Result> results;
  const auto& ref = ops::sampling_family().reference();
  const auto variants = ops::sampling_family().runnable();
  Rng rng(seed ^ 0x73616d70ull);
  struct RowCase { int64_t V; int kind; int draws; };
  const std::vector<RowCase> rows = {
      {1, 0, 4}, {2, 1, 6}, {7, 0, 8}, {17, 1, 8}, {17, 4, 4}, {33, 6, 4}, {100, 2, 8}, {1000, 0, 6},
      {1000, 3, 6}, {1000, 5, 4}, {4099, 1, 6}, {4099, 7, 6}, {151936, 0, 2}, {151936, 1, 2}, {151936, 7, 1},
      {3, 8, 6}, {4097, 8, 6}, {151936, 8, 2}, {5, 9, 6}, {6007, 9, 6}, {65537, 9, 2},
  };
  for (const RowCase& rc : rows) {
    const std::vector<float> lg = make_row(rng, rc.V, rc.kind);
    std::vector<int32_t> seen(static_cast<size_t>(std::min<int64_t>(rc.V, 40)));
    for (int32_t& id : seen) id = static_cast<int32_t>(rng.range(0, rc.V - 1));
    if (seen.size() > 2) seen[1] = seen[0];  // a repeated id
    // Seen ids include the best tokens so that the penalty changes the ranking.
    for (int64_t i = 0, n = 0; i < rc.V && n < 3; ++i) {
      if (lg[i] > 2.0f) seen.push_back(static_cast<int32_t>(i)), ++n;
    }
    const std::vector<SamplingParams> params = param_sets(rc.V);
    std::vector<Result> row_results;
    for (const auto& v : variants) {
      Result r;
      r.op = "sampling";
      r.variant = v.name;
      r.device = device_name(v.device);
      r.shape = "V=" + std::to_string(rc.V) + " " + kind_name(rc.kind) + ", " + std::to_string(params.size()) +
                " param sets x " + std::to_string(rc.draws) + " draws";
      r.tolerance = 0;
      row_results.push_back(r);
    }
    SamplingRng state = ops::sampling_rng(seed + static_cast<uint64_t>(rc.V) * 31 + rc.kind);
    for (size_t pi = 0; pi < params.size(); ++pi) {
      SampleArgs a;
      a.logits = lg.data(), a.vocab = rc.V;
      a.seen_ids = seen.data(), a.n_seen = static_cast<int64_t>(seen.size());
      a.params = params[pi];
      ops::check_sampling(a);
      for (int d = 0; d < rc.draws; ++d) {
        SamplingRng want_rng = state;
        const int32_t want = ref.fn(a, want_rng);
        for (size_t vi = 0; vi < variants.size(); ++vi) {
          SamplingRng got_rng = state;
          int32_t got = -1;
          std::string threw;
          try {
            got = variants[vi].fn(a, got_rng);
          } catch (const std::exception& e) {
            threw = e.what();
          }
          Result& r = row_results[vi];
          if ((!threw.empty() || got != want || !same_rng(got_rng, want_rng)) && r.passed) {
            r.passed = false;
            r.max_abs_err = 1;
            r.note = "param set " + std::to_string(pi) + " draw " + std::to_string(d) + ": " +
                     (threw.empty() ? "token " + std::to_string(got) + " vs " + std::to_string(want) : "threw " + threw);
          }
        }
        state = want_rng;
        if (!a.params.do_sample) break;  // greedy: one check is all there is
      }
    }
    for (Result& r : row_results) results.push_back(r);
  }
  for (const auto& v : variants) results.push_back(semantics(v));
  for (const auto& v : variants) {
    const std::string name = v.name;
    if (name == "generic") results.push_back(weights_parity(v, cpu::sampling_scan_generic(), rng));
    if (name == "avx512") results.push_back(weights_parity(v, cpu::sampling_scan_avx512(), rng));
  }
  results.push_back(validation());
  results.push_back(frequencies());
  return results;
}

}  // namespace qvl::parity
