// Mixture-of-experts feed-forward as Qwen3-VL-MoE runs it (Qwen3VLMoeTextSparseMoeBlock):
//   routing:  p = softmax(router_logits[t]) in fp32; the k largest (ids, weights); optionally the
//             k weights renormalised to sum 1 (norm_topk_prob). transformers' Qwen3-VL-MoE block
//             renormalises unconditionally (it ignores the config flag; every released checkpoint
//             sets it true), so pass true to match it; false gives the plain softmax weights.
//   experts:  for each chosen expert e, h = silu(x·Wg_eᵀ) * (x·Wu_eᵀ), y = h·Wd_eᵀ;
//             out[t] = Σ_slot weight_slot · y_slot.
// The router logits come from the caller (one matmul with mlp.gate.weight [E, H]).
//
// Weight layout. The checkpoint stores the experts fused and in "x @ W" form:
//   mlp.experts.gate_up_proj [E, H, 2I]  (columns 0..I-1 are the gate, I..2I-1 the up projection:
//                                         transformers splits gate_up.chunk(2, dim=-1))
//   mlp.experts.down_proj    [E, I, H]
// The op consumes them repacked once at load, by moe_pack_experts, into the matmul op's [N, K] form:
//   gate_up [E, 2I, H] (rows 0..I-1 gate, I..2I-1 up)   and   down [E, H, I].
// Why repack rather than a second ("x @ W") matmul kernel: the transpose is exact, costs one pass
// at load (where the weights are copied into huge-page memory anyway), and leaves every expert
// product to the one tuned matmul op, so MoE gets its SIMD/AMX/quantized paths for free. The
// repacked tensors have the checkpoint's size and weight format (f32, bf16, f16 kept as stored);
// the repack goes through the format's traits (transpose_rows), so a format whose blocks run
// along the checkpoint's rows is refused rather than split.
//
// Ties in the routing are broken like a stable sort: of equal router logits the lower expert id
// ranks first. Experts are ranked by router logit, not by rounded probability: softmax is monotone,
// so this is the same order torch.topk sees except where fp32 rounding makes two different logits'
// probabilities equal (torch's order is then unspecified anyway).
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/weight_format.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

struct MoeParams {
  int64_t T = 0;  // tokens
  int64_t E = 0;  // experts
  int64_t k = 0;  // experts per token (num_experts_per_tok), 1 <= k <= E
  int64_t H = 0;  // hidden size
  int64_t I = 0;  // expert intermediate size (moe_intermediate_size)
  bool norm_topk_prob = true;
  // Router logits [T, E], row stride ld_logits. NaN and +inf are rejected (E_INPUT); -inf is allowed
  // (an expert that can never win) as long as every row has a finite maximum.
  const float* router_logits = nullptr;
  int64_t ld_logits = 0;
  const float* x = nullptr;  // [T, H], row stride ldx
  int64_t ldx = 0;
  const void* gate_up = nullptr;  // packed [E, 2I, H] in w_format (see moe_pack_experts)
  const void* down = nullptr;     // packed [E, H, I] in w_format
  WeightFormat w_format = WeightFormat::F32;
  float* out = nullptr;  // [T, H], row stride ldo; must not overlap x
  int64_t ldo = 0;
  // Optional: the routing decision, [T, k] each, slots in rank order (best first).
  int32_t* topk_ids = nullptr;
  float* topk_weights = nullptr;
};

using MoeFn = void (*)(const MoeParams&, const ExecContext&);

const OpFamily<MoeFn>& moe_family();

// Throws E_INPUT unless p describes a consistent problem (the kernels assume it does); scans the
// router logits for NaN / +inf.
void check_moe(const MoeParams& p);
// Validates (E_INPUT) and runs the best variant for p.w_format.
void moe(const MoeParams& p, const ExecContext& ctx);
// Expert e's [rows, cols] matrix of a packed [E, rows, cols] tensor in format f, as a weight reference.
WeightRef moe_expert_weight(WeightFormat f, const void* base, int64_t e, int64_t rows, int64_t cols);

// Checkpoint layout -> op layout, per expert a transpose: src [E, R, C] -> dst [E, C, R] in format f,
// through the format's transpose_rows (elements copied bit for bit for the dense formats; E_UNSUPPORTED
// for a format without one). gate_up_proj: R = H, C = 2I. down_proj: R = I, C = H. dst must not
// overlap src.
void moe_pack_experts(const void* src, void* dst, WeightFormat f, int64_t E, int64_t R, int64_t C, ThreadPool& pool);

// Groups the (token, slot) pairs of a routing decision by expert so that each expert runs one
// matmul over all its tokens: counts[E], offsets[E+1] (prefix sums of counts) and rows[T*k], where
// rows[offsets[e] .. offsets[e+1]) lists t*k + slot for every slot that chose e, in token order.
// Throws E_INPUT on an id outside [0, E).
void moe_group(const int32_t* ids, int64_t T, int64_t k, int64_t E, int64_t* counts, int64_t* offsets, int64_t* rows);

}  // namespace qvl::ops
