#include "core/dtype.h"

#include <cmath>

namespace qvl {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::I32: return 4;
    case DType::I64: return 8;
    case DType::U8: return 1;
    case DType::F8E4M3: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::I32: return "i32";
    case DType::I64: return "i64";
    case DType::U8: return "u8";
    case DType::F8E4M3: return "f8_e4m3";
  }
  return "?";
}

bool dtype_from_safetensors(const std::string& s, DType* out) {
  static const struct { const char* name; DType t; } table[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16},
      {"I32", DType::I32}, {"I64", DType::I64}, {"U8", DType::U8}, {"F8_E4M3", DType::F8E4M3}};
  for (const auto& e : table) {
    if (s == e.name) { *out = e.t; return true; }
  }
  return false;
}

bool dtype_from_int(int32_t v, DType* out) {
  // A switch over every DType rather than a range check: a new value missed here is a build
  // error (-Werror=switch), not a code that silently stops crossing the boundary.
  const DType t = static_cast<DType>(v);
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::I32:
    case DType::I64:
    case DType::U8:
    case DType::F8E4M3:
      *out = t;
      return true;
  }
  return false;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) { mant <<= 1; --exp; }
      mant &= 0x3ffu;
      u = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (absu >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (absu < 0x38800000u) {  // subnormal or zero in f16
    if (absu < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t exp = absu >> 23;
    const uint32_t mant = (absu & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exp;  // 14..24
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = ((absu >> 13) - ((127 - 15) << 10));
  const uint32_t rem = absu & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return static_cast<uint16_t>(sign | r);
}

float f8e4m3_to_f32(uint8_t b) {
  const uint32_t sign = static_cast<uint32_t>(b & 0x80u) << 24;
  const uint32_t exp = (b >> 3) & 0xfu;
  const uint32_t mant = b & 0x7u;
  uint32_t u;
  if (exp == 15 && mant == 7) {
    u = sign | 0x7fc00000u;
  } else if (exp == 0) {  // subnormal: mant * 2^-9, exact in f32
    float f = static_cast<float>(mant) * (1.0f / 512.0f);
    std::memcpy(&u, &f, 4);
    u |= sign;
  } else {
    u = sign | ((exp + 127 - 7) << 23) | (mant << 20);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint8_t f32_to_f8e4m3(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const uint32_t absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return static_cast<uint8_t>(sign | 0x7f);  // NaN
  float a;
  std::memcpy(&a, &absu, 4);
  // Round |f| to a multiple of the e4m3 spacing at its binade, ties to even, by exact scaling:
  // below 2^-6 the spacing is 2^-9 (subnormals), above it 2^(e-3).
  int e = 0;
  if (a >= 1.0f / 64.0f) {
    std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1): binade 2^(e-1), spacing 2^(e-4)
    e -= 4;
  } else {
    e = -9;
  }
  const float q = std::nearbyint(std::ldexp(a, -e));  // default rounding mode: ties to even
  const float r = std::ldexp(q, e);
  if (r > 448.0f) return static_cast<uint8_t>(sign | 0x7f);
  if (r == 0.0f) return sign;
  int re = 0;
  const float m = std::frexp(r, &re);  // r = m * 2^re
  const int biased = re - 1 + 7;         // exponent of r as 1.x * 2^(re-1)
  if (biased <= 0) return static_cast<uint8_t>(sign | static_cast<uint8_t>(std::ldexp(r, 9)));  // subnormal
  const uint32_t mant = static_cast<uint32_t>(std::ldexp(m * 2.0f - 1.0f, 3));
  return static_cast<uint8_t>(sign | (biased << 3) | mant);
}

}  // namespace qvl
