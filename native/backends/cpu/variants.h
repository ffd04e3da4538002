// The CPU backend's kernel variants: one list per op family (ops/op_families.h), the plain
// reference first. ops/backends.h joins them with the other backends' lists into each op family.
#pragma once
#include "ops/op_families.h"

namespace qvl::cpu {

QVL_OP_FAMILIES(QVL_DECLARE_VARIANTS)

}  // namespace qvl::cpu
