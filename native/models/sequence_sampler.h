// What the sampler keeps per sequence across a generation, natively: its settings and the distinct
// ids its repetition penalty applies to (the prompt's, then each token chosen). The history grows
// by one token per step, so a step costs the distinct ids seen, never a copy of the whole history
// from JS (which made a generation O(n²)).
#pragma once
#include <cstdint>
#include <vector>

#include "ops/sampling.h"

namespace qvl::models {

class TokenHistory {
 public:
  explicit TokenHistory(int64_t vocab);
  // E_INPUT on an id outside [0, vocab).
  void add(int32_t id);
  // The distinct ids added so far, in first-seen order (the penalty counts each once).
  const std::vector<int32_t>& distinct() const { return distinct_; }

 private:
  std::vector<uint8_t> seen_;  // [vocab]: 1 where the id is in distinct_
  std::vector<int32_t> distinct_;
};

struct SequenceSampler {
  SequenceSampler(const ops::SamplingParams& p, int64_t vocab) : params(p), history(vocab) {}
  ops::SamplingParams params;
  TokenHistory history;
};

// The sampling state of a session: one sampler per cache row, and one RNG the rows draw from in
// row order, so a seed replays a batched run exactly, whichever rows finish when.
struct SessionSampling {
  std::vector<SequenceSampler> rows;
  ops::SamplingRng rng{};
};

// Chooses the next token of each listed row from its logits row (logits row i for rows[i]), in
// list order, and appends it to that row's history.
void sample_rows(SessionSampling& s, const float* logits, int64_t vocab, const int64_t* rows, int64_t n_rows,
                 int32_t* out);

}  // namespace qvl::models
