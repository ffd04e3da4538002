// Timed runs of one op variant, for `npm run bench`. Each returns seconds per call (best of
// `iters` after a warm-up). Inputs live in owned (huge-page) buffers, as packed weights do.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "ops/registry.h"

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

// family: "matmul" (exact) or "matmul_bf16" (the bf16 variants of precision 'fast').
struct MatmulCase { int64_t M, K, N; std::string w_dtype; std::string variant; int iters; std::string family = "matmul"; };
double matmul_seconds(const MatmulCase& c);

// GFLOP/s one instruction reaches on every pool thread at once, operands resident: kind "fma32"
// (AVX-512 f32 FMA), "dpbf16" (VDPBF16PS) or "amx-bf16" (TDPBF16PS); `rounds` per thread.
double peak_gflops(const std::string& kind, int64_t rounds);

// family: "attention" (exact) or "attention_bf16" (precision 'fast', non-causal only).
struct AttentionCase { int64_t seq, heads, kv_heads, head_dim; bool causal; std::string variant; int iters; std::string family = "attention"; };
double attention_seconds(const AttentionCase& c);

}  // namespace qvl::bench
