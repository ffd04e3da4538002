#include "core/weight_quant.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace qvl {

namespace {

// Byte index and shift of element k in a q4 row of n elements (see the layout in the header).
inline void q4_slot(int64_t n, int64_t k, int64_t* byte, int* shift) {
  const int64_t b = k / kQuantBlock, i = k % kQuantBlock, paired = n / kQuantBlock / 2 * 2;
  if (b < paired) {
    *byte = b / 2 * 32 + i;
    *shift = b % 2 ? 4 : 0;
  } else {
    *byte = paired / 2 * 32 + (i < 16 ? i : i - 16);
    *shift = i < 16 ? 0 : 4;
  }
}

}  // namespace

bool q4_pack_row(const uint8_t* q, int64_t n, uint8_t* dst) {
  std::fill(dst, dst + n / 2, uint8_t{0});
  for (int64_t k = 0; k < n; ++k) {
    if (q[k] > 15) return false;
    int64_t byte;
    int shift;
    q4_slot(n, k, &byte, &shift);
    dst[byte] = static_cast<uint8_t>(dst[byte] | (q[k] << shift));
  }
  return true;
}

void q8_pack_row(const uint8_t* q, int64_t n, uint8_t* dst) {
  for (int64_t k = 0; k < n; ++k) dst[k] = static_cast<uint8_t>(q[k] ^ 0x80u);  // int8 -> biased u8
}

// Both run per stretch of one scale (and, for q4, one stored block): the scale hoisted out of an
// inner loop the compiler vectorizes. matmul_bf16 dequantizes every weight of a prefill through
// these, so a division per element would cost more than the matmul itself. Each element is still
// one (code - zero) * scale, the same value whatever range a caller asks for.
void q8_dequantize(const uint8_t* row, const float* scales, int64_t group, int64_t k0, int64_t n, float* out) {
  for (int64_t k = k0; k < k0 + n;) {
    const int64_t end = std::min(k0 + n, (k / group + 1) * group);
    const float s = scales[k / group];
    const uint8_t* b = row + k;
    float* o = out + (k - k0);
    for (int64_t i = 0; i < end - k; ++i) o[i] = static_cast<float>(static_cast<int>(b[i]) - 128) * s;
    k = end;
  }
}

void q4_dequantize(const uint8_t* row, int64_t ld, const float* scales, const uint8_t* zeros, int64_t group, int64_t k0,
                   int64_t n, float* out) {
  const int64_t paired = ld / kQuantBlock / 2 * 2;
  for (int64_t k = k0; k < k0 + n;) {
    const int64_t b = k / kQuantBlock, i0 = k % kQuantBlock;
    const int64_t end = std::min(k0 + n, (b + 1) * kQuantBlock);
    const float s = scales[k / group];
    const int z = zeros[k / group];
    float* o = out + (k - k0);
    const int64_t len = end - k;
    if (b < paired) {  // block b in the low (even b) or high (odd b) nibbles of its pair's 32 bytes
      const uint8_t* src = row + b / 2 * 32 + i0;
      const int shift = b % 2 ? 4 : 0;
      for (int64_t i = 0; i < len; ++i) o[i] = static_cast<float>(static_cast<int>((src[i] >> shift) & 15) - z) * s;
    } else {
      for (int64_t i = 0; i < len; ++i) o[i] = static_cast<float>(static_cast<int>(q4_get(row, ld, k + i)) - z) * s;
    }
    k = end;
  }
}

void q8_quantize(const float* src, int64_t n, int64_t group, uint8_t* dst, float* scales) {
  for (int64_t g0 = 0; g0 < n; g0 += group) {
    float amax = 0.0f;
    for (int64_t k = g0; k < g0 + group; ++k) amax = std::max(amax, std::fabs(src[k]));
    const float s = amax / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
    scales[g0 / group] = s;
    for (int64_t k = g0; k < g0 + group; ++k) {
      const float q = std::min(127.0f, std::max(-127.0f, std::nearbyint(src[k] * inv)));
      dst[k] = static_cast<uint8_t>(static_cast<int>(q) + 128);
    }
  }
}

void q4_quantize(const float* src, int64_t n, int64_t group, uint8_t* dst, float* scales, uint8_t* zeros) {
  std::vector<uint8_t> q(static_cast<size_t>(n));
  for (int64_t g0 = 0; g0 < n; g0 += group) {
    float lo = 0.0f, hi = 0.0f;
    for (int64_t k = g0; k < g0 + group; ++k) lo = std::min(lo, src[k]), hi = std::max(hi, src[k]);
    const float s = (hi - lo) / 15.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
    const float z = std::min(15.0f, std::max(0.0f, std::nearbyint(-lo * inv)));
    scales[g0 / group] = s;
    zeros[g0 / group] = static_cast<uint8_t>(z);
    for (int64_t k = g0; k < g0 + group; ++k) {
      q[k] = static_cast<uint8_t>(std::min(15.0f, std::max(0.0f, std::nearbyint(src[k] * inv) + z)));
    }
  }
  q4_pack_row(q.data(), n, dst);
}

}  // namespace qvl
