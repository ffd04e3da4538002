// Rotary position embedding, Qwen's "rotate_half" convention. For a head vector x of dim D with
// rotary dim R <= D (R even, dims >= R untouched) and half = R/2, per token t and i < half:
//   out[i]        = x[i]·cos[t][i] - x[i+half]·sin[t][i]
//   out[i + half] = x[i+half]·cos[t][i] + x[i]·sin[t][i]
// The cos/sin tables [T, half] are built once per forward pass by one of the table builders below
// (angle[t][i] = position(t, i) · inv_freq[i]) and shared by every layer; rope_apply rotates q and
// k in place. With a fused qkv buffer the q and k heads are adjacent, so one call covers both.
#pragma once
#include <cstdint>

#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

// How angles are rounded. Transformers computes inv_freq = 1/theta^(2i/R) and position·inv_freq in
// float32 before taking cos/sin; at position p that rounding moves the angle by up to ~p·1e-7 rad,
// far more than fp32 noise elsewhere, so matching it is what makes outputs agree with the reference
// implementation. Exact keeps every step in double (the mathematically intended angle).
enum class RopeAngles { Transformers, Exact };

struct RopeFreqs {
  double theta = 10000.0;  // rope_theta
  int64_t rotary_dim = 0;  // R: even, the dims the table rotates (table width half = R/2)
  RopeAngles angles = RopeAngles::Transformers;
};

// Table builders: write cos and sin, each [T, R/2] row-major (row stride R/2). cos/sin are evaluated
// in double and stored as float. Throw E_INPUT on inconsistent sizes.

// Plain 1-D RoPE: angle[t][i] = positions[t] · theta^(-2i/R).
void rope_table_1d(const int64_t* positions, int64_t T, const RopeFreqs& f, float* cos, float* sin);

// Qwen2-VL / Qwen2.5-VL M-RoPE. positions is [3][T] (temporal, height, width rows, as transformers'
// position_ids[:, b, :]); sections = mrope_section {s_t, s_h, s_w}, summing to R/2. Frequency i takes
// its position from axis t for i < s_t, h for i < s_t + s_h, w for the rest (the same split is
// applied to both halves of the head, matching apply_multimodal_rotary_pos_emb).
void rope_table_mrope(const int64_t* positions, int64_t T, const int64_t sections[3], const RopeFreqs& f, float* cos,
                      float* sin);

// Qwen3-VL interleaved M-RoPE (apply_interleaved_mrope): frequency i uses axis h when i % 3 == 1 and
// i < 3·s_h, axis w when i % 3 == 2 and i < 3·s_w, axis t otherwise. sections sum to R/2.
void rope_table_mrope_interleaved(const int64_t* positions, int64_t T, const int64_t sections[3], const RopeFreqs& f,
                                  float* cos, float* sin);

// The axis (0 = t, 1 = h, 2 = w) each of the half = R/2 frequencies takes its position from:
// rope_table_mrope's split when interleaved is false, rope_table_mrope_interleaved's otherwise.
// Throws E_INPUT unless the sections are >= 0 and sum to half.
void rope_mrope_axes(const int64_t sections[3], int64_t half, bool interleaved, uint8_t* axis);

// Vision tower 2-D RoPE (Qwen2-VL, Qwen2.5-VL, Qwen3-VL VisionRotaryEmbedding(head_dim/2)), applied
// with R = head_dim = f.rotary_dim (a multiple of 4). With q = R/4 and inv[j] = theta^(-4j/R), j < q:
// row t is [hpos[t]·inv[0..q), wpos[t]·inv[0..q)], i.e. half = R/2 entries.
void rope_table_vision_2d(const int64_t* hpos, const int64_t* wpos, int64_t T, const RopeFreqs& f, float* cos,
                          float* sin);

struct RopeParams {
  float* x = nullptr;  // [T, H, D], row stride ld (elements, >= H·D), rotated in place
  int64_t T = 0, H = 0, D = 0, ld = 0;
  int64_t rotary_dim = 0;     // R: even, 2 <= R <= D
  const float* cos = nullptr;  // [T, R/2]
  const float* sin = nullptr;  // [T, R/2]
};

using RopeFn = void (*)(const RopeParams&, const ExecContext&);

const OpFamily<RopeFn>& rope_family();

// Throws E_INPUT unless p describes a consistent problem (the kernels assume it does).
void check_rope(const RopeParams& p);
// Validates (E_INPUT) and runs the best variant.
void rope_apply(const RopeParams& p, const ExecContext& ctx);

}  // namespace qvl::ops
