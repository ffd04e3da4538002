// The Qwen2 / Qwen3 decoder: RMSNorm, GQA attention with M-RoPE (q/k/v bias for Qwen2, per-head
// q/k RMSNorm for Qwen3), SwiGLU MLP or a mixture of experts, final norm and LM head.
#pragma once
#include <string>
#include <vector>

#include "core/cancel.h"
#include "core/tensor.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "models/kv_pool.h"
#include "models/layers.h"
#include "models/linear.h"
#include "models/rope_cache.h"
#include "models/spec.h"
#include "models/trace.h"
#include "models/weights.h"

namespace qvl::models {

// One forward call over `steps` new tokens for each of the step's cache rows (prefill: the padded
// prompt; decode: 1). Token t of the i-th row is row i·steps + t of x, positions and visual_rows.
struct TextStep {
  int64_t steps = 0;
  // The pool's sequence ids this step runs, in token order (null: ids 0 .. size-1, all live).
  // Sequences left out (finished ones) cost nothing and their slots are untouched.
  const int64_t* rows = nullptr;
  int64_t n_rows = 0;
  // Tokens of each row (null: `steps` each). Rows may differ: a decode token beside a prefill
  // chunk. Row i's tokens follow row i-1's in x, positions and visual_rows.
  const int64_t* counts = nullptr;
  const int64_t* positions = nullptr;  // [3][batch·steps]: (t, h, w) M-RoPE position of each token
  // Qwen3-VL DeepStack: visual_rows[i] >= 0 marks token i as the visual token whose features are
  // row visual_rows[i] of each deepstack tensor, added after decoder layer l for l < deepstack.size().
  const int32_t* visual_rows = nullptr;
  const std::vector<Tensor>* deepstack = nullptr;
  // Polled before each layer's attention and MLP; a cancelled step throws and leaves the cache's
  // lengths as they were (the rows it half wrote lie past them).
  const CancelToken* cancel = nullptr;
};

class TextDecoder {
 public:
  // plan: what becomes of the linear weights and MoE experts (as stored, or quantized at load; the
  // MoE router and the embedding lookup table always stay as stored).
  TextDecoder(const TextSpec& spec, const WeightStore& w, const std::string& prefix, const std::string& lm_head,
              const WeightPlan& plan = {});
  WeightFormat weight_format() const { return layers_.empty() ? lm_head_.format() : layers_.front().q.format(); }
  // Where the same weight's bytes are (core/placement.h).
  std::optional<Placement> weight_placement() const {
    return layers_.empty() ? lm_head_.placement() : layers_.front().q.placement();
  }

  const TextSpec& spec() const { return spec_; }
  // out[n, hidden] = embed_tokens[ids]; E_INPUT on an id outside the vocabulary.
  void embed(const int32_t* ids, int64_t n, float* out, const ExecContext& ctx) const;
  // Runs every layer over x [batch·steps, hidden] in place, appending to the cache, then the final
  // norm. Throws E_CONTEXT_OVERFLOW when a row would outgrow the cache.
  void forward(float* x, const TextStep& step, KvPool& cache, const ExecContext& ctx, Trace* trace) const;
  // logits[rows, vocab] from final hidden states.
  void logits(const float* h, int64_t ldh, int64_t rows, float* out, const ExecContext& ctx) const;
  // `batch` sequences of `capacity` tokens each; kv_dtype F32 or BF16 (see KvPool).
  KvPool new_cache(int64_t batch, int64_t capacity, DType kv_dtype = DType::F32) const;

 private:
  struct Layer {
    NormLayer input_norm, post_norm, q_norm, k_norm;
    Linear q, k, v, o;
    Linear gate, up, down;  // dense MLP
    bool sparse = false;
    Linear router;
    ConvertedWeight experts_gate_up, experts_down;  // stacked for the moe op (ops/moe.h)
  };
  void attention_block(const Layer& L, int64_t li, float* x, const TextStep& step, KvPool& cache, const float* cos,
                       const float* sin, const ExecContext& ctx) const;
  void mlp_block(const Layer& L, float* x, int64_t n, const ExecContext& ctx, const CancelToken* cancel) const;
  // cos/sin [n, head_dim/2] of the step's tokens, gathered from rope_rows_.
  void rope_tables(const int64_t* positions, int64_t n, float* cos, float* sin, const ExecContext& ctx) const;

  TextSpec spec_;
  Tensor embed_;
  Linear lm_head_;
  NormLayer final_norm_;
  std::vector<Layer> layers_;
  // RoPE: the M-RoPE axis each frequency follows, the table column it reads (the identity), and
  // the per-position cos/sin rows every forward gathers from.
  std::vector<uint8_t> rope_axis_;
  std::vector<int32_t> rope_column_;
  RopeRows rope_rows_;
};

}  // namespace qvl::models
