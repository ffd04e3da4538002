// Non-finite scan, plainly: one value at a time, widened to f32 and tested with std::isfinite.
#include <cmath>

#include "core/dtype.h"
#include "ops/finite.h"

namespace qvl::cpu {

int64_t finite_ref(const ops::FiniteParams& p, const ExecContext&) {
  for (int64_t i = 0; i < p.n; ++i) {
    // check_finite has refused every dtype but these four.
    const float v = p.dtype == DType::F32      ? static_cast<const float*>(p.x)[i]
                    : p.dtype == DType::BF16   ? bf16_to_f32(static_cast<const uint16_t*>(p.x)[i])
                    : p.dtype == DType::F8E4M3 ? f8e4m3_to_f32(static_cast<const uint8_t*>(p.x)[i])
                                               : f16_to_f32(static_cast<const uint16_t*>(p.x)[i]);
    if (!std::isfinite(v)) return i;
  }
  return -1;
}

}  // namespace qvl::cpu
