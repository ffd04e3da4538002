// Timed runs of one op variant, for `npm run bench`. Each returns seconds per call (best of
// `iters` after a warm-up). Inputs live in owned (huge-page) buffers, as packed weights do.
#pragma once
#include <cstdint>
#include <string>

namespace qvl::bench {

struct MatmulCase { int64_t M, K, N; std::string w_dtype; std::string variant; int iters; };
double matmul_seconds(const MatmulCase& c);

struct AttentionCase { int64_t seq, heads, kv_heads, head_dim; bool causal; std::string variant; int iters; };
double attention_seconds(const AttentionCase& c);

}  // namespace qvl::bench
