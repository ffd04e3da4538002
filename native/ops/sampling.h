// Next-token choice over one logits row [V]: greedy argmax, or transformers' sampling pipeline.
//
// Order (transformers' GenerationMixin._get_logits_processor): the repetition penalty is a logits
// processor and applies in greedy mode too; temperature, top-k, top-p and min-p are warpers, applied
// only when sampling, in that order; then one draw from softmax of what is left.
//   repetition penalty  each DISTINCT id in seen_ids once: s < 0 ? s * penalty : s / penalty (fp32)
//   temperature         s / temperature (fp32 division, as torch does)
//   top-k               keep s >= the k-th largest s (ties at the threshold are all kept)
//   top-p               in descending order, keep a token while the mass strictly before it is
//                       < top_p: the smallest prefix whose mass reaches top_p (never empty)
//   min-p               keep p >= min_p * p_max
// Disabled values, as transformers skips the processor: penalty 1, temperature 1, top_k 0,
// top_p 1, min_p 0. do_sample false or temperature 0 -> greedy (penalty, then argmax).
//
// Exact definitions (what every variant reproduces bit for bit, so a seed replays a run anywhere):
// - Ranking: larger score first; of equal scores the lower token id first. Greedy returns the
//   first index of the maximum.
// - Probabilities are fixed-point: with m = max score, q_i = round(exp(s_i - m) · 2^40) (s_i - m and
//   exp in double; q = 2^40 where s_i == m, which also covers +inf and all -inf rows). All masses
//   (top-p's running sum, the draw) are exact integer sums of q, so no summation order can change a
//   decision. A token with q = 0 (probability below ~1e-12 of the best) is never drawn. Top-p
//   compares (double)cum < (double)top_p · (double)Q; min-p compares (double)q >= min_p · 2^40.
// - The draw: Qf = sum of q over the surviving tokens, u = floor(r · Qf / 2^64) with r one 64-bit
//   output of the RNG; the token is the first survivor, in ascending token id, at which the running
//   sum of q exceeds u. Each sampled token consumes exactly one RNG output; greedy consumes none.
// - NaN anywhere in the logits is an error (E_INPUT, naming the index), in greedy mode too: a NaN
//   means the model's arithmetic went wrong, and torch's argmax would silently pick it.
//
// Differences from transformers: torch draws with its own generator (a seed here does not replay a
// torch run), and probabilities below 2^-40 of the best token's are treated as 0.
#pragma once
#include <cstdint>

#include "ops/registry.h"

namespace qvl::ops {

// xoshiro256** (Blackman & Vigna), seeded through splitmix64. Owned by the caller: copy it to
// fork a run, store it to resume one.
struct SamplingRng {
  uint64_t s[4];
};
SamplingRng sampling_rng(uint64_t seed);
uint64_t sampling_rng_next(SamplingRng& rng);

struct SamplingParams {
  bool do_sample = false;
  float temperature = 1.0f;         // >= 0, finite
  int64_t top_k = 0;                // >= 0; 0 = off; larger than V = off
  float top_p = 1.0f;               // (0, 1]; 1 = off
  float min_p = 0.0f;               // [0, 1]; 0 = off
  float repetition_penalty = 1.0f;  // > 0, finite; 1 = off
};

struct SampleArgs {
  const float* logits = nullptr;  // [vocab]
  int64_t vocab = 0;              // 1 .. 2^31 - 1
  const int32_t* seen_ids = nullptr;  // ids the repetition penalty applies to (prompt + output so far)
  int64_t n_seen = 0;
  SamplingParams params;
};

using SampleFn = int32_t (*)(const SampleArgs&, SamplingRng&);

const OpFamily<SampleFn>& sampling_family();

// Throws E_INPUT on bad parameters, lengths or seen ids (NaN logits are found by the kernels).
void check_sampling(const SampleArgs& a);
// Validates and runs the best variant; returns the chosen token id.
int32_t sample_token(const SampleArgs& a, SamplingRng& rng);
// Greedy choice over raw logits: first index of the maximum; E_INPUT on NaN.
int32_t argmax_token(const float* logits, int64_t vocab);

}  // namespace qvl::ops
