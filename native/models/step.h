// One engine step over a session's KV cache: embed the tokens, put the vision features in their
// rows, run the decoder over the step's cache rows, then return logits or sample the next token of
// each row natively (the generation path: logits never leave native memory).
#pragma once
#include <vector>

#include "core/cancel.h"
#include "core/tensor.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "models/kv_pool.h"
#include "models/model.h"
#include "models/sequence_sampler.h"
#include "models/trace.h"

namespace qvl::models {

// Last: each row's last token; All: every token; Flagged: the tokens whose needs_logits is set;
// Sample: each row's next token, chosen natively from its last token's logits.
enum class StepOutputKind { None, Last, All, Flagged, Sample };

struct StepInput {
  int64_t steps = 0;                      // tokens per row, unless `counts` is given
  std::vector<int64_t> counts;            // tokens of each row (a decode token beside a prefill chunk)
  std::vector<uint8_t> needs_logits;      // per token, for StepOutputKind::Flagged
  std::vector<uint8_t> sample;            // per row, for Sample: 0 skips the row (a prefill chunk short of
                                          // its prompt's end: no logits, no draw); empty: every row
  std::vector<int64_t> rows;              // sequence ids in the pool, in token order; empty: every live one
  const int32_t* ids = nullptr;           // [rows·steps]
  const int32_t* positions = nullptr;     // [3][rows·steps]
  std::vector<int64_t> pad;               // per row, first step only; empty: none
  const Tensor* vision = nullptr;         // [Nv, hidden] or null
  const int32_t* visual_rows = nullptr;   // [rows·steps], with vision
  const std::vector<Tensor>* deepstack = nullptr;
  const CancelToken* cancel = nullptr;
  StepOutputKind output = StepOutputKind::Last;
};

struct StepOutput {
  Tensor logits;                // Last: [rows, vocab]; All: [tokens, vocab]; Flagged: [flagged, vocab]
  bool has_logits = false;
  std::vector<int32_t> tokens;  // Sample: one per row (-1 for rows `sample` skips)
};

// `sampling` is required for StepOutputKind::Sample. Sequences not in `in.rows` are untouched.
StepOutput run_step(const VlModel& model, KvPool& cache, SessionSampling* sampling, const StepInput& in,
                    const ExecContext& ctx, Trace* trace);

}  // namespace qvl::models
