// The architecture numbers native code needs, already normalised by lib/model/config.ts
// (TypeScript parses config.json; C++ only computes). Field names follow transformers' configs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/quant_spec.h"

namespace qvl::models {

enum class RopeLayout {
  MRope,             // Qwen2-VL / Qwen2.5-VL: contiguous t/h/w sections
  MRopeInterleaved,  // Qwen3-VL: t/h/w interleaved across frequencies
};

struct TextSpec {
  int64_t hidden = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0;
  int64_t intermediate = 0, vocab = 0;
  double rms_eps = 1e-6, rope_theta = 1e6;
  std::vector<int64_t> mrope_section;  // sums to head_dim / 2
  RopeLayout rope_layout = RopeLayout::MRope;
  bool qkv_bias = true;       // Qwen2 decoder: q/k/v projections carry a bias
  bool o_bias = false;        // output projection bias (Qwen3 attention_bias)
  bool qk_norm = false;       // Qwen3 decoder: RMSNorm over q and k per head
  bool tie_embeddings = true;
  // Mixture of experts (Qwen3-VL-MoE); experts == 0 means dense everywhere.
  int64_t experts = 0, experts_per_tok = 0, moe_intermediate = 0;
  bool norm_topk_prob = true;
  std::vector<int64_t> sparse_layers;  // decoder layers whose MLP is the MoE block
};

struct VisionSpec {
  int64_t depth = 0, hidden = 0, heads = 0, intermediate = 0;
  int64_t in_channels = 3, patch = 14, temporal_patch = 2, merge = 2;
  int64_t out_hidden = 0;  // decoder hidden size the merger projects to
  std::string hidden_act;  // "quick_gelu", "silu", "gelu_pytorch_tanh", ...
  double norm_eps = 1e-6;
  int64_t window_size = 0;                    // Qwen2.5-VL
  std::vector<int64_t> fullatt_blocks;        // Qwen2.5-VL
  int64_t num_position_embeddings = 0;        // Qwen3-VL
  std::vector<int64_t> deepstack_indexes;     // Qwen3-VL
};

struct ModelSpec {
  std::string family;  // config.json model_type; selects a Family (family.h)
  TextSpec text;
  VisionSpec vision;
  QuantSpec quant;  // the checkpoint's quantized layers, if any
};

}  // namespace qvl::models
