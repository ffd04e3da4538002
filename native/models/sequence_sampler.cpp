#include "models/sequence_sampler.h"

#include <exception>
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

namespace {

// The masks of the constrained rows, computed at once on the pool, then applied to their logits.
void constrain_rows(const std::vector<SequenceSampler*>& q, float* logits, int64_t vocab, const ExecContext& ctx) {
  std::vector<int64_t> rows;
  for (size_t i = 0; i < q.size(); ++i)
    if (q[i]->constraint && q[i]->constraint->active) rows.push_back(static_cast<int64_t>(i));
  if (rows.empty()) return;
  const int64_t n = static_cast<int64_t>(rows.size()), W = ops::mask_words(vocab);
  Tensor masks = ctx.temp(DType::I32, {n, W});
  uint32_t* m = reinterpret_cast<uint32_t*>(masks.data<int32_t>());
  std::vector<std::exception_ptr> errors(rows.size());
  ctx.pool().parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      try {
        TokenConstraint& c = *q[static_cast<size_t>(rows[static_cast<size_t>(k)])]->constraint;
        ops::TokenMaskArgs a;
        a.masks = c.masks.get(), a.cache = c.masks.get();
        a.state = c.state.data(), a.state_len = static_cast<int64_t>(c.state.size());
        a.mask = m + k * W;
        ops::token_mask(a);
      } catch (...) {
        errors[static_cast<size_t>(k)] = std::current_exception();
      }
    }
  });
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = rows[static_cast<size_t>(k)];
    const TokenConstraint& c = *q[static_cast<size_t>(i)]->constraint;
    const bool accepts = ops::grammar::state_accepts(c.state.data(), c.state.size());
    const int64_t kept = ops::constrain_logits(logits + i * vocab, m + k * W, vocab, c.end_ids.data(),
                                               static_cast<int64_t>(c.end_ids.size()), accepts);
    QVL_CHECK(kept > 0, Unsupported,
              "structured output: no token of the vocabulary can continue the grammar here (and the text is not complete)");
  }
}

// Moves a constraint past the token just drawn.
void follow(TokenConstraint& c, int32_t token) {
  if (!c.active) {
    c.active = token == c.start_after;
    return;
  }
  for (int32_t e : c.end_ids)
    if (e == token) return;
  QVL_CHECK(ops::advance_token(*c.masks, c.state, token), Native,
            "structured output: token " + std::to_string(token) + " was drawn but the grammar refuses it");
}

}  // namespace

void sample_rows(SessionSampling& s, float* logits, int64_t vocab, const int64_t* rows, int64_t n_rows, int32_t* out,
                 const ExecContext& ctx) {
  std::vector<SequenceSampler*> q;
  for (int64_t i = 0; i < n_rows; ++i) {
    QVL_CHECK(rows[i] >= 0 && static_cast<size_t>(rows[i]) < s.rows.size() && s.rows[static_cast<size_t>(rows[i])], Input,
              "row " + std::to_string(rows[i]) + " has no sampler");
    q.push_back(s.rows[static_cast<size_t>(rows[i])].get());
  }
  constrain_rows(q, logits, vocab, ctx);
  for (int64_t i = 0; i < n_rows; ++i) {
    SequenceSampler& r = *q[static_cast<size_t>(i)];
    ops::SampleArgs a;
    a.logits = logits + i * vocab;
    a.vocab = vocab;
    a.params = r.params;
    a.seen_ids = r.history.distinct().data();
    a.n_seen = static_cast<int64_t>(r.history.distinct().size());
    out[i] = ops::sample_token(a, s.rngs.at(r.rng));
    r.history.add(out[i]);
    if (r.constraint) follow(*r.constraint, out[i]);
  }
}

}  // namespace qvl::models
