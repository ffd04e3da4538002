// A loaded vision-language model: the checkpoint's weights, its vision tower and its decoder.
// The family (family.h, registry.cpp) gives the structural switches; ModelSpec the numbers.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/arena_pool.h"
#include "core/exec_context.h"
#include "models/spec.h"
#include "models/text.h"
#include "models/vision.h"
#include "models/weights.h"

namespace qvl::models {

struct WeightNames {
  std::string text_prefix;    // "model." or "model.language_model."
  std::string vision_prefix;  // "visual." or "model.visual."
  std::string lm_head;        // "lm_head", the module: Linear adds ".weight" (unused when embeddings are tied)
};

// How the loader treats the checkpoint's weights.
struct LoadPlan {
  // Refuse weights holding NaN or infinity (WeightStore::check_finite) before any part of the model
  // is built from them; those a weight cache vouches for are not read (models/weight_cache.h).
  bool check_finite = true;
  WeightPlan text;    // the language model's linear weights, LM head included (tied or not)
  WeightPlan vision;  // the vision tower's linear weights
  // What the contexts of this model's vision encodes and forward passes carry
  // (core/exec_context.h; loadModel's `precision` option).
  Precision precision = Precision::Exact;
  // The converted-weights cache file and its key (empty path: none); see models/weight_cache.h.
  std::string cache_path, cache_key;
  // Where the language model's linear weights live (core/placement.h); none: chosen from the
  // placement probe's figures by choose_placement.
  std::optional<Placement> placement;
};

class VlModel {
 public:
  VlModel(const ModelSpec& spec, const WeightNames& names, const std::vector<WeightFile>& files, const LoadPlan& plan);
  const ModelSpec& spec() const { return spec_; }
  const VisionTower& vision() const { return *vision_; }
  const TextDecoder& text() const { return *text_; }
  uint64_t mapped_bytes() const { return weights_.mapped_bytes(); }
  // The weight format of the language model's linear layers (the first layer's q projection).
  WeightFormat text_weight_format() const { return text_->weight_format(); }
  Precision precision() const { return precision_; }
  // With a cache: "hit" (every converted weight came from it), "written" (converted and saved)
  // or "unwritten" (converted; saving failed); "none" without one.
  const std::string& cache_status() const { return cache_status_; }
  // Where the language model's linear weights ended up (none: a kind of memory that is neither
  // mapped nor owned).
  std::optional<Placement> text_placement() const { return text_->weight_placement(); }
  // The placement probe this load chose by: measured with this checkpoint's largest
  // language-model tensor as the mapped buffer where that is mapped and large enough, else the
  // process's.
  const PlacementProbe& probe() const { return probe_; }
  // Scratch arenas for this model's vision encodes, kept between them (core/arena_pool.h).
  ArenaPool& vision_arenas() const { return vision_arenas_; }

 private:
  ModelSpec spec_;
  Precision precision_;
  WeightStore weights_;
  std::unique_ptr<VisionTower> vision_;
  std::unique_ptr<TextDecoder> text_;
  std::string cache_status_ = "none";
  PlacementProbe probe_;
  // One idle arena of up to 256 MiB: the 2B tower's scratch peaks at 60 MiB for a 448x448 image
  // (kept) and at 378 MiB for 1288x980 (freed: its faults are under 1% of that encode).
  mutable ArenaPool vision_arenas_{1, size_t{256} << 20};
};

}  // namespace qvl::models
