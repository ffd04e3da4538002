#include "models/model.h"

#include "models/family.h"

namespace qvl::models {

VlModel::VlModel(const ModelSpec& spec, const WeightNames& names, const std::vector<WeightFile>& files,
                 bool check_finite, Precision precision)
    : spec_(spec), precision_(precision), weights_(files) {
  const Family& family = find_family(spec.family);
  if (check_finite) weights_.check_finite(*default_pool());
  vision_ = std::make_unique<VisionTower>(spec.vision, family.vision, weights_, names.vision_prefix);
  text_ = std::make_unique<TextDecoder>(spec.text, weights_, names.text_prefix, names.lm_head);
}

}  // namespace qvl::models
