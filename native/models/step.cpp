#include "models/step.h"

#include "core/error.h"
#include "models/layers.h"
#include "ops/rows.h"

namespace qvl::models {

StepOutput run_step(const VlModel& model, KvPool& cache, SessionSampling* sampling, const StepInput& in,
                    const ExecContext& ctx, Trace* trace) {
  const TextDecoder& text = model.text();
  const int64_t Hd = text.spec().hidden, V = text.spec().vocab, S = in.steps;
  std::vector<int64_t> rows = in.rows;
  if (rows.empty()) {
    for (int64_t b = 0; b < cache.size(); ++b)
      if (cache.live(b)) rows.push_back(b);
    QVL_CHECK(!rows.empty(), Input, "the session holds no sequence");
  }
  const int64_t B = static_cast<int64_t>(rows.size());
  QVL_CHECK(in.counts.empty() || static_cast<int64_t>(in.counts.size()) == B, Input, "counts needs one entry per row");
  // Row i's tokens are [off[i], off[i + 1]).
  std::vector<int64_t> off(static_cast<size_t>(B + 1), 0);
  for (int64_t i = 0; i < B; ++i) off[static_cast<size_t>(i + 1)] = off[static_cast<size_t>(i)] + (in.counts.empty() ? S : in.counts[static_cast<size_t>(i)]);
  const int64_t n = off[static_cast<size_t>(B)];
  QVL_CHECK(in.output != StepOutputKind::Flagged || static_cast<int64_t>(in.needs_logits.size()) == n, Input,
            "needs_logits needs one flag per token");
  QVL_CHECK(in.output != StepOutputKind::Sample || sampling, Input, "sampling was not set up for this session");
  if (!in.pad.empty()) {
    QVL_CHECK(static_cast<int64_t>(in.pad.size()) == B, Input, "pad needs one entry per row");
    for (int64_t i = 0; i < B; ++i) {
      const int64_t b = rows[static_cast<size_t>(i)];
      if (cache.slot(b).len != 0) fail(ErrorCode::Input, "pad is only accepted on a sequence's first forward");
    }
    for (int64_t i = 0; i < B; ++i) cache.slot(rows[static_cast<size_t>(i)]).pad = in.pad[static_cast<size_t>(i)];
  }
  // The step's hidden states and rope tables live in the session's scratch arena (reset by the
  // caller after the step); only the logits handed back are owned.
  Tensor x = ctx.temp(DType::F32, {n, Hd});
  text.embed(in.ids, n, x.data<float>(), ctx);
  if (trace) trace->record("text_embeds", x.data<float>(), n, Hd, Hd);
  if (in.vision) {
    // Visual tokens take their vision feature row in place of the token embedding.
    QVL_CHECK(in.vision->ndim() == 2 && in.vision->dim(1) == Hd, Input, "vision features must be [n, hidden]");
    index_rows(ops::RowsKind::Gather, x.data<float>(), in.vision->data<float>(), n, Hd, in.visual_rows, DType::I32,
               in.vision->dim(0), ctx);
  }
  std::vector<int64_t> positions(in.positions, in.positions + 3 * n);
  TextStep step;
  step.steps = S;
  step.rows = rows.data();
  step.n_rows = B;
  step.counts = in.counts.empty() ? nullptr : in.counts.data();
  step.positions = positions.data();
  step.visual_rows = in.vision ? in.visual_rows : nullptr;
  step.deepstack = in.deepstack;
  step.cancel = in.cancel;
  text.forward(x.data<float>(), step, cache, ctx, trace);
  check_cancel(in.cancel, "the LM head");
  StepOutput out;
  // Sampled logits never leave the step: scratch. Logits returned to the caller are owned.
  const bool keep_logits = in.output != StepOutputKind::Sample;
  auto logits_tensor = [&](int64_t rows_out) {
    return keep_logits ? Tensor::empty(DType::F32, {rows_out, V}) : ctx.temp(DType::F32, {rows_out, V});
  };
  // Hidden rows [picked] as one contiguous block, for the LM head.
  auto head = [&](const std::vector<int64_t>& picked) {
    const int64_t k = static_cast<int64_t>(picked.size());
    Tensor logits = logits_tensor(k);
    ArenaScope scope(ctx.arena());  // the gathered rows die here; the logits were taken before
    Tensor sel = ctx.temp(DType::F32, {k, Hd});
    index_rows(ops::RowsKind::Gather, sel.data<float>(), x.data<float>(), k, Hd, picked.data(), DType::I64, n, ctx);
    if (k > 0) text.logits(sel.data<float>(), Hd, k, logits.data<float>(), ctx);
    return logits;
  };
  std::vector<int64_t> last;
  for (int64_t i = 0; i < B; ++i) last.push_back(off[static_cast<size_t>(i + 1)] - 1);
  switch (in.output) {
    case StepOutputKind::None:
      break;
    case StepOutputKind::All:
      out.logits = Tensor::empty(DType::F32, {n, V});
      text.logits(x.data<float>(), Hd, n, out.logits.data<float>(), ctx);
      out.has_logits = true;
      break;
    case StepOutputKind::Flagged: {
      std::vector<int64_t> picked;
      for (int64_t t = 0; t < n; ++t)
        if (in.needs_logits[static_cast<size_t>(t)]) picked.push_back(t);
      out.logits = head(picked);
      out.has_logits = true;
      break;
    }
    case StepOutputKind::Last:
    case StepOutputKind::Sample:
      if (in.output == StepOutputKind::Sample && !in.sample.empty()) {
        // Only the flagged rows reach the LM head and draw from their RNGs.
        QVL_CHECK(static_cast<int64_t>(in.sample.size()) == B, Input, "sample needs one flag per row");
        std::vector<int64_t> picked, picked_rows;
        for (int64_t i = 0; i < B; ++i) {
          if (!in.sample[static_cast<size_t>(i)]) continue;
          picked.push_back(last[static_cast<size_t>(i)]);
          picked_rows.push_back(rows[static_cast<size_t>(i)]);
        }
        Tensor logits = head(picked);
        std::vector<int32_t> chosen(picked.size());
        sample_rows(*sampling, logits.data<float>(), V, picked_rows.data(), static_cast<int64_t>(picked.size()), chosen.data(), ctx);
        out.tokens.assign(static_cast<size_t>(B), -1);
        for (size_t i = 0, j = 0; i < static_cast<size_t>(B); ++i)
          if (in.sample[i]) out.tokens[i] = chosen[j++];
        break;
      }
      if (in.counts.empty()) {
        // Equal rows: the last tokens are a strided view, no gather needed.
        out.logits = logits_tensor(B);
        text.logits(x.data<float>() + (S - 1) * Hd, S * Hd, B, out.logits.data<float>(), ctx);
      } else {
        out.logits = head(last);
      }
      out.has_logits = in.output == StepOutputKind::Last;
      if (in.output == StepOutputKind::Sample) {
        out.tokens.resize(static_cast<size_t>(B));
        sample_rows(*sampling, out.logits.data<float>(), V, rows.data(), B, out.tokens.data(), ctx);
        out.logits = Tensor();
      }
      break;
  }
  return out;
}

}  // namespace qvl::models
