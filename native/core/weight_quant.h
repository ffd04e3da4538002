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
// - scales: f32 [out, ld / group]; q4 zero points: one byte (0..15) per group, [out, ld / group].
//   The group is a multiple of 32 and divides ld. (f16 scales and nibble zeros would save 0.5 and
//   0.125 bit per weight at group 32; kept f32/u8 for now so the checkpoint scales stay exact.)
#pragma once
#include <cstdint>

namespace qvl {

constexpr int64_t kQuantBlock = 32;

// Element k of a stored q4 row of ld elements (0..15).
inline uint8_t q4_get(const uint8_t* row, int64_t ld, int64_t k) {
  const int64_t b = k / kQuantBlock, i = k % kQuantBlock, paired = ld / kQuantBlock / 2 * 2;
  if (b < paired) return static_cast<uint8_t>(b % 2 ? row[b / 2 * 32 + i] >> 4 : row[b / 2 * 32 + i] & 15);
  const uint8_t* half = row + paired / 2 * 32;  // the trailing half pair
  return static_cast<uint8_t>(i < 16 ? half[i] & 15 : half[i - 16] >> 4);
}

// Logical values (one per byte: q4 0..15; q8 int8 bit patterns) of one row of n (a multiple of 32)
// elements into the stored row. False (nothing promised about dst) when a q4 value exceeds 15.
bool q4_pack_row(const uint8_t* q, int64_t n, uint8_t* dst);
void q8_pack_row(const uint8_t* q, int64_t n, uint8_t* dst);

// Stored row -> f32 for elements [k0, k0 + n) (k0 and n multiples of 32 except at the row's end).
// scales/zeros point at the row's first group.
void q8_dequantize(const uint8_t* row, const float* scales, int64_t group, int64_t k0, int64_t n, float* out);
void q4_dequantize(const uint8_t* row, int64_t ld, const float* scales, const uint8_t* zeros, int64_t group, int64_t k0,
                   int64_t n, float* out);

// f32 -> stored row with group `group`: q8 symmetric (s = amax / 127, round to nearest even);
// q4 asymmetric over [min(lo, 0), max(hi, 0)] (s = range / 15, z = round(-lo / s)). Non-finite
// inputs give undefined codes (the loader refuses such checkpoints before).
void q8_quantize(const float* src, int64_t n, int64_t group, uint8_t* dst, float* scales);
void q4_quantize(const float* src, int64_t n, int64_t group, uint8_t* dst, float* scales, uint8_t* zeros);

}  // namespace qvl
