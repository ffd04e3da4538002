// Fused softmax attention, fp32: out = softmax(scale · q kᵀ [+ causal mask]) v, never materialising
// the score matrix. One call covers many independent problems ("segments", like cu_seqlens): the
// vision tower's images or windows, the batch rows of a prefill, a decode step against a KV cache.
//
// Layout: q [Tq, Hq, D], k and v [Tk, Hkv, D], out [Tq, Hq, D], each with its own row stride (elements
// between consecutive tokens, >= heads·D) so that q, k and v can be views into one fused qkv buffer.
// GQA: query head h reads kv head h / (Hq / Hkv).
#pragma once
#include <cstdint>

#include "core/cancel.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

// Query rows [q_start, q_end) attend to key rows [k_start, k_end). With causal set, the queries are
// the LAST qlen positions of the segment's keys: query i (0-based within the segment) sees keys
// j <= i + (klen - qlen). That one rule covers prefill (qlen == klen), decode (qlen == 1) and chunked
// prefill. Left padding is the caller's business: give each batch row its own segment.
//
// A segment may bring its own key and value buffers (k and v, both or neither; same strides ldk and
// ldv, at least k_end rows each): batched decode attends every sequence to its own KV-pool slot in
// one call. Without them its keys are rows of p.k and p.v.
struct AttentionSegment {
  int64_t q_start = 0, q_end = 0;
  int64_t k_start = 0, k_end = 0;
  const float* k = nullptr;
  const float* v = nullptr;
};

struct AttentionParams {
  const float* q = nullptr;  // [Tq, Hq, D], row stride ldq
  const float* k = nullptr;  // [Tk, Hkv, D], row stride ldk (may be null when every segment has its own)
  const float* v = nullptr;  // [Tk, Hkv, D], row stride ldv
  float* out = nullptr;      // [Tq, Hq, D], row stride ldo; must not overlap k or v
  int64_t ldq = 0, ldk = 0, ldv = 0, ldo = 0;
  int64_t Tq = 0, Tk = 0;
  int64_t Hq = 0, Hkv = 0, D = 0;
  float scale = 0;  // usually 1/sqrt(D); the caller decides
  bool causal = false;
  const AttentionSegment* segments = nullptr;  // query ranges must not overlap
  int64_t n_segments = 0;
  // Optional: the tiled variants poll it between work items (query blocks), so one long prefill's
  // attention stops early; attention() then throws the token's error instead of returning rows
  // half written.
  const CancelToken* cancel = nullptr;
};
// Rows of out that no segment covers are left untouched; a query row with no keys gets zeros.
// Determinism: a segment with at most 16 query rows per kv head (decode) gives the same bits on
// any thread count for a given variant; other segments agree across thread counts within rounding
// (their key splits follow the thread count). Every variant agrees with the reference within the
// parity tolerance.
using AttentionFn = void (*)(const AttentionParams&, const ExecContext&);

// Where a segment's keys and values start: its first key row (k_start) in its own buffers or in p's.
inline const float* segment_keys(const AttentionParams& p, const AttentionSegment& g) {
  return (g.k ? g.k : p.k) + g.k_start * p.ldk;
}
inline const float* segment_values(const AttentionParams& p, const AttentionSegment& g) {
  return (g.v ? g.v : p.v) + g.k_start * p.ldv;
}

const OpFamily<AttentionFn>& attention_family();

// attention_bf16 (precision 'fast', non-causal problems: the vision tower): q, k and v rounded to
// bf16, scores s = q·k accumulated in f32, exact softmax per query row (the row's max over all its
// keys, no running rescale), the weights e = exp(scale·s - max) rounded to bf16 for the product
// with v (f32 accumulation), divided by the sum of the unrounded e. Its own family for the same
// reasons as matmul_bf16 (ops/matmul.h); attention() picks it under Precision::Fast.
const OpFamily<AttentionFn>& attention_bf16_family();

// Throws E_INPUT unless p describes a consistent problem (the kernels assume it does).
void check_attention(const AttentionParams& p);
// Validates (E_INPUT) and runs the best variant; throws E_ABORTED / E_DISPOSED when p.cancel is set.
// Under ctx.precision() == Fast a non-causal problem runs attention_bf16 where this machine has a
// kernel for it (AMX) other than the scalar reference.
void attention(const AttentionParams& p, const ExecContext& ctx);

}  // namespace qvl::ops
