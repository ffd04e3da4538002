#include "ops/weight_quant.h"

#include <atomic>
#include <vector>

#include "core/error.h"
#include "core/weight_quant.h"

namespace qvl::ops {

namespace {

void require_quantized(WeightFormat f, int64_t in, int64_t group) {
  const WeightFormatTraits& t = weight_format_traits(f);
  QVL_CHECK(t.kernel == WeightKernel::Int8Dot, Native, std::string(t.name) + " is not a group-quantized format");
  QVL_CHECK(group > 0 && group % kQuantBlock == 0 && in % group == 0, Native,
            "group " + std::to_string(group) + " must be a multiple of 32 dividing the row length " + std::to_string(in));
}

}  // namespace

std::string pack_weight_codes(WeightFormat f, const uint8_t* codes, const uint8_t* zeros, int64_t out, int64_t in,
                              int64_t group, void* dst, ThreadPool& pool) {
  require_quantized(f, in, group);
  int64_t row_bytes = 0;
  QVL_CHECK(weight_row_bytes(f, in, &row_bytes), Native, "row size overflows");
  std::atomic<int64_t> bad_row{out};
  pool.parallel_for(out, 16, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const uint8_t* q = codes + r * in;
      uint8_t* d = static_cast<uint8_t*>(dst) + r * row_bytes;
      bool ok = true;
      switch (f) {
        case WeightFormat::Q8: q8_pack_row(q, in, d); break;
        case WeightFormat::Q4:
          ok = q4_pack_row(q, in, d);
          for (int64_t g = 0; g < in / group && ok; ++g) ok = zeros[r * (in / group) + g] <= 15;
          break;
        case WeightFormat::F32:
        case WeightFormat::F16:
        case WeightFormat::BF16:
        case WeightFormat::F8: ok = false; break;
      }
      if (!ok) {
        int64_t cur = bad_row.load();
        while (r < cur && !bad_row.compare_exchange_weak(cur, r)) {
        }
      }
    }
  });
  if (bad_row.load() == out) return "";
  return "row " + std::to_string(bad_row.load()) + " holds a 4-bit code or zero point above 15";
}

void quantize_weight(const WeightRef& src, WeightFormat f, int64_t group, void* data, float* scales, uint8_t* zeros,
                     ThreadPool& pool) {
  require_quantized(f, src.in, group);
  int64_t row_bytes = 0;
  QVL_CHECK(weight_row_bytes(f, src.in, &row_bytes), Native, "row size overflows");
  const WeightFormatTraits& st = weight_format_traits(src.format);
  const int64_t groups = src.in / group;
  pool.parallel_for(src.out, 8, [&](int64_t b, int64_t e) {
    std::vector<float> row(static_cast<size_t>(src.in));
    for (int64_t r = b; r < e; ++r) {
      st.dequantize_row(src, r, 0, src.in, row.data());
      uint8_t* d = static_cast<uint8_t*>(data) + r * row_bytes;
      switch (f) {
        case WeightFormat::Q8: q8_quantize(row.data(), src.in, group, d, scales + r * groups); break;
        case WeightFormat::Q4: q4_quantize(row.data(), src.in, group, d, scales + r * groups, zeros + r * groups); break;
        case WeightFormat::F32:
        case WeightFormat::F16:
        case WeightFormat::BF16:
        case WeightFormat::F8: break;  // refused by require_quantized
      }
    }
  });
}

}  // namespace qvl::ops
