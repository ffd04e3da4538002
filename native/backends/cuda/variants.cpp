// The CUDA backend registers no kernels yet; its lists are where its variants will go
// ({"name", Device::Cuda, Isa::Cuda, &fn, formats}), replacing the empty definitions below.
#include "backends/cuda/variants.h"

namespace qvl::cuda {

#define QVL_NO_VARIANTS(family, Fn) \
  std::vector<ops::Variant<ops::Fn>> family##_variants() { return {}; }
QVL_OP_FAMILIES(QVL_NO_VARIANTS)
#undef QVL_NO_VARIANTS

}  // namespace qvl::cuda
