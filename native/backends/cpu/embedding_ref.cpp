// Plain embedding lookup: one element at a time through the scalar conversions. Single-threaded.
#include "ops/embedding.h"

namespace qvl::cpu {

void embedding_ref(const ops::EmbeddingParams& p, const ExecContext& /*ctx*/) {
  for (int64_t t = 0; t < p.n; ++t) {
    const int64_t id = p.ids_dtype == DType::I64 ? static_cast<const int64_t*>(p.ids)[t]
                                                  : static_cast<const int32_t*>(p.ids)[t];
    float* out = p.out + t * p.ldo;
    for (int64_t i = 0; i < p.hidden; ++i) {
      const int64_t e = id * p.ldt + i;
      switch (p.table_dtype) {
        case DType::BF16: out[i] = bf16_to_f32(static_cast<const uint16_t*>(p.table)[e]); break;
        case DType::F16: out[i] = f16_to_f32(static_cast<const uint16_t*>(p.table)[e]); break;
        case DType::F32: out[i] = static_cast<const float*>(p.table)[e]; break;
        case DType::I32:
        case DType::I64:
        case DType::F8E4M3:
        case DType::U8: fail(ErrorCode::Native, std::string("embedding: table of ") + dtype_name(p.table_dtype));
      }
    }
  }
}

}  // namespace qvl::cpu
