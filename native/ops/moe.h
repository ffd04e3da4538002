// Mixture-of-experts feed-forward as Qwen3-VL-MoE runs it (Qwen3VLMoeTextSparseMoeBlock):
//   routing:  p = softmax(router_logits[t]) in fp32; the k largest (ids, weights); optionally the
//             k weights renormalised to sum 1 (norm_topk_prob). transformers' Qwen3-VL-MoE block
//             renormalises unconditionally (it ignores the config flag; every released checkpoint
//             sets it true), so pass true to match it; false gives the plain softmax weights.
//   experts:  for each chosen expert e, h = silu(x·Wg_eᵀ) * (x·Wu_eᵀ), y = h·Wd_eᵀ;
//             out[t] = Σ_slot weight_slot · y_slot.
// The router logits come from the caller (one matmul with mlp.gate.weight [E, H]).
//
// Weight layout. The bf16 releases store the experts fused and in "x @ W" form (the FP8 release
// stores each expert's gate_proj, up_proj and down_proj as [N, K] Linear weights instead):
//   mlp.experts.gate_up_proj [E, H, 2I]  (columns 0..I-1 are the gate, I..2I-1 the up projection:
//                                         transformers splits gate_up.chunk(2, dim=-1))
//   mlp.experts.down_proj    [E, I, H]
// The op consumes them repacked once at load into the matmul op's [N, K] form, the experts stacked
// along the rows:
//   gate_up [E·2I, H] (expert e's rows e·2I ..: I gate rows, then I up rows)   and   down [E·H, I],
// each a WeightRef in any format the matmul op reads: kept as stored (moe_pack_experts), quantized
// at load to q8/q4 (moe_quantize_experts), or the experts of an FP8 checkpoint stacked
// (moe_stack_expert_rows). The two may differ in format (a down projection whose I is no multiple
// of the quantization group stays as stored).
// Why repack rather than a second ("x @ W") matmul kernel: the transpose is exact, costs one pass
// at load (where the weights are copied into huge-page memory anyway), and leaves every expert
// product to the one tuned matmul op, so MoE gets its SIMD/AMX/quantized paths for free. The
// repacked dense tensors have the checkpoint's size and format; the repack goes through the format's
// traits (transpose_rows), so a format whose blocks run along the checkpoint's rows is refused
// rather than split (such experts are transposed densely, then quantized: moe_quantize_experts).
//
// Ties in the routing are broken like a stable sort: of equal router logits the lower expert id
// ranks first. Experts are ranked by router logit, not by rounded probability: softmax is monotone,
// so this is the same order torch.topk sees except where fp32 rounding makes two different logits'
// probabilities equal (torch's order is then unspecified anyway).
#pragma once
#include <cstdint>
#include <functional>

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
  WeightRef gate_up;  // stacked [E·2I, H] (see above)
  WeightRef down;     // stacked [E·H, I]
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
// Validates (E_INPUT) and runs the best variant reading p.gate_up's and p.down's formats.
void moe(const MoeParams& p, const ExecContext& ctx);
// Expert e's `rows` rows of a stacked expert weight (its data, scales and zero points from there).
WeightRef moe_expert_weight(const WeightRef& stacked, int64_t e, int64_t rows);

// Checkpoint layout -> op layout, per expert a transpose: src [E, R, C] -> dst [E, C, R] in format f,
// through the format's transpose_rows (elements copied bit for bit for the dense formats; E_UNSUPPORTED
// for a format without one). gate_up_proj: R = H, C = 2I. down_proj: R = I, C = H. dst must not
// overlap src.
void moe_pack_experts(const void* src, void* dst, WeightFormat f, int64_t E, int64_t R, int64_t C, ThreadPool& pool);

// Checkpoint layout -> op layout quantized: src [E, R, C] in a dense format (f32, bf16, f16) ->
// [E·C, R] in q8/q4 with `group` elements per scale, into buffers laid out as core/weight_quant.h's
// quant_weight_bytes says for rows of R (C a multiple of 16 when E > 1, so each expert starts a
// panel; E_UNSUPPORTED else). Per expert: the transpose (moe_pack_experts' element moves)
// into a per-thread buffer, then ops::quantize_weight's row quantizer, so the result is byte for
// byte moe_pack_experts followed by quantize_weight, without the whole dense transpose in memory.
// Experts run in parallel; `done(e)` (optional, called from the worker threads) is told when
// expert e's source is no longer read, so the caller can drop its pages while later experts run.
// Returns -1, or the first (row-major, over the stacked [E·C, R] rows) group whose scale overflows
// the format (nothing promised about the buffers then).
int64_t moe_quantize_experts(const void* src, WeightFormat src_format, int64_t E, int64_t R, int64_t C, WeightFormat f,
                             int64_t group, void* data, void* scales, void* zeros, ThreadPool& pool,
                             const std::function<void(int64_t)>& done = {});

// Copies the rows of `n` weights (one format, one row length and stride, one group), one after the
// other, into data/scales/zeros laid out as one weight of their summed row count: how the
// per-expert tensors of an official FP8 checkpoint become the stacked layout. Data, scales and
// zero points move as whole rows, located through the format (weight_rows_from; q8/q4 parts must
// be whole 16-row panels, E_UNSUPPORTED else); E_INPUT when the parts differ in format or geometry. Returns the stacked weight's reference.
WeightRef moe_stack_expert_rows(const WeightRef* parts, int64_t n, void* data, void* scales, void* zeros, ThreadPool& pool);

// Groups the (token, slot) pairs of a routing decision by expert so that each expert runs one
// matmul over all its tokens: counts[E], offsets[E+1] (prefix sums of counts) and rows[T*k], where
// rows[offsets[e] .. offsets[e+1]) lists t*k + slot for every slot that chose e, in token order.
// Throws E_INPUT on an id outside [0, E).
void moe_group(const int32_t* ids, int64_t T, int64_t k, int64_t E, int64_t* counts, int64_t* offsets, int64_t* rows);

}  // namespace qvl::ops
