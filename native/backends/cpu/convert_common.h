// One value of a conversion check_convert accepted (one side f32), through core/dtype.h's rounding.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/dtype.h"

namespace qvl::cpu {

inline float load_as_f32(const void* src, DType t, int64_t i) {
  switch (t) {
    case DType::F32:
      return static_cast<const float*>(src)[i];
    case DType::BF16:
      return bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
    case DType::F16:
      return f16_to_f32(static_cast<const uint16_t*>(src)[i]);
    case DType::I32:
    case DType::I64:
    case DType::F8E4M3:
    case DType::U8:
      break;
  }
  return 0.0f;  // unreachable: check_convert refused these
}

inline void store_from_f32(void* dst, DType t, int64_t i, float v) {
  switch (t) {
    case DType::F32:
      static_cast<float*>(dst)[i] = v;
      return;
    case DType::BF16:
      static_cast<uint16_t*>(dst)[i] = f32_to_bf16(v);
      return;
    case DType::F16:
      static_cast<uint16_t*>(dst)[i] = f32_to_f16(v);
      return;
    case DType::I32:
    case DType::I64:
    case DType::F8E4M3:
    case DType::U8:
      return;  // unreachable: check_convert refused these
  }
}

}  // namespace qvl::cpu
