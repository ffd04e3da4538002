// The vision features of one prompt, held natively from the vision tower to the prefill: the
// merged embeddings of all its images, then all its videos, joined in that row order, and (Qwen3-VL)
// the DeepStack features laid out the same way. On the generation path they never travel to JS:
// JS holds a handle and the row counts it checks placeholder tokens against.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "models/vision.h"

namespace qvl::models {

class VlModel;

struct VisionFeatures {
  const VlModel* model = nullptr;  // the model that made them: a step of another model refuses them
  Tensor embeds;                   // [tokens, hidden]
  std::vector<Tensor> deepstack;   // per level, [tokens, hidden]
  int64_t image_tokens = 0;        // rows [0, image_tokens) are the images', the rest the videos'

  int64_t tokens() const { return embeds.defined() ? embeds.dim(0) : 0; }
  int64_t hidden() const { return embeds.defined() ? embeds.dim(1) : 0; }
  int64_t levels() const { return static_cast<int64_t>(deepstack.size()); }
};

// Joins the vision tower's output for a prompt's images (null: none) and videos (null: none):
// image rows first. One run is taken as it is, without a copy. E_INPUT when neither is given or
// the two disagree in width or DeepStack levels.
VisionFeatures join_vision_features(const VlModel& model, VisionOutput* images, VisionOutput* videos);

}  // namespace qvl::models
