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

std::vector<SequenceSampler*> SessionSampling::add(const std::vector<int64_t>& ids,
                                                  const std::vector<ops::SamplingParams>& params, uint64_t seed,
                                                  int64_t vocab) {
  QVL_CHECK(ids.size() == params.size(), Input, "sampling needs one params entry per sequence");
  rngs.push_back(ops::sampling_rng(seed));
  std::vector<SequenceSampler*> out;
  for (size_t i = 0; i < ids.size(); ++i) {
    QVL_CHECK(ids[i] >= 0, Input, "sequence ids are >= 0");
    const size_t id = static_cast<size_t>(ids[i]);
    if (rows.size() <= id) rows.resize(id + 1);
    rows[id] = std::make_unique<SequenceSampler>(params[i], vocab, rngs.size() - 1);
    out.push_back(rows[id].get());
  }
  return out;
}

void SessionSampling::drop(int64_t id) {
  if (id >= 0 && static_cast<size_t>(id) < rows.size()) rows[static_cast<size_t>(id)].reset();
}

void sample_rows(SessionSampling& s, const float* logits, int64_t vocab, const int64_t* rows, int64_t n_rows,
                 int32_t* out) {
  for (int64_t i = 0; i < n_rows; ++i) {
    QVL_CHECK(rows[i] >= 0 && static_cast<size_t>(rows[i]) < s.rows.size() && s.rows[static_cast<size_t>(rows[i])], Input,
              "row " + std::to_string(rows[i]) + " has no sampler");
    SequenceSampler& q = *s.rows[static_cast<size_t>(rows[i])];
    ops::SampleArgs a;
    a.logits = logits + i * vocab;
    a.vocab = vocab;
    a.params = q.params;
    a.seen_ids = q.history.distinct().data();
    a.n_seen = static_cast<int64_t>(q.history.distinct().size());
    out[i] = ops::sample_token(a, s.rngs.at(q.rng));
    q.history.add(out[i]);
  }
}

}  // namespace qvl::models
