// The model families native code implements: one line each.
#include "core/error.h"
#include "models/family.h"

namespace qvl::models {

extern const Family kQwen2VL;
extern const Family kQwen25VL;
extern const Family kQwen3VL;
extern const Family kQwen3VLMoe;

const Family& find_family(const std::string& model_type) {
  static const Family* const all[] = {&kQwen2VL, &kQwen25VL, &kQwen3VL, &kQwen3VLMoe};
  std::string known;
  for (const Family* f : all) {
    if (model_type == f->model_type) return *f;
    known += (known.empty() ? "" : ", ") + std::string(f->model_type);
  }
  fail(ErrorCode::Unsupported, "model type '" + model_type + "' has no native implementation (supported: " + known + ")");
}

}  // namespace qvl::models
