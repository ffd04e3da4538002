// Timed runs of one op variant, for `npm run bench`. Each returns seconds per call (best of
// `iters` after a warm-up). Inputs live in owned (huge-page) buffers, as packed weights do.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/weight_format.h"
#include "ops/registry.h"
#include "ops/sampling.h"

namespace qvl::bench {

// The variant of `family` named `name`, checked to run on this CPU (`who` names the caller in errors).
template <class Fn>
const ops::Variant<Fn>& find_variant(const ops::OpFamily<Fn>& family, const std::string& name, const std::string& who) {
  std::string have;
  for (const auto& v : family.variants()) {
    if (name == v.name) {
      QVL_CHECK(isa_available(v.isa), Unsupported,
                who + ": this CPU cannot run " + family.name() + " variant '" + name + "'");
      return v;
    }
    have += std::string(have.empty() ? "" : ", ") + v.name;
  }
  fail(ErrorCode::Input, who + ": unknown " + family.name() + " variant '" + name + "' (have: " + have + ")");
}

// Deterministic, cheap, roughly N(0,1)-sized values: timings do not depend on them, but zeros or
// denormals could.
void fill_values(float* out, size_t n, uint64_t seed);

// w_dtype: a weight format name (f32, bf16, f16, fp8, q8, q4); quantized weights use the group the
// loader gives K inputs (core/weight_quant.h, q_load_group). The weights rotate through copies
// totalling about spill_bytes (more than the last-level cache).
// family: "matmul" (exact) or "matmul_bf16" (the bf16 variants of precision 'fast').
struct MatmulCase {
  int64_t M, K, N;
  std::string w_dtype;
  std::string variant;
  int iters;
  int64_t spill_bytes = int64_t{256} << 20;
  std::string family = "matmul";
  // q8/q4 on an int8-dot variant: its row tiles even where it would run its GEMM (QGemmOff).
  bool row_tiles = false;
};
double matmul_seconds(const MatmulCase& c);
// Bytes of an [N, K] weight in format f, scales and zero points included (what a matmul reads).
double weight_bytes(WeightFormat f, int64_t N, int64_t K);
// Seconds to read `bytes` of owned memory once on every pool thread (best of iters, after a
// warm-up): the memory-bandwidth floor a decode matmul is measured against.
double read_seconds(int64_t bytes, int iters);

// GFLOP/s one instruction reaches on every pool thread at once, operands resident: kind "fma32"
// (AVX-512 f32 FMA), "dpbf16" (VDPBF16PS) or "amx-bf16" (TDPBF16PS); `rounds` per thread.
double peak_gflops(const std::string& kind, int64_t rounds);

// E_INPUT (naming `who`) unless heads, kv_heads and head_dim are in [1, 1024] and iters in [1, 100000].
void check_attention_case(const char* who, int64_t heads, int64_t kv_heads, int64_t head_dim, int iters);

// family: "attention" (exact) or "attention_bf16" (precision 'fast', non-causal only).
struct AttentionCase { int64_t seq, heads, kv_heads, head_dim; bool causal; std::string variant; int iters; std::string family = "attention"; };
double attention_seconds(const AttentionCase& c);

// One decode step's attention (tests/bench_attention_decode.cpp): `sequences` sequences, each one
// new query row against `context` cached keys, in every one of `layers` layers; the cache stored as
// kv_dtype ("f32" or "bf16", as the KV pool stores it).
struct AttentionDecodeCase {
  int64_t context, heads, kv_heads, head_dim, layers, sequences;
  std::string variant;
  int iters;
  std::string kv_dtype = "f32";
  std::string family = "attention";  // or attention_bf16_decode
};
double attention_decode_seconds(const AttentionDecodeCase& c);
// Bytes of cached keys and values that step reads.
double kv_decode_bytes(const AttentionDecodeCase& c);

// One sampling variant choosing a token from a logits row (tests/bench_sampling.cpp): row "flat"
// (no dominant tokens) or "peaked" (a dozen far above the rest).
struct SamplingCase { int64_t vocab; std::string row; ops::SamplingParams params; std::string variant; int iters; };
double sampling_seconds(const SamplingCase& c);

// One quantize_row variant over `rows` rows of n weight-like values (format "q8" or "q4", group a
// multiple of 32 dividing n), on the calling thread: seconds per pass over all rows.
struct QuantizeRowCase { std::string format; int64_t rows, n, group; std::string variant; int iters; };
double quantize_row_seconds(const QuantizeRowCase& c);

}  // namespace qvl::bench
