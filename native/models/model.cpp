#include "models/model.h"

#include "models/family.h"
#include "models/weight_cache.h"

namespace qvl::models {

VlModel::VlModel(const ModelSpec& spec, const WeightNames& names, const std::vector<WeightFile>& files,
                 const LoadPlan& plan)
    : spec_(spec), precision_(plan.precision), weights_(files, spec.quant) {
  const Family& family = find_family(spec.family);
  std::unique_ptr<WeightCache> cache;
  if (!plan.cache_path.empty() && (plan.text.quantize || plan.vision.quantize)) {
    WeightCache::Scan scan;
    if (plan.check_finite) scan = [this](const std::string& name) { weights_.check_finite(name, *default_pool()); };
    cache = std::make_unique<WeightCache>(plan.cache_path, plan.cache_key, std::move(scan));
  }
  // What the cache vouches for is skipped here: a hit then reads the cache, not the checkpoint's
  // quantized tensors as well (a 2B q4 hit from a cold page cache: 13-16 s before, 6-8 s after).
  if (plan.check_finite) weights_.check_finite(*default_pool(), cache ? cache->vouched() : std::set<std::string>{});
  WeightPlan vision_plan = plan.vision, text_plan = plan.text;
  const std::string big = weights_.largest(names.text_prefix);
  const Tensor* t = weights_.find(big);
  probe_ = t && placement_of(*t->storage()) == Placement::Mmap ? checkpoint_probe(t->raw(), t->nbytes(), weights_.file_of(big))
                                                               : placement_probe();
  const PlacementChoice placed = choose_placement(plan.placement, probe_);
  text_plan.copy_stored = placed.copy_stored;
  text_plan.pages = placed.pages;
  if (cache) vision_plan.cache = text_plan.cache = cache.get();
  vision_ = std::make_unique<VisionTower>(spec.vision, family.vision, weights_, names.vision_prefix, vision_plan);
  text_ = std::make_unique<TextDecoder>(spec.text, weights_, names.text_prefix, names.lm_head, text_plan);
  if (cache) {
    cache->settle();
    const bool hit = cache->hit();
    const bool current = cache->finish();  // on a hit, may mark the file as scanned
    cache_status_ = hit ? "hit" : current ? "written" : "unwritten";
  }
}

}  // namespace qvl::models
