#include "ops/convert.h"

#include <string>

#include "ops/backends.h"
#include "ops/rows_check.h"

namespace qvl::ops {

const OpFamily<ConvertFn>& convert_family() {
  static const OpFamily<ConvertFn> family("convert", QVL_BACKEND_VARIANTS(convert));
  return family;
}

namespace {
bool half_or_f32(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; }
bool integer(DType t) { return t == DType::I32 || t == DType::I64 || t == DType::U8; }
}  // namespace

void check_convert(const ConvertParams& p) {
  QVL_CHECK(p.src_dtype == p.dst_dtype || half_or_f32(p.dst_dtype) || (integer(p.src_dtype) && integer(p.dst_dtype)),
            Input,
            std::string("convert: ") + dtype_name(p.src_dtype) + " -> " + dtype_name(p.dst_dtype) +
                " is not supported (to f32, bf16 or f16 from any dtype, integer to integer, or a copy)");
  QVL_CHECK(p.n >= 0, Input, "convert: count must be >= 0 (got " + std::to_string(p.n) + ")");
  if (p.n == 0) return;
  check_rows("convert", "src", p.src, 1, p.n, p.n, dtype_size(p.src_dtype));
  check_rows("convert", "dst", p.dst, 1, p.n, p.n, dtype_size(p.dst_dtype));
  const auto* s = static_cast<const char*>(p.src);
  const auto* d = static_cast<const char*>(p.dst);
  const int64_t sb = p.n * static_cast<int64_t>(dtype_size(p.src_dtype)), db = p.n * static_cast<int64_t>(dtype_size(p.dst_dtype));
  QVL_CHECK(d + db <= s || s + sb <= d, Input, "convert: dst overlaps src");
}

int64_t convert(const ConvertParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "convert");
  check_convert(p);
  if (p.n == 0) return -1;
  return convert_family().best(ctx.device()).fn(p, ctx);
}

}  // namespace qvl::ops
