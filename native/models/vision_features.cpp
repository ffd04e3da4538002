#include "models/vision_features.h"

#include <cstring>

#include "core/error.h"

namespace qvl::models {

namespace {

// [a; b] along rows; both [rows, width] contiguous f32.
Tensor stack_rows(const Tensor& a, const Tensor& b) {
  QVL_CHECK(a.ndim() == 2 && b.ndim() == 2 && a.dim(1) == b.dim(1), Input,
            "vision features of different widths cannot be joined: " + a.shape_string() + " and " + b.shape_string());
  QVL_CHECK(a.dtype() == DType::F32 && b.dtype() == DType::F32 && a.is_contiguous() && b.is_contiguous(), Input,
            "vision features must be contiguous f32");
  Tensor out = Tensor::empty(DType::F32, {a.dim(0) + b.dim(0), a.dim(1)});
  if (a.nbytes() > 0) std::memcpy(out.raw(), a.raw(), a.nbytes());
  if (b.nbytes() > 0) std::memcpy(static_cast<char*>(out.raw()) + a.nbytes(), b.raw(), b.nbytes());
  return out;
}

}  // namespace

VisionFeatures join_vision_features(const VlModel& model, VisionOutput* images, VisionOutput* videos) {
  QVL_CHECK(images || videos, Input, "vision features need images or videos");
  VisionFeatures f;
  f.model = &model;
  if (images && videos) {
    QVL_CHECK(images->deepstack.size() == videos->deepstack.size(), Input,
              "the images' and videos' DeepStack levels differ");
    f.embeds = stack_rows(images->embeds, videos->embeds);
    for (size_t l = 0; l < images->deepstack.size(); ++l) f.deepstack.push_back(stack_rows(images->deepstack[l], videos->deepstack[l]));
    f.image_tokens = images->embeds.dim(0);
    return f;
  }
  VisionOutput& only = images ? *images : *videos;
  f.embeds = std::move(only.embeds);
  f.deepstack = std::move(only.deepstack);
  f.image_tokens = images ? f.embeds.dim(0) : 0;
  return f;
}

}  // namespace qvl::models
