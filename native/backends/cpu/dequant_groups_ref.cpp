// Dequantization, plainly: one element at a time, its group's scale (and zero point) looked up.
#include "core/dtype.h"
#include "ops/dequant_groups.h"

namespace qvl::cpu {

void dequant_groups_ref(const ops::DequantGroupsParams& p, const ExecContext&) {
  const int64_t groups = (p.in + p.group - 1) / p.group;
  for (int64_t n = 0; n < p.out; ++n) {
    for (int64_t k = 0; k < p.in; ++k) {
      const int64_t g = n * groups + k / p.group;
      const uint8_t q = p.codes[n * p.in + k];
      float v = 0;
      switch (p.format) {
        case WeightFormat::Q4: v = static_cast<float>(static_cast<int>(q) - static_cast<int>(p.zeros[g])); break;
        case WeightFormat::Q8: v = static_cast<float>(static_cast<int8_t>(q)); break;
        case WeightFormat::F8: v = f8e4m3_to_f32(q); break;
        case WeightFormat::F32:
        case WeightFormat::F16:
        case WeightFormat::BF16: break;  // refused by check_dequant_groups
      }
      p.dst[n * p.in + k] = v * p.scales[g];
    }
  }
}

}  // namespace qvl::cpu
