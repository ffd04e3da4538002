// Fused softmax attention, fp32: out = softmax(scale · q kᵀ [+ causal mask]) v, never materialising
// the score matrix. One call covers many independent problems ("segments", like cu_seqlens): the
// vision tower's images or windows, the batch rows of a prefill, a decode step against a KV cache.
//
// Layout: q [Tq, Hq, D], k and v [Tk, Hkv, D], out [Tq, Hq, D], each with its own row stride (elements
// between consecutive tokens, >= heads·D) so that q, k and v can be views into one fused qkv buffer.
// GQA: query head h reads kv head h / (Hq / Hkv).
//
// Keys and values are f32 or bf16 (kv_dtype: a bf16 KV cache is read as stored, each element
// widened to f32 as it is loaded); q, out and every sum stay f32. Strides count elements.
#pragma once
#include <cstdint>
#include <string>

#include "core/cancel.h"
#include "core/dtype.h"
#include "core/error.h"
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
// ldv, at least k_end rows each, of p.kv_dtype): batched decode attends every sequence to its own
// KV-pool slot in one call. Without them its keys are rows of p.k and p.v.
struct AttentionSegment {
  int64_t q_start = 0, q_end = 0;
  int64_t k_start = 0, k_end = 0;
  const void* k = nullptr;
  const void* v = nullptr;
};

struct AttentionParams {
  const float* q = nullptr;  // [Tq, Hq, D], row stride ldq
  const void* k = nullptr;   // [Tk, Hkv, D] of kv_dtype, row stride ldk (may be null when every segment has its own)
  const void* v = nullptr;   // [Tk, Hkv, D] of kv_dtype, row stride ldv
  DType kv_dtype = DType::F32;  // F32 or BF16: the element type of k and v (and of segments' own)
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

// Calls f(T{}) with T the element type kernels read k and v as: float for F32, uint16_t (the bf16
// bits) for BF16. Any other dtype is E_INPUT (check_attention refuses it first).
template <class F>
void visit_kv_type(DType t, F&& f) {
  switch (t) {
    case DType::F32: return f(float{});
    case DType::BF16: return f(uint16_t{});
    case DType::F16:
    case DType::I32:
    case DType::I64:
    case DType::U8:
    case DType::F8E4M3: break;
  }
  fail(ErrorCode::Input, std::string("attention: keys and values must be f32 or bf16, got ") + dtype_name(t));
}

// One stored key or value element as f32 (exact for both types).
inline float kv_widen(float x) { return x; }
inline float kv_widen(uint16_t h) { return bf16_to_f32(h); }

// Where a segment's keys and values start: its first key row (k_start) in its own buffers or in
// p's; T must be the type visit_kv_type gives for p.kv_dtype.
template <class T>
const T* segment_keys(const AttentionParams& p, const AttentionSegment& g) {
  return static_cast<const T*>(g.k ? g.k : p.k) + g.k_start * p.ldk;
}
template <class T>
const T* segment_values(const AttentionParams& p, const AttentionSegment& g) {
  return static_cast<const T*>(g.v ? g.v : p.v) + g.k_start * p.ldv;
}

const OpFamily<AttentionFn>& attention_family();

// attention_bf16 (precision 'fast': the vision tower, and prefill): q, k and v rounded to bf16,
// scores s = q·k accumulated in f32, the softmax in base 2: weights 2^(y − M) with y = scale·s·log2 e
// and M an integer at or above the row's largest y (which one does not matter: bf16 rounding
// commutes with powers of two), rounded to bf16 for the product with v (f32 accumulation) and
// divided by the sum of the rounded weights. Its own family for the same reasons as matmul_bf16
// (ops/matmul.h); attention() picks it under Precision::Fast.
const OpFamily<AttentionFn>& attention_bf16_family();

// attention_bf16's arithmetic for decode steps (a few query rows per kv head against a KV cache):
// the same reference, kernels that read each cached key and value once for all the rows sharing
// its kv head instead of packing them for 64-query tiles.
const OpFamily<AttentionFn>& attention_bf16_decode_family();

// Under Precision::Fast a causal segment of at least this many query rows (a prefill) runs
// attention_bf16; shorter ones (decode steps) run attention_bf16_decode, where packing every key
// and value for the tiles would cost about what the step's attention reads, and the tiles would
// run nearly empty. Non-causal segments (the vision tower) all run attention_bf16.
inline constexpr int64_t kBf16MinQueryRows = 32;
// The attention_bf16 variant attention() runs those segments with under Fast on device d, or null
// when Fast runs the exact kernel there too (no kernel here but the scalar reference).
const Variant<AttentionFn>* attention_bf16_variant(Device d);
// The same for attention_bf16_decode and the shorter causal segments.
const Variant<AttentionFn>* attention_bf16_decode_variant(Device d);

// Throws E_INPUT unless p describes a consistent problem (the kernels assume it does).
void check_attention(const AttentionParams& p);
// Validates (E_INPUT) and runs the best variant; throws E_ABORTED / E_DISPOSED when p.cancel is set.
// Under ctx.precision() == Fast, where this machine has attention_bf16 and attention_bf16_decode
// kernels other than the scalar references, each segment goes to the one kBf16MinQueryRows names
// (where it has none, to the exact kernel): one call per kernel, over its segments.
void attention(const AttentionParams& p, const ExecContext& ctx);

}  // namespace qvl::ops
