#include "models/model.h"

#include "core/error.h"

namespace qvl::models {

namespace {
// Model types with a native implementation. Adding a family: one entry here plus its
// switches in VisionSpec/TextSpec (set by its lib/families file).
const char* const kFamilies[] = {"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe"};
}  // namespace

void check_supported_family(const std::string& family) {
  std::string known;
  for (const char* f : kFamilies) {
    if (family == f) return;
    known += known.empty() ? f : std::string(", ") + f;
  }
  fail(ErrorCode::Unsupported, "model type '" + family + "' has no native implementation yet (supported: " + known + ")");
}

VlModel::VlModel(const ModelSpec& spec, const WeightNames& names, const std::vector<WeightFile>& files)
    : spec_(spec), weights_(files) {
  check_supported_family(spec.family);
  vision_ = std::make_unique<VisionTower>(spec.vision, weights_, names.vision_prefix);
  text_ = std::make_unique<TextDecoder>(spec.text, weights_, names.text_prefix, names.lm_head);
}

}  // namespace qvl::models
