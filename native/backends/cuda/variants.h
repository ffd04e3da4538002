// The CUDA backend's kernel variants, one list per op family (ops/op_families.h). It registers
// none yet: every list is empty, so a CUDA context finds no kernel (E_UNSUPPORTED) and host
// contexts never see one. ops/backends.h joins them with the other backends' lists.
#pragma once
#include "ops/op_families.h"

namespace qvl::cuda {

QVL_OP_FAMILIES(QVL_DECLARE_VARIANTS)

}  // namespace qvl::cuda
