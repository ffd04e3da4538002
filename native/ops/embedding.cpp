#include "ops/embedding.h"

#include "ops/backends.h"

#include <string>

#include "ops/rows_check.h"
#include "ops/backends.h"

namespace qvl::ops {

const OpFamily<EmbeddingFn>& embedding_family() {
  static const OpFamily<EmbeddingFn> family("embedding", QVL_BACKEND_VARIANTS(embedding));
  return family;
}

namespace {

template <class I>
void check_ids(const I* ids, int64_t n, int64_t vocab) {
  for (int64_t t = 0; t < n; ++t) {
    const int64_t id = static_cast<int64_t>(ids[t]);
    if (id < 0 || id >= vocab) {
      fail(ErrorCode::Input, "embedding: id at position " + std::to_string(t) + " is " + std::to_string(id) +
                                 ", outside the vocabulary [0, " + std::to_string(vocab) + ")");
    }
  }
}

}  // namespace

void check_embedding(const EmbeddingParams& p) {
  QVL_CHECK(p.ids_dtype == DType::I32 || p.ids_dtype == DType::I64, Input,
            std::string("embedding: ids must be i32 or i64 (got ") + dtype_name(p.ids_dtype) + ")");
  QVL_CHECK(p.table_dtype == DType::F32 || p.table_dtype == DType::BF16 || p.table_dtype == DType::F16, Input,
            std::string("embedding: table dtype must be f32, bf16 or f16 (got ") + dtype_name(p.table_dtype) + ")");
  check_rows("embedding", "ids", p.ids, p.n, 1, 1, dtype_size(p.ids_dtype));
  check_rows("embedding", "table", p.table, p.vocab, p.hidden, p.ldt, dtype_size(p.table_dtype));
  check_rows("embedding", "out", p.out, p.n, p.hidden, p.ldo, sizeof(float));
  if (p.ids_dtype == DType::I32) check_ids(static_cast<const int32_t*>(p.ids), p.n, p.vocab);
  else check_ids(static_cast<const int64_t*>(p.ids), p.n, p.vocab);
}

void embedding(const EmbeddingParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "embedding");
  check_embedding(p);
  embedding_family().best(ctx.device()).fn(p, ctx);
}

}  // namespace qvl::ops
