// Conversion over threads: the dtype pair is resolved once per piece, so each inner loop is a plain
// typed loop the compiler vectorises. Same per-value rounding as the reference, so bit-identical.
#include <algorithm>
#include <cstring>

#include "backends/cpu/convert_common.h"
#include "ops/convert.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kPiece = 1 << 14;

void piece(const ops::ConvertParams& p, int64_t b, int64_t e) {
  if (p.src_dtype == p.dst_dtype) {
    const size_t es = dtype_size(p.src_dtype);
    std::memcpy(static_cast<char*>(p.dst) + b * es, static_cast<const char*>(p.src) + b * es, (e - b) * es);
  } else if (p.src_dtype == DType::F32 && p.dst_dtype == DType::BF16) {
    const float* s = static_cast<const float*>(p.src);
    uint16_t* d = static_cast<uint16_t*>(p.dst);
    for (int64_t i = b; i < e; ++i) d[i] = f32_to_bf16(s[i]);
  } else if (p.src_dtype == DType::BF16 && p.dst_dtype == DType::F32) {
    const uint16_t* s = static_cast<const uint16_t*>(p.src);
    float* d = static_cast<float*>(p.dst);
    for (int64_t i = b; i < e; ++i) d[i] = bf16_to_f32(s[i]);
  } else {
    for (int64_t i = b; i < e; ++i) store_from_f32(p.dst, p.dst_dtype, i, load_as_f32(p.src, p.src_dtype, i));
  }
}

}  // namespace

void convert_generic(const ops::ConvertParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  const int64_t pieces = (p.n + kPiece - 1) / kPiece;
  pool.parallel_for(pieces, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) piece(p, k * kPiece, std::min(p.n, (k + 1) * kPiece));
  });
}

}  // namespace qvl::cpu
