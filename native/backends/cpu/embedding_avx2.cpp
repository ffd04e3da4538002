// Embedding lookup, 8 lanes: one vector conversion per 8 elements, the last hidden % 8 in scalar.
#include "backends/cpu/rows_cpu.h"
#include "backends/cpu/vec_math.h"
#include "ops/embedding.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kGrain = 65536;

template <DType T>
QVL_TARGET_AVX2 void row(const void* src, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, vm::load8_avx2<T>(src, i));
  for (; i < n; ++i) out[i] = vm::load1<T>(src, i);
}

}  // namespace

void embedding_avx2(const ops::EmbeddingParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  const auto fn = p.table_dtype == DType::BF16 ? &row<DType::BF16> : p.table_dtype == DType::F16 ? &row<DType::F16> : &row<DType::F32>;
  const size_t esz = dtype_size(p.table_dtype);
  parallel_rows(pool, p.n, p.hidden, kGrain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t id = p.ids_dtype == DType::I64 ? static_cast<const int64_t*>(p.ids)[t]
                                                    : static_cast<const int32_t*>(p.ids)[t];
      fn(static_cast<const char*>(p.table) + id * p.ldt * esz, p.out + t * p.ldo, p.hidden);
    }
  });
}

}  // namespace qvl::cpu
