// The backends that register kernel variants, joined into each op family's list in this order
// (the host reference first). Adding a device: its backend folder provides one
// `<family>_variants()` per op family, and this list gains one entry.
#pragma once
#include "backends/cpu/variants.h"
#include "backends/cuda/variants.h"
#include "ops/registry.h"

#define QVL_BACKEND_VARIANTS(family) \
  ::qvl::ops::join_variants({::qvl::cpu::family##_variants(), ::qvl::cuda::family##_variants()})
