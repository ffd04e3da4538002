// The list of op families. Adding an op family = one include and one line here.
#include "ops/registry.h"

namespace qvl::ops {

std::vector<const OpFamilyBase*> op_catalog() {
  return {
  };
}

}  // namespace qvl::ops
