#include "core/weight_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
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

bool quant_panel_bytes(WeightFormat f, int64_t ld, int64_t group, QuantRowBytes* out) {
  QuantRowBytes rb;
  if (!quant_row_bytes(f, ld, group, &rb) || rb.codes > std::numeric_limits<int64_t>::max() / kQPanelRows) return false;
  out->codes = kQPanelRows * rb.codes;
  out->scales = kQPanelRows * rb.scales;
  out->zeros = rb.zeros ? kQPanelRows / 2 * (ld / group) : 0;
  return true;
}

bool quant_weight_bytes(WeightFormat f, int64_t out, int64_t ld, int64_t group, QuantRowBytes* total) {
  QuantRowBytes pb;
  if (out < 0 || !quant_panel_bytes(f, ld, group, &pb)) return false;
  const int64_t panels = q_panel_count(out);
  if (panels > 0 && pb.codes > std::numeric_limits<int64_t>::max() / panels) return false;
  total->codes = panels * pb.codes, total->scales = panels * pb.scales, total->zeros = panels * pb.zeros;
  return true;
}

namespace {

// Row i's codes (row form, `row` its first byte) into panel slot i: per 4-element step one 4-byte
// move (q8); per 32-block its 16 bytes, element t | element 16 + t, in four 4-byte moves (q4).
void panel_row_q8(const uint8_t* row, int64_t ld, int64_t i, uint8_t* panel) {
  for (int64_t j = 0; j < ld / 4; ++j) std::memcpy(panel + j * 64 + i * 4, row + 4 * j, 4);
}

void put_q4_block(const uint8_t packed[16], int64_t b, int64_t i, uint8_t* panel) {
  for (int c = 0; c < 4; ++c) std::memcpy(panel + b * 256 + c * 64 + i * 4, packed + 4 * c, 4);
}

void panel_row_q4(const uint8_t* row, int64_t ld, int64_t i, uint8_t* panel) {
  const int64_t blocks = ld / kQuantBlock, paired = blocks / 2 * 2;
  uint8_t lo[16], hi[16];
  for (int64_t b = 0; b < paired; b += 2) {
    // Pair bytes u (block b element u in the low nibble, block b + 1 in the high) and 16 + u.
    const uint8_t* src = row + b / 2 * 32;
    for (int u = 0; u < 16; ++u) {
      lo[u] = static_cast<uint8_t>((src[u] & 15) | (src[16 + u] << 4));
      hi[u] = static_cast<uint8_t>((src[u] >> 4) | (src[16 + u] & 0xf0));
    }
    put_q4_block(lo, b, i, panel);
    put_q4_block(hi, b + 1, i, panel);
  }
  if (blocks % 2) put_q4_block(row + paired / 2 * 32, paired, i, panel);  // a half pair is already t | 16 + t
}

}  // namespace

void q_panelize(WeightFormat f, int64_t ld, int64_t group, int64_t rows, const uint8_t* codes, const uint16_t* scales,
                const uint8_t* zeros, uint8_t* dst_codes, uint16_t* dst_scales, uint8_t* dst_zeros) {
  QuantRowBytes rb, pb;
  quant_row_bytes(f, ld, group, &rb);
  quant_panel_bytes(f, ld, group, &pb);
  const int64_t groups = ld / group;
  const bool q4 = f == WeightFormat::Q4;
  if (rows < kQPanelRows) {
    std::memset(dst_codes, 0, static_cast<size_t>(pb.codes));
    std::memset(dst_scales, 0, static_cast<size_t>(pb.scales));
    if (q4) std::memset(dst_zeros, 0, static_cast<size_t>(pb.zeros));
  }
  for (int64_t i = 0; i < rows; ++i) {
    const uint8_t* row = codes + i * rb.codes;
    if (q4) {
      panel_row_q4(row, ld, i, dst_codes);
    } else {
      panel_row_q8(row, ld, i, dst_codes);
    }
    for (int64_t g = 0; g < groups; ++g) dst_scales[g * kQPanelRows + i] = scales[i * groups + g];
  }
  if (!q4) return;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t i = 0; i < rows; i += 2) {
      const uint8_t z0 = q4_zero(zeros + i * rb.zeros, g), z1 = i + 1 < rows ? q4_zero(zeros + (i + 1) * rb.zeros, g) : 0;
      dst_zeros[g * (kQPanelRows / 2) + i / 2] = static_cast<uint8_t>(z0 | z1 << 4);
    }
  }
}

void q_panelize_weight(WeightFormat f, int64_t out, int64_t ld, int64_t group, const uint8_t* codes, const uint16_t* scales,
                       const uint8_t* zeros, uint8_t* dst_codes, uint16_t* dst_scales, uint8_t* dst_zeros) {
  QuantRowBytes rb, pb;
  quant_row_bytes(f, ld, group, &rb);
  quant_panel_bytes(f, ld, group, &pb);
  const bool q4 = f == WeightFormat::Q4;
  for (int64_t P = 0; P < q_panel_count(out); ++P) {
    const int64_t r0 = P * kQPanelRows;
    q_panelize(f, ld, group, std::min(kQPanelRows, out - r0), codes + r0 * rb.codes, scales + r0 * (ld / group),
               q4 ? zeros + r0 * rb.zeros : nullptr, dst_codes + P * pb.codes, dst_scales + P * pb.scales / 2,
               q4 ? dst_zeros + P * pb.zeros : nullptr);
  }
}

namespace {

// The 32 codes of block b of row i of a panel (q8: biased bytes; q4: 0..15), in element order.
// A row's 4 bytes of a line at a time (q4: both nibbles of the 4 bytes with one mask and shift).
void panel_block_codes(bool q4, const uint8_t* codes, int64_t i, int64_t b, uint8_t out[32]) {
  if (q4) {
    for (int c = 0; c < 4; ++c) {
      uint32_t v;
      std::memcpy(&v, codes + b * 256 + c * 64 + i * 4, 4);
      const uint32_t lo = v & 0x0f0f0f0fu, hi = (v >> 4) & 0x0f0f0f0fu;
      std::memcpy(out + 4 * c, &lo, 4);
      std::memcpy(out + 16 + 4 * c, &hi, 4);
    }
    return;
  }
  for (int j = 0; j < 8; ++j) std::memcpy(out + 4 * j, codes + (8 * b + j) * 64 + i * 4, 4);
}

}  // namespace

// Per block: its codes gathered once, the scale (and zero point) hoisted out of the inner loop.
// matmul_bf16 dequantizes every weight of a prefill through this, so a division per element would
// cost more than the matmul itself. Each element is still one (code - zero) * scale, the same value
// whatever range a caller asks for.
void q_dequantize_row(const WeightRef& w, int64_t r, int64_t k0, int64_t n, float* out) {
  const int64_t P = r / kQPanelRows, i = r % kQPanelRows;
  const uint8_t* codes = q_panel_codes(w, P);
  const uint16_t* scales = q_panel_scales(w, P);
  const bool q4 = w.format == WeightFormat::Q4;
  const uint8_t* zeros = q4 ? q_panel_zeros(w, P) : nullptr;
  uint8_t c[kQuantBlock];
  for (int64_t k = k0; k < k0 + n;) {
    const int64_t b = k / kQuantBlock, end = std::min(k0 + n, (b + 1) * kQuantBlock), g = k / w.group;
    panel_block_codes(q4, codes, i, b, c);
    const float s = q_panel_scale(scales, i, g);
    const int z = q4 ? q4_panel_zero(zeros, i, g) : 128;
    float* o = out + (k - k0);
    if (end - k == kQuantBlock) {  // a whole block: a fixed trip count the compiler vectorizes
      for (int e = 0; e < kQuantBlock; ++e) o[e] = static_cast<float>(static_cast<int>(c[e]) - z) * s;
    } else {
      for (int64_t e = k; e < end; ++e) o[e - k] = static_cast<float>(static_cast<int>(c[e - b * kQuantBlock]) - z) * s;
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

namespace {

// Round to nearest even for |v| < 2^22 (the zero points' arguments stay under ~20): adding and
// taking away 1.5 · 2^23 leaves no fraction bits. std::nearbyint is a libm call on baseline
// x86-64, and the q4 fit makes up to 24 of these per group.
inline float rne_small(float v) {
  constexpr float kMagic = 0x1.8p23f;
  return (v + kMagic) - kMagic;
}

}  // namespace

int64_t q_load_group(WeightFormat f, int64_t in) {
  switch (f) {
    case WeightFormat::Q4:
    case WeightFormat::Q8:
      if (in % 64 == 0) return 64;
      return in % kQuantBlock == 0 ? kQuantBlock : 0;
    case WeightFormat::F32:
    case WeightFormat::F16:
    case WeightFormat::BF16:
    case WeightFormat::F8: return 0;
  }
  return 0;
}

float q4_group_error(const float* x, int64_t n, float inv, float zf, float s) {
  float acc[16] = {};
  for (int64_t k = 0; k < n; ++k) {
    const float q = std::min(15.0f, std::max(0.0f, std::nearbyint(x[k] * inv) + zf));
    const float e = std::fma(-(q - zf), s, x[k]);
    acc[k % 16] = std::fma(e, e, acc[k % 16]);
  }
  for (int w = 8; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) acc[l] = acc[l] + acc[l + w];
  return acc[0];
}

void q4_group_errors(const float* x, int64_t n, float inv, float s, const float* zf, int count, float* err) {
  for (int c = 0; c < count; ++c) err[c] = q4_group_error(x, n, inv, zf[c], s);
}

Q4FitStep q4_fit_step(float lo, float hi, int j) {
  Q4FitStep st;
  if (!q_group_scale((hi - lo) / 15.0f * (1.0f - static_cast<float>(j) / 32.0f), &st.h, &st.s)) return st;
  st.ok = true;
  st.inv = st.s > 0.0f ? 1.0f / st.s : 0.0f;
  st.z[0] = std::min(15.0f, std::max(0.0f, rne_small(-lo * st.inv)));
  st.z[1] = std::min(15.0f, std::max(0.0f, 15.0f - rne_small(hi * st.inv)));
  st.z[2] = rne_small((st.z[0] + st.z[1]) * 0.5f);
  return st;
}

bool q4_fit_group(const float* x, int64_t n, float lo, float hi, Q4GroupErrors err, uint16_t* h, float* inv, float* zf) {
  Q4FitStep steps[kQ4FitScales];
  for (int j = 0; j < kQ4FitScales; ++j) steps[j] = q4_fit_step(lo, hi, j);
  return q4_fit_pick(x, n, steps, err, h, inv, zf);
}

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
    float inv = 0.0f, zf = 0.0f;
    if (!q4_fit_group(src + g0, group, lo, hi, q4_group_errors, &scales[g0 / group], &inv, &zf)) return g0 / group;
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
