#include "models/step.h"

#include <cstring>

#include "core/error.h"

namespace qvl::models {

StepOutput run_step(const VlModel& model, KvPool& cache, SessionSampling* sampling, const StepInput& in,
                    ThreadPool& pool, Trace* trace) {
  const TextDecoder& text = model.text();
  const int64_t Hd = text.spec().hidden, V = text.spec().vocab, S = in.steps;
  std::vector<int64_t> rows = in.rows;
  if (rows.empty()) {
    for (int64_t b = 0; b < cache.size(); ++b)
      if (cache.live(b)) rows.push_back(b);
    QVL_CHECK(!rows.empty(), Input, "the session holds no sequence");
  }
  const int64_t B = static_cast<int64_t>(rows.size()), n = B * S;
  QVL_CHECK(in.output != StepOutputKind::Sample || sampling, Input, "sampling was not set up for this session");
  if (!in.pad.empty()) {
    QVL_CHECK(static_cast<int64_t>(in.pad.size()) == B, Input, "pad needs one entry per row");
    for (int64_t i = 0; i < B; ++i) {
      const int64_t b = rows[static_cast<size_t>(i)];
      if (cache.slot(b).len != 0) fail(ErrorCode::Input, "pad is only accepted on a sequence's first forward");
    }
    for (int64_t i = 0; i < B; ++i) cache.slot(rows[static_cast<size_t>(i)]).pad = in.pad[static_cast<size_t>(i)];
  }
  Tensor x = Tensor::empty(DType::F32, {n, Hd});
  text.embed(in.ids, n, x.data<float>(), pool);
  if (trace) trace->record("text_embeds", x.data<float>(), n, Hd, Hd);
  if (in.vision) {
    for (int64_t i = 0; i < n; ++i) {
      const int32_t r = in.visual_rows[i];
      if (r >= 0) std::memcpy(x.data<float>() + i * Hd, in.vision->data<float>() + r * Hd, sizeof(float) * Hd);
    }
  }
  std::vector<int64_t> positions(in.positions, in.positions + 3 * n);
  TextStep step;
  step.steps = S;
  step.rows = rows.data();
  step.n_rows = B;
  step.positions = positions.data();
  step.visual_rows = in.vision ? in.visual_rows : nullptr;
  step.deepstack = in.deepstack;
  step.cancel = in.cancel;
  text.forward(x.data<float>(), step, cache, pool, trace);
  check_cancel(in.cancel, "the LM head");
  StepOutput out;
  switch (in.output) {
    case StepOutputKind::None:
      break;
    case StepOutputKind::All:
      out.logits = Tensor::empty(DType::F32, {n, V});
      text.logits(x.data<float>(), Hd, n, out.logits.data<float>(), pool);
      out.has_logits = true;
      break;
    case StepOutputKind::Last:
    case StepOutputKind::Sample:
      out.logits = Tensor::empty(DType::F32, {B, V});
      text.logits(x.data<float>() + (S - 1) * Hd, S * Hd, B, out.logits.data<float>(), pool);
      out.has_logits = in.output == StepOutputKind::Last;
      if (in.output == StepOutputKind::Sample) {
        out.tokens.resize(static_cast<size_t>(B));
        sample_rows(*sampling, out.logits.data<float>(), V, rows.data(), B, out.tokens.data());
        out.logits = Tensor();
      }
      break;
  }
  return out;
}

}  // namespace qvl::models
