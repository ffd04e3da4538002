// One value of a conversion check_convert accepted, through core/dtype.h's rounding: any dtype
// read as f32 (or an integer dtype as int64), written from f32 to a float dtype (or from int64 to
// an integer dtype, after integer_fits).
#pragma once
#include <cstdint>
#include <cstring>

#include "core/dtype.h"

namespace qvl::cpu {

inline float load_as_f32(const void* src, DType t, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(src)[i];
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(src)[i]);
    case DType::F8E4M3: return f8e4m3_to_f32(static_cast<const uint8_t*>(src)[i]);
    case DType::I32: return static_cast<float>(static_cast<const int32_t*>(src)[i]);
    case DType::I64: return static_cast<float>(static_cast<const int64_t*>(src)[i]);
    case DType::U8: return static_cast<float>(static_cast<const uint8_t*>(src)[i]);
  }
  return 0.0f;  // unreachable: every dtype is listed
}

inline void store_from_f32(void* dst, DType t, int64_t i, float v) {
  switch (t) {
    case DType::F32: static_cast<float*>(dst)[i] = v; return;
    case DType::BF16: static_cast<uint16_t*>(dst)[i] = f32_to_bf16(v); return;
    case DType::F16: static_cast<uint16_t*>(dst)[i] = f32_to_f16(v); return;
    case DType::I32:
    case DType::I64:
    case DType::U8:
    case DType::F8E4M3: return;  // unreachable: check_convert refused float to these
  }
}

inline int64_t load_as_i64(const void* src, DType t, int64_t i) {
  switch (t) {
    case DType::I32: return static_cast<const int32_t*>(src)[i];
    case DType::I64: return static_cast<const int64_t*>(src)[i];
    case DType::U8: return static_cast<const uint8_t*>(src)[i];
    case DType::F32:
    case DType::BF16:
    case DType::F16:
    case DType::F8E4M3: break;  // unreachable: only integer pairs are read as integers
  }
  return 0;
}

inline bool integer_fits(DType t, int64_t v) {
  switch (t) {
    case DType::I32: return v >= INT32_MIN && v <= INT32_MAX;
    case DType::U8: return v >= 0 && v <= 255;
    case DType::I64: return true;
    case DType::F32:
    case DType::BF16:
    case DType::F16:
    case DType::F8E4M3: break;
  }
  return false;
}

inline void store_from_i64(void* dst, DType t, int64_t i, int64_t v) {
  switch (t) {
    case DType::I32: static_cast<int32_t*>(dst)[i] = static_cast<int32_t>(v); return;
    case DType::I64: static_cast<int64_t*>(dst)[i] = v; return;
    case DType::U8: static_cast<uint8_t*>(dst)[i] = static_cast<uint8_t>(v); return;
    case DType::F32:
    case DType::BF16:
    case DType::F16:
    case DType::F8E4M3: return;  // unreachable: only integer pairs are written as integers
  }
}

inline bool integer_dtype(DType t) { return t == DType::I32 || t == DType::I64 || t == DType::U8; }

}  // namespace qvl::cpu
