#include "models/sequence_sampler.h"

#include <string>

#include "core/error.h"

namespace qvl::models {

TokenHistory::TokenHistory(int64_t vocab) : seen_(static_cast<size_t>(vocab), 0) {
  QVL_CHECK(vocab > 0, Input, "a token history needs a vocabulary");
}

void TokenHistory::add(int32_t id) {
  QVL_CHECK(id >= 0 && static_cast<size_t>(id) < seen_.size(), Input,
            "token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(seen_.size()));
  if (seen_[static_cast<size_t>(id)]) return;
  seen_[static_cast<size_t>(id)] = 1;
  distinct_.push_back(id);
}

void sample_rows(SessionSampling& s, const float* logits, int64_t vocab, const int64_t* rows, int64_t n_rows,
                 int32_t* out) {
  for (int64_t i = 0; i < n_rows; ++i) {
    QVL_CHECK(rows[i] >= 0 && static_cast<size_t>(rows[i]) < s.rows.size(), Input,
              "row " + std::to_string(rows[i]) + " has no sampler");
    SequenceSampler& q = s.rows[static_cast<size_t>(rows[i])];
    ops::SampleArgs a;
    a.logits = logits + i * vocab;
    a.vocab = vocab;
    a.params = q.params;
    a.seen_ids = q.history.distinct().data();
    a.n_seen = static_cast<int64_t>(q.history.distinct().size());
    out[i] = ops::sample_token(a, s.rng);
    q.history.add(out[i]);
  }
}

}  // namespace qvl::models
