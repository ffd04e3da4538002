// The group-quantized weight formats' row codecs (q8, q4): their physical layout lives here and
// nowhere else (kernels read it through the helpers below; converters go through the logical form
// of models/quant_pack.h).
//
// Layout, per stored row of `ld` elements (ld a multiple of 32):
// - q8: one byte per element, the int8 value biased by +128 (u8 0..255, so W = (b - 128)·s), in
//   element order. Unsigned bytes are what the int8 dot instructions (vpdpbusd, vpmaddubsw) take
//   on one side; the bias becomes one correction per activation block (128 · Σx), the same
//   correction the q4 zero point needs, so both formats share their kernels.
// - q4: two elements per byte. Blocks of 32 elements pair up from the row's start: the 32 bytes
//   of a pair hold element i of the first block in the low nibble of byte i and element i of the
//   second block in the high nibble. One 32-byte load then gives both blocks in element order
//   after a mask and a shift (no shuffle). A row with an odd number of blocks ends in a 16-byte
//   half pair: element i in the low nibble of byte i, element 16 + i in the high one.
// - scales: IEEE half (f16 bit patterns) [out, ld / group]: 2 bytes per group.
// - q4 zero points (0..15): two per byte, [out, ceil(ld / group / 2)]: group g of a row in byte
//   g / 2, the low nibble for even g; a row with an odd number of groups ends in a byte whose
//   high nibble is 0.
// The group is a multiple of 32 and divides ld. At group 32: q8 8.5 bits per weight, q4 4.625.
//
// Scale range: a group's scale is the f16 nearest to its f32 value, its codes computed against
// that stored scale. Quantizing at load (q8_quantize, q4_quantize) never stores a subnormal scale
// for a group that is not all zero: one below f16's smallest normal (2^-14) is raised to it (the
// group then has fewer distinct codes; every element's error stays within half a step of 2^-14,
// 2^-15 ≈ 3.1e-5, below the error of any group with a normal scale), so no scale loses relative
// precision. A scale past f16's largest finite value (65504; weights beyond ±8.3e6 for q8) cannot
// be stored: the quantizers report the group and the caller refuses the weight. Checkpoint scales
// (q_scale_from_f32) are kept when exact in f16 (every f16 file: subnormals included) or rounded
// when in the normal range; anything else is refused there too.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/weight_format.h"

namespace qvl {

constexpr int64_t kQuantBlock = 32;
// f16's smallest normal value: the least scale q8_quantize/q4_quantize store for a non-zero group.
constexpr float kQScaleMin = 0x1p-14f;

// Element k of a stored q4 row of ld elements (0..15).
inline uint8_t q4_get(const uint8_t* row, int64_t ld, int64_t k) {
  const int64_t b = k / kQuantBlock, i = k % kQuantBlock, paired = ld / kQuantBlock / 2 * 2;
  if (b < paired) return static_cast<uint8_t>(b % 2 ? row[b / 2 * 32 + i] >> 4 : row[b / 2 * 32 + i] & 15);
  const uint8_t* half = row + paired / 2 * 32;  // the trailing half pair
  return static_cast<uint8_t>(i < 16 ? half[i] & 15 : half[i - 16] >> 4);
}

// Bytes of one row's q4 zero points for `groups` groups.
inline int64_t q4_zero_bytes(int64_t groups) { return (groups + 1) / 2; }
// Zero point of group g from a row's packed zero points.
inline uint8_t q4_zero(const uint8_t* zeros, int64_t g) { return static_cast<uint8_t>((zeros[g / 2] >> (g % 2 * 4)) & 15); }
// A stored scale as f32 (exact, subnormals included).
inline float q_scale(uint16_t h) { return f16_to_f32(h); }

// Row r's first scale and its packed zero points (q4) of a q8/q4 weight.
inline const uint16_t* q_row_scales(const WeightRef& w, int64_t r) {
  return static_cast<const uint16_t*>(w.scales) + r * (w.ld / w.group);
}
inline const uint8_t* q4_row_zeros(const WeightRef& w, int64_t r) {
  return static_cast<const uint8_t*>(w.zeros) + r * q4_zero_bytes(w.ld / w.group);
}

// Bytes a q8/q4 weight of `out` rows of `ld` elements keeps per row: codes, scales, zero points
// (0 for q8). False when ld is no whole number of blocks or groups, or a size overflows.
struct QuantRowBytes {
  int64_t codes = 0, scales = 0, zeros = 0;
};
bool quant_row_bytes(WeightFormat f, int64_t ld, int64_t group, QuantRowBytes* out);

// Logical values (one per byte: q4 0..15; q8 int8 bit patterns) of one row of n (a multiple of 32)
// elements into the stored row. False (nothing promised about dst) when a q4 value exceeds 15.
bool q4_pack_row(const uint8_t* q, int64_t n, uint8_t* dst);
void q8_pack_row(const uint8_t* q, int64_t n, uint8_t* dst);
// One row's logical zero points (one per byte) into its packed form; false when one exceeds 15.
bool q4_pack_zeros(const uint8_t* z, int64_t groups, uint8_t* dst);
// A checkpoint's (logical) scale as stored: true when exact in f16 or within f16's normal range
// (then rounded to nearest even); false for what f16 cannot hold (non-finite, past 65504, or
// below 2^-14 and not exactly a subnormal f16).
bool q_scale_from_f32(float s, uint16_t* h);

// Stored row -> f32 for elements [k0, k0 + n) (k0 and n multiples of 32 except at the row's end).
// scales/zeros point at the row's first group (q_row_scales, q4_row_zeros).
void q8_dequantize(const uint8_t* row, const uint16_t* scales, int64_t group, int64_t k0, int64_t n, float* out);
void q4_dequantize(const uint8_t* row, int64_t ld, const uint16_t* scales, const uint8_t* zeros, int64_t group, int64_t k0,
                   int64_t n, float* out);

// The per-group steps q8_quantize / q4_quantize share with the fast row quantizers
// (ops/quantize_row.h), so every variant rounds the same: the stored f16 scale of a group whose
// f32 scale is s >= 0 (raised to kQScaleMin when non-zero and below it) and its value, false when
// s overflows f16; a q4 group's zero point from its low end lo and 1 / stored scale.
bool q_group_scale(float s, uint16_t* h, float* value);
float q4_group_zero(float lo, float inv);

// f32 -> stored row with group `group`: q8 symmetric (s = amax / 127); q4 asymmetric over
// [min(lo, 0), max(hi, 0)] (s = range / 15, z = round(-lo / s)); the scale stored as f16 (raised
// to kQScaleMin for a non-zero group, see above) and the codes rounded to nearest even against
// that stored value. Returns the first group whose scale overflows f16 (nothing promised about
// the row then), or -1. Non-finite inputs give undefined codes (the loader refuses such
// checkpoints before).
int64_t q8_quantize(const float* src, int64_t n, int64_t group, uint8_t* dst, uint16_t* scales);
int64_t q4_quantize(const float* src, int64_t n, int64_t group, uint8_t* dst, uint16_t* scales, uint8_t* zeros);

}  // namespace qvl
