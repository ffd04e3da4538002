// What sets one model family apart in native code. Each family is one file in families/ that
// fills a Family, plus one line in registry.cpp; the vision tower and decoder read these
// switches and never test a family's name. Architecture numbers come from config.json (TS).
#pragma once
#include <string>

namespace qvl::models {

struct VisionRecipe {
  bool rms_norm;            // RMSNorm without bias (Qwen2.5-VL) instead of LayerNorm with bias
  bool gated_mlp;           // down(act(gate(x)) * up(x)) instead of fc2(act(fc1(x)))
  const char* fc1;          // plain MLP weight names under blocks.N.
  const char* fc2;
  bool patch_bias;          // patch_embed.proj has a bias
  bool learned_pos_embed;   // pos_embed table interpolated to each grid (Qwen3-VL)
  bool window_attention;    // windows except in fullatt blocks (Qwen2.5-VL)
  const char* merger_norm;  // merger weight names under merger.
  const char* merger_fc1;
  const char* merger_fc2;
  bool deepstack;           // deepstack_merger_list after deepstack_visual_indexes blocks (Qwen3-VL)
};

struct Family {
  const char* model_type;  // config.json model_type
  VisionRecipe vision;
};

// The family of a model type; E_UNSUPPORTED listing the known ones otherwise.
const Family& find_family(const std::string& model_type);

}  // namespace qvl::models
