#include "ops/convert.h"

#include <string>

#include "ops/rows_check.h"

namespace qvl::cpu {
void convert_ref(const ops::ConvertParams& p, ThreadPool& pool);
void convert_generic(const ops::ConvertParams& p, ThreadPool& pool);
}  // namespace qvl::cpu

namespace qvl::ops {

const OpFamily<ConvertFn>& convert_family() {
  static const OpFamily<ConvertFn> family("convert", {
      {"reference", Isa::Reference, &cpu::convert_ref},
      {"generic", Isa::Generic, &cpu::convert_generic},
  });
  return family;
}

namespace {
bool half_or_f32(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; }
}  // namespace

void check_convert(const ConvertParams& p) {
  QVL_CHECK(half_or_f32(p.src_dtype) && half_or_f32(p.dst_dtype) &&
                (p.src_dtype == DType::F32 || p.dst_dtype == DType::F32),
            Input,
            std::string("convert: ") + dtype_name(p.src_dtype) + " -> " + dtype_name(p.dst_dtype) +
                " is not supported (one side must be f32, the other f32, bf16 or f16)");
  QVL_CHECK(p.n >= 0, Input, "convert: count must be >= 0 (got " + std::to_string(p.n) + ")");
  if (p.n == 0) return;
  check_rows("convert", "src", p.src, 1, p.n, p.n, dtype_size(p.src_dtype));
  check_rows("convert", "dst", p.dst, 1, p.n, p.n, dtype_size(p.dst_dtype));
  const auto* s = static_cast<const char*>(p.src);
  const auto* d = static_cast<const char*>(p.dst);
  const int64_t sb = p.n * static_cast<int64_t>(dtype_size(p.src_dtype)), db = p.n * static_cast<int64_t>(dtype_size(p.dst_dtype));
  QVL_CHECK(d + db <= s || s + sb <= d, Input, "convert: dst overlaps src");
}

void convert(const ConvertParams& p, ThreadPool& pool) {
  check_convert(p);
  if (p.n == 0) return;
  convert_family().best().fn(p, pool);
}

}  // namespace qvl::ops
