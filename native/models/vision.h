// The vision tower (ViT) of the Qwen VL families: patch embedding, 2-D rotary attention blocks
// confined to each image (or video frame), and the 2x2 patch merger that projects to the
// decoder's hidden size. Family differences are the switches of a VisionRecipe.
#pragma once
#include <array>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/cancel.h"
#include "core/tensor.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "models/family.h"
#include "models/layers.h"
#include "models/linear.h"
#include "models/rope_cache.h"
#include "models/spec.h"
#include "models/trace.h"
#include "models/vision_window.h"
#include "models/weights.h"

namespace qvl::models {

struct VisionInput {
  const float* pixels = nullptr;  // [n_patches, C·T·P·P], as the processor flattens them
  int64_t n_patches = 0;
  int64_t patch_dim = 0;
  std::vector<std::array<int64_t, 3>> grids;  // (t, h, w) per image or video, in patch units
  const CancelToken* cancel = nullptr;        // polled before each block and merger
};

struct VisionOutput {
  Tensor embeds;                  // [n_patches / merge², out_hidden]
  std::vector<Tensor> deepstack;  // Qwen3-VL: one [n_patches / merge², out_hidden] per index
};

class VisionTower {
 public:
  VisionTower(const VisionSpec& spec, const VisionRecipe& recipe, const WeightStore& w, const std::string& prefix,
              const WeightPlan& plan = {});
  // Throws E_INPUT when the grids and the patch count disagree.
  VisionOutput forward(const VisionInput& in, const ExecContext& ctx, Trace* trace) const;

 private:
  struct Block {
    NormLayer norm1, norm2;
    Linear qkv, proj;
    Linear fc1, fc2;         // plain MLP (Qwen2-VL): fc2(act(fc1(x)))
    Linear gate, up, down;   // gated MLP (Qwen2.5-VL): down(silu(gate(x)) * up(x))
    bool gated = false;
  };
  // Norm, then [n, E] viewed as [n / m², m²·E] through fc1 -> GELU -> fc2. A post-shuffle merger
  // (Qwen3-VL DeepStack) normalises the concatenated m²·E row instead of each patch.
  struct Merger {
    NormLayer norm;
    Linear fc1, fc2;
    bool postshuffle = false;
  };
  Merger load_merger(const WeightStore& w, const std::string& p, const std::string& norm, const std::string& fc1,
                     const std::string& fc2, bool postshuffle, const WeightPlan& plan) const;

  // What an encode derives from its grid list alone, kept for the last few grid lists: the frame
  // bounds, the window layout (window attention only) and the 2-D RoPE tables in the order the
  // blocks see the patches.
  struct GridLayout {
    std::vector<std::array<int64_t, 3>> grids;
    int64_t n = 0;                // patches
    std::vector<int64_t> frames;  // patch-row bounds of the frames
    WindowLayout window;
    Tensor cos, sin;  // [n, head_dim / 2]
  };
  // The cached layout of `grids`, built on a miss (E_INPUT on a bad grid).
  std::shared_ptr<const GridLayout> grid_layout(const std::vector<std::array<int64_t, 3>>& grids, const ExecContext& ctx) const;
  std::shared_ptr<const GridLayout> build_layout(const std::vector<std::array<int64_t, 3>>& grids, const ExecContext& ctx) const;

  void run_block(const Block& b, float* x, int64_t n, const float* cos, const float* sin,
                 const std::vector<int64_t>& seg_bounds, const ExecContext& ctx, const CancelToken* cancel) const;
  Tensor run_merger(const Merger& m, const float* x, int64_t n, const ExecContext& ctx) const;

  VisionSpec spec_;
  VisionRecipe recipe_;
  int64_t head_dim_ = 0;
  Linear patch_embed_;
  Tensor pos_embed_;  // Qwen3-VL: learned [num_position_embeddings, E]
  std::vector<Block> blocks_;
  Merger merger_;
  std::vector<Merger> deepstack_;  // Qwen3-VL: one per deepstack index
  // 2-D RoPE: per-position rows of head_dim/4 frequencies; output columns [0, q) follow the patch
  // row (axis 0), [q, 2q) its column (axis 1), both reading table columns 0..q-1.
  std::vector<uint8_t> rope_axis_;
  std::vector<int32_t> rope_column_;
  RopeRows rope_rows_;
  mutable std::mutex layouts_mu_;
  mutable std::list<std::shared_ptr<const GridLayout>> layouts_;  // most recently used first
};

}  // namespace qvl::models
