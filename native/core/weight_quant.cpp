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

bool q4_pack_zeros(const uint8_t* z, int64_t groups, uint8_t* dst) {
  std::fill(dst, dst + q4_zero_bytes(groups), uint8_t{0});
  for (int64_t g = 0; g < groups; ++g) {
    if (z[g] > 15) return false;
    dst[g / 2] = static_cast<uint8_t>(dst[g / 2] | (z[g] << (g % 2 * 4)));
  }
  return true;
}

bool q_scale_from_f32(float s, uint16_t* h) {
  if (!std::isfinite(s)) return false;
  const uint16_t r = f32_to_f16(s);
  if ((r & 0x7fffu) >= 0x7c00u) return false;  // past 65504
  const float back = f16_to_f32(r);
  if (back != s && std::fabs(back) < kQScaleMin) return false;  // inexact and subnormal (or flushed to 0)
  *h = r;
  return true;
}

bool quant_row_bytes(WeightFormat f, int64_t ld, int64_t group, QuantRowBytes* out) {
  const WeightFormatTraits& t = weight_format_traits(f);
  if (t.kernel != WeightKernel::Int8Dot || group <= 0 || group % kQuantBlock != 0 || ld < 0 || ld % group != 0) return false;
  if (!weight_row_bytes(f, ld, &out->codes)) return false;
  const int64_t groups = ld / group;
  out->scales = 2 * groups;
  out->zeros = t.has_zeros ? q4_zero_bytes(groups) : 0;
  return true;
}

// Both run per stretch of one scale (and, for q4, one stored block): the scale hoisted out of an
// inner loop the compiler vectorizes. matmul_bf16 dequantizes every weight of a prefill through
// these, so a division per element would cost more than the matmul itself. Each element is still
// one (code - zero) * scale, the same value whatever range a caller asks for.
void q8_dequantize(const uint8_t* row, const uint16_t* scales, int64_t group, int64_t k0, int64_t n, float* out) {
  for (int64_t k = k0; k < k0 + n;) {
    const int64_t end = std::min(k0 + n, (k / group + 1) * group);
    const float s = q_scale(scales[k / group]);
    const uint8_t* b = row + k;
    float* o = out + (k - k0);
    for (int64_t i = 0; i < end - k; ++i) o[i] = static_cast<float>(static_cast<int>(b[i]) - 128) * s;
    k = end;
  }
}

void q4_dequantize(const uint8_t* row, int64_t ld, const uint16_t* scales, const uint8_t* zeros, int64_t group, int64_t k0,
                   int64_t n, float* out) {
  const int64_t paired = ld / kQuantBlock / 2 * 2;
  for (int64_t k = k0; k < k0 + n;) {
    const int64_t b = k / kQuantBlock, i0 = k % kQuantBlock;
    const int64_t end = std::min(k0 + n, (b + 1) * kQuantBlock);
    const float s = q_scale(scales[k / group]);
    const int z = q4_zero(zeros, k / group);
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

bool q_group_scale(float s, uint16_t* h, float* value) {
  if (s == 0.0f) {
    *h = 0, *value = 0.0f;
    return true;
  }
  uint16_t r = f32_to_f16(s);
  if ((r & 0x7fffu) >= 0x7c00u) return false;
  float v = f16_to_f32(r);
  if (v < kQScaleMin) r = f32_to_f16(kQScaleMin), v = kQScaleMin;
  *h = r, *value = v;
  return true;
}

float q4_group_zero(float lo, float inv) { return std::min(15.0f, std::max(0.0f, std::nearbyint(-lo * inv))); }

int64_t q8_quantize(const float* src, int64_t n, int64_t group, uint8_t* dst, uint16_t* scales) {
  for (int64_t g0 = 0; g0 < n; g0 += group) {
    float amax = 0.0f;
    for (int64_t k = g0; k < g0 + group; ++k) amax = std::max(amax, std::fabs(src[k]));
    float s = 0.0f;
    if (!q_group_scale(amax / 127.0f, &scales[g0 / group], &s)) return g0 / group;
    const float inv = s > 0.0f ? 1.0f / s : 0.0f;
    for (int64_t k = g0; k < g0 + group; ++k) {
      const float q = std::min(127.0f, std::max(-127.0f, std::nearbyint(src[k] * inv)));
      dst[k] = static_cast<uint8_t>(static_cast<int>(q) + 128);
    }
  }
  return -1;
}

int64_t q4_quantize(const float* src, int64_t n, int64_t group, uint8_t* dst, uint16_t* scales, uint8_t* zeros) {
  std::vector<uint8_t> q(static_cast<size_t>(n)), z(static_cast<size_t>(n / group));
  for (int64_t g0 = 0; g0 < n; g0 += group) {
    float lo = 0.0f, hi = 0.0f;
    for (int64_t k = g0; k < g0 + group; ++k) lo = std::min(lo, src[k]), hi = std::max(hi, src[k]);
    float s = 0.0f;
    if (!q_group_scale((hi - lo) / 15.0f, &scales[g0 / group], &s)) return g0 / group;
    const float inv = s > 0.0f ? 1.0f / s : 0.0f;
    const float zf = q4_group_zero(lo, inv);
    z[g0 / group] = static_cast<uint8_t>(zf);
    for (int64_t k = g0; k < g0 + group; ++k) {
      q[k] = static_cast<uint8_t>(std::min(15.0f, std::max(0.0f, std::nearbyint(src[k] * inv) + zf)));
    }
  }
  q4_pack_row(q.data(), n, dst);
  q4_pack_zeros(z.data(), n / group, zeros);
  return -1;
}

}  // namespace qvl
