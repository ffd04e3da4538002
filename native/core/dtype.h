// Element types shared by tensors, safetensors and kernels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace qvl {

// Values are stable: they cross the N-API boundary as integers. Block-quantized types
// (Q8_0, Q4_K, ...) will take values from 64 up and carry a block size.
// F8E4M3 is float8_e4m3fn (1 sign, 4 exponent bits biased by 7, 3 mantissa bits, no infinity,
// S.1111.111 is NaN, largest finite 448): the element of the official FP8 checkpoints.
enum class DType : int32_t { F32 = 0, F16 = 1, BF16 = 2, I32 = 3, I64 = 4, U8 = 5, F8E4M3 = 6 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
// Parses the safetensors spelling ("F32", "BF16", ...); returns false for anything else.
bool dtype_from_safetensors(const std::string& s, DType* out);
bool dtype_from_int(int32_t v, DType* out);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round-to-nearest-even, NaN kept quiet: the same rounding torch uses for .to(bfloat16).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
// float8_e4m3fn -> f32, exact (0x7f / 0xff give NaN).
float f8e4m3_to_f32(uint8_t b);
// f32 -> float8_e4m3fn, round to nearest even; magnitudes past 448 and NaN give NaN (the format
// has no infinity), as torch's .to(float8_e4m3fn) does for NaN (callers scale into range first).
uint8_t f32_to_f8e4m3(float f);

}  // namespace qvl
