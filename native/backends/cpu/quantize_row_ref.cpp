// The reference is core's own scalar quantizers, the ones the loader used before the fast rows.
#include "core/weight_quant.h"
#include "ops/quantize_row.h"

namespace qvl::cpu {

int64_t quantize_row_ref(const ops::QuantizeRowParams& p) {
  switch (p.format) {
    case WeightFormat::Q8: return q8_quantize(p.src, p.n, p.group, p.dst, p.scales);
    case WeightFormat::Q4: return q4_quantize(p.src, p.n, p.group, p.dst, p.scales, p.zeros);
    case WeightFormat::F32:
    case WeightFormat::F16:
    case WeightFormat::BF16:
    case WeightFormat::F8: return -1;  // refused by check_quantize_row
  }
  return -1;
}

}  // namespace qvl::cpu
