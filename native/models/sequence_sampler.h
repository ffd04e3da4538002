// What the sampler keeps per sequence across a generation, natively: its settings and the distinct
// ids its repetition penalty applies to (the prompt's, then each token chosen). The history grows
// by one token per step, so a step costs the distinct ids seen, never a copy of the whole history
// from JS (which made a generation O(n²)).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/exec_context.h"
#include "ops/sampling.h"
#include "ops/token_mask.h"

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

// Structured output for one sequence: a grammar (with the caches every sequence using it shares)
// and where this sequence's text stands in it. Each step only the tokens the grammar allows may be
// drawn (their logits stay, every other becomes -inf before the penalty and warpers); the end tokens
// exactly when the text is a complete sentence. With `start_after`, the sequence runs free until it
// draws that token (a thinking model's </think>), and the grammar covers what follows.
struct TokenConstraint {
  std::shared_ptr<ops::MaskCache> masks;
  std::vector<int32_t> state;    // the matcher's (ops/grammar.h)
  std::vector<int32_t> end_ids;
  int32_t start_after = -1;
  bool active = true;            // false until start_after was drawn
};

struct SequenceSampler {
  SequenceSampler(const ops::SamplingParams& p, int64_t vocab, size_t rng_index = 0)
      : params(p), history(vocab), rng(rng_index) {}
  ops::SamplingParams params;
  TokenHistory history;
  size_t rng;  // which of the session's RNGs this sequence draws from
  std::unique_ptr<TokenConstraint> constraint;  // null: unconstrained
};

// The sampling state of a session: a sampler per sequence id (null: none set), and the RNGs they
// draw from. The sequences set up together (a batched call) share one RNG and draw in row order,
// so a seed replays a batched run exactly, whichever rows finish when; sequences set up apart
// (separate requests) have RNGs of their own, so one never changes another's draws.
struct SessionSampling {
  std::vector<std::unique_ptr<SequenceSampler>> rows;
  std::vector<ops::SamplingRng> rngs;

  // Adds samplers for the sequence `ids` (replacing any they had) with one new RNG seeded `seed`;
  // returns them in `ids` order for their histories to be filled.
  std::vector<SequenceSampler*> add(const std::vector<int64_t>& ids, const std::vector<ops::SamplingParams>& params,
                                    uint64_t seed, int64_t vocab);
  // Drops a sequence's sampler (its history's memory); a later sample of it is E_INPUT.
  void drop(int64_t id);
};

// Chooses the next token of each listed row from its logits row (logits row i for rows[i]), in
// list order, and appends it to that row's history. Rows under a constraint get their masks
// computed together on the context's pool, and their logits rows masked in place, first.
void sample_rows(SessionSampling& s, float* logits, int64_t vocab, const int64_t* rows, int64_t n_rows, int32_t* out,
                 const ExecContext& ctx);

}  // namespace qvl::models
