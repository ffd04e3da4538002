// Conversion, plainly: one value at a time through f32.
#include "backends/cpu/convert_common.h"
#include "ops/convert.h"

namespace qvl::cpu {

void convert_ref(const ops::ConvertParams& p, const ExecContext&) {
  for (int64_t i = 0; i < p.n; ++i) store_from_f32(p.dst, p.dst_dtype, i, load_as_f32(p.src, p.src_dtype, i));
}

}  // namespace qvl::cpu
