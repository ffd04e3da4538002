// Conversion over threads: the dtype pair is resolved once per piece, so each inner loop is a plain
// typed loop the compiler vectorises (f32 <-> bf16, the KV pool's pair) or one call per value. Same
// per-value rounding as the reference, so bit-identical. Integer pieces report their first value
// that does not fit; pieces past an already-found one are skipped, so the answer is the first.
#include <algorithm>
#include <atomic>
#include <cstring>

#include "backends/cpu/convert_common.h"
#include "ops/convert.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kPiece = 1 << 14;

// The first element in [b, e) that does not fit, or -1.
int64_t piece(const ops::ConvertParams& p, int64_t b, int64_t e) {
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
  } else if (integer_dtype(p.dst_dtype)) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t v = load_as_i64(p.src, p.src_dtype, i);
      if (!integer_fits(p.dst_dtype, v)) return i;
      store_from_i64(p.dst, p.dst_dtype, i, v);
    }
  } else {
    for (int64_t i = b; i < e; ++i) store_from_f32(p.dst, p.dst_dtype, i, load_as_f32(p.src, p.src_dtype, i));
  }
  return -1;
}

}  // namespace

int64_t convert_generic(const ops::ConvertParams& p, const ExecContext& ctx) {
  const int64_t pieces = (p.n + kPiece - 1) / kPiece;
  std::atomic<int64_t> first{p.n};
  ctx.pool().parallel_for(pieces, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t b = k * kPiece;
      if (b >= first.load(std::memory_order_relaxed)) return;
      const int64_t at = piece(p, b, std::min(p.n, b + kPiece));
      if (at < 0) continue;
      int64_t cur = first.load(std::memory_order_relaxed);
      while (at < cur && !first.compare_exchange_weak(cur, at)) {
      }
      return;
    }
  });
  const int64_t f = first.load();
  return f == p.n ? -1 : f;
}

}  // namespace qvl::cpu
