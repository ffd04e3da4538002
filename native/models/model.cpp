#include "models/model.h"

#include "models/family.h"

namespace qvl::models {

VlModel::VlModel(const ModelSpec& spec, const WeightNames& names, const std::vector<WeightFile>& files,
                 const LoadPlan& plan)
    : spec_(spec), precision_(plan.precision), weights_(files, spec.quant) {
  const Family& family = find_family(spec.family);
  if (plan.check_finite) weights_.check_finite(*default_pool());
  vision_ = std::make_unique<VisionTower>(spec.vision, family.vision, weights_, names.vision_prefix, plan.vision);
  text_ = std::make_unique<TextDecoder>(spec.text, weights_, names.text_prefix, names.lm_head, plan.text);
}

}  // namespace qvl::models
