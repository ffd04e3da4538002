// Conversion, plainly: one value at a time, through f32 (or int64 between integer dtypes); a copy
// of the bytes when the dtypes are the same.
#include <cstring>

#include "backends/cpu/convert_common.h"
#include "ops/convert.h"

namespace qvl::cpu {

int64_t convert_ref(const ops::ConvertParams& p, const ExecContext&) {
  const size_t es = dtype_size(p.src_dtype);
  for (int64_t i = 0; i < p.n; ++i) {
    if (p.src_dtype == p.dst_dtype) {
      std::memcpy(static_cast<char*>(p.dst) + i * es, static_cast<const char*>(p.src) + i * es, es);
    } else if (integer_dtype(p.dst_dtype)) {
      const int64_t v = load_as_i64(p.src, p.src_dtype, i);
      if (!integer_fits(p.dst_dtype, v)) return i;
      store_from_i64(p.dst, p.dst_dtype, i, v);
    } else {
      store_from_f32(p.dst, p.dst_dtype, i, load_as_f32(p.src, p.src_dtype, i));
    }
  }
  return -1;
}

}  // namespace qvl::cpu
