// Embedding lookup in portable code: f32 rows are copied, bf16 widened by a shift, f16 rescaled
// by 2^112 (which also maps f16 subnormals exactly) with inf/NaN patched in.
#include <cstring>

#include "backends/cpu/rows_cpu.h"
#include "ops/embedding.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kGrain = 65536;

inline float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float f16_fast(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16, em = h & 0x7fffu;
  const float mag = em >= 0x7c00u ? from_bits(0x7f800000u | ((em & 0x3ffu) << 13)) : from_bits(em << 13) * 0x1p112f;
  uint32_t u;
  std::memcpy(&u, &mag, 4);
  return from_bits(u | sign);
}

void row(const void* src, DType t, float* out, int64_t n) {
  if (t == DType::F32) {
    std::memcpy(out, src, static_cast<size_t>(n) * sizeof(float));
  } else if (t == DType::BF16) {
    const uint16_t* h = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) out[i] = from_bits(static_cast<uint32_t>(h[i]) << 16);
  } else {
    const uint16_t* h = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) out[i] = f16_fast(h[i]);
  }
}

}  // namespace

void embedding_generic(const ops::EmbeddingParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  const size_t esz = dtype_size(p.table_dtype);
  parallel_rows(pool, p.n, p.hidden, kGrain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t id = p.ids_dtype == DType::I64 ? static_cast<const int64_t*>(p.ids)[t]
                                                    : static_cast<const int32_t*>(p.ids)[t];
      row(static_cast<const char*>(p.table) + id * p.ldt * esz, p.table_dtype, p.out + t * p.ldo, p.hidden);
    }
  });
}

}  // namespace qvl::cpu
