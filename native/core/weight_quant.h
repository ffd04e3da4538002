// The group-quantized weight formats (q8, q4): their physical layouts live here and nowhere else
// (kernels read them through the helpers below; converters go through the logical form of
// models/quant_pack.h).
//
// A stored q8/q4 weight is laid out in PANELS of 16 rows (kQPanelRows), so that one 64-byte vector
// holds 4 consecutive elements of 16 rows: one broadcast group of 4 activation codes then feeds 16
// outputs (vpdpbusd), a 32-block's dots accumulate in int32, and a block costs one convert and one
// FMA per 16 outputs instead of per output (the row-at-a-time kernels were bound by that per-block
// f32 work, not by memory). A weight of `out` rows holds ceil(out / 16) panels; the rows of the last
// panel past `out` are zero (codes, scales and zero points), so they compute 0 and are never stored.
// Rows are `ld` elements (ld a multiple of 32), in groups of `group` (a multiple of 32 dividing ld).
//
// Panel layout (P = panel index, i = row in the panel 0..15, groups = ld / group):
// - q8 codes, 16·ld bytes per panel: byte 64·j + 4·i + t = element 4j + t of row i, the int8 value
//   biased by +128 (u8 0..255, so W = (b - 128)·s). Unsigned bytes are what the int8 dot
//   instructions (vpdpbusd, vpmaddubsw) take on one side; the bias becomes one correction per
//   activation block (128 · Σx), the same correction the q4 zero point needs, so both formats share
//   their kernels.
// - q4 codes, 8·ld bytes per panel: 256 bytes per 32-block b; byte 256·b + 64·c + 4·i + t
//   (c = 0..3, t = 0..3) holds element 32b + 4c + t of row i in its low nibble and element
//   32b + 16 + 4c + t in its high nibble. A 64-byte load masked with 0x0f gives 4 elements of 16
//   rows; masked with 0xf0, 16 times the 4 elements 16 further on (the kernels sum those dots apart
//   and divide the 16 out exactly at the block's end).
// - scales: IEEE half (f16 bit patterns), 16 per panel and group: entry 16·(P·groups + g) + i.
// - q4 zero points (0..15): 8 bytes per panel and group: byte 8·(P·groups + g) + i / 2, the low
//   nibble for even i.
// So rows [16P, out) start at byte 16P·(bytes per row) of each buffer, as rows would in a row-major
// layout: a weight's rows from a multiple of 16 are a weight of their own (weight_rows_from).
// At group 32: q8 8.5 bits per weight, q4 4.625; at 64 (at load, q_load_group): q8 8.25, q4 4.3125.
//
// Row form: the quantizers (q8_quantize, q4_quantize, ops/quantize_row.h) and converters write one
// row at a time into a ROW FORM, which q_panelize assembles into panels:
// - q8: one biased byte per element, in element order.
// - q4: two elements per byte. Blocks of 32 elements pair up from the row's start: the 32 bytes
//   of a pair hold element i of the first block in the low nibble of byte i and element i of the
//   second block in the high nibble. A row with an odd number of blocks ends in a 16-byte half
//   pair: element i in the low nibble of byte i, element 16 + i in the high one.
// - scales: f16 [rows, ld / group]; q4 zero points two per byte, [rows, ceil(ld / group / 2)]:
//   group g of a row in byte g / 2, the low nibble for even g; a row with an odd number of groups
//   ends in a byte whose high nibble is 0.
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

// Bytes of one row-form row's q4 zero points for `groups` groups.
inline int64_t q4_zero_bytes(int64_t groups) { return (groups + 1) / 2; }
// Zero point of group g from a row-form row's packed zero points.
inline uint8_t q4_zero(const uint8_t* zeros, int64_t g) { return static_cast<uint8_t>((zeros[g / 2] >> (g % 2 * 4)) & 15); }
// A stored scale as f32 (exact, subnormals included).
inline float q_scale(uint16_t h) { return f16_to_f32(h); }

constexpr int64_t kQPanelRows = 16;
// Panels of a weight of `out` rows.
inline int64_t q_panel_count(int64_t out) { return (out + kQPanelRows - 1) / kQPanelRows; }

// Panel P's codes, scales ([groups][16]) and zero points ([groups][8 bytes], q4) of a q8/q4 weight.
inline const uint8_t* q_panel_codes(const WeightRef& w, int64_t P) {
  return static_cast<const uint8_t*>(w.data) + P * kQPanelRows * (w.format == WeightFormat::Q4 ? w.ld / 2 : w.ld);
}
inline const uint16_t* q_panel_scales(const WeightRef& w, int64_t P) {
  return static_cast<const uint16_t*>(w.scales) + P * kQPanelRows * (w.ld / w.group);
}
inline const uint8_t* q_panel_zeros(const WeightRef& w, int64_t P) {
  return static_cast<const uint8_t*>(w.zeros) + P * (kQPanelRows / 2) * (w.ld / w.group);
}
// Element k of row i of a panel's codes (q8: the biased byte; q4: the code 0..15), the scale and
// the q4 zero point of row i's group g from the panel's scales and zero points.
inline uint8_t q8_panel_code(const uint8_t* codes, int64_t i, int64_t k) { return codes[(k >> 2) * 64 + i * 4 + (k & 3)]; }
inline uint8_t q4_panel_code(const uint8_t* codes, int64_t i, int64_t k) {
  const int64_t e = k & 31;
  const uint8_t v = codes[(k >> 5) * 256 + ((e & 15) >> 2) * 64 + i * 4 + (e & 3)];
  return static_cast<uint8_t>(e < 16 ? v & 15 : v >> 4);
}
inline float q_panel_scale(const uint16_t* scales, int64_t i, int64_t g) { return f16_to_f32(scales[g * kQPanelRows + i]); }
inline uint8_t q4_panel_zero(const uint8_t* zeros, int64_t i, int64_t g) {
  return static_cast<uint8_t>((zeros[g * (kQPanelRows / 2) + i / 2] >> (i % 2 * 4)) & 15);
}

// Bytes of each of a q8/q4 buffer (codes, scales, zero points: 0 for q8).
struct QuantRowBytes {
  int64_t codes = 0, scales = 0, zeros = 0;
};
// Per row-form row of ld elements. False when ld is no whole number of blocks or groups, or a size
// overflows.
bool quant_row_bytes(WeightFormat f, int64_t ld, int64_t group, QuantRowBytes* out);
// Per panel (16 rows), and for a whole stored weight of `out` rows (q_panel_count(out) panels).
bool quant_panel_bytes(WeightFormat f, int64_t ld, int64_t group, QuantRowBytes* out);
bool quant_weight_bytes(WeightFormat f, int64_t out, int64_t ld, int64_t group, QuantRowBytes* total);

// `rows` (1..16) row-form rows (codes, scales and q4 zero points each contiguous, row after row, as
// quant_row_bytes sizes them) into one panel; the panel's rows from `rows` on are zero. q4's zeros
// and dst_zeros are null for q8.
void q_panelize(WeightFormat f, int64_t ld, int64_t group, int64_t rows, const uint8_t* codes, const uint16_t* scales,
                const uint8_t* zeros, uint8_t* dst_codes, uint16_t* dst_scales, uint8_t* dst_zeros);
// A whole row-form weight of `out` rows into its panels (buffers as quant_weight_bytes sizes them).
void q_panelize_weight(WeightFormat f, int64_t out, int64_t ld, int64_t group, const uint8_t* codes, const uint16_t* scales,
                       const uint8_t* zeros, uint8_t* dst_codes, uint16_t* dst_scales, uint8_t* dst_zeros);

// Row r of a stored (panel) q8/q4 weight -> f32 for elements [k0, k0 + n) (k0 and n multiples of
// 32 except at the row's end): each element one (code - zero) · scale.
void q_dequantize_row(const WeightRef& w, int64_t r, int64_t k0, int64_t n, float* out);

// Logical values (one per byte: q4 0..15; q8 int8 bit patterns) of one row of n (a multiple of 32)
// elements into its row form. False (nothing promised about dst) when a q4 value exceeds 15.
bool q4_pack_row(const uint8_t* q, int64_t n, uint8_t* dst);
void q8_pack_row(const uint8_t* q, int64_t n, uint8_t* dst);
// One row's logical zero points (one per byte) into its packed form; false when one exceeds 15.
bool q4_pack_zeros(const uint8_t* z, int64_t groups, uint8_t* dst);
// A checkpoint's (logical) scale as stored: true when exact in f16 or within f16's normal range
// (then rounded to nearest even); false for what f16 cannot hold (non-finite, past 65504, or
// below 2^-14 and not exactly a subnormal f16).
bool q_scale_from_f32(float s, uint16_t* h);

// The group size weights quantized at load get: 64 where `in` is a whole number of 64s, else 32
// (0: `in` is no whole number of 32s, the weight stays as stored). Why 64 for q4: decode reads
// every weight once per token, and a 64-group costs 4.3125 bits per weight against 4.625, 7%
// fewer bytes; with its scale and zero point fitted (q4_fit_group) its error is on a par with
// llama.cpp's Q4_0 (symmetric, 32-groups, 4.5 bits): RMS error relative to the weights' RMS
// 0.0874 against 0.0859 on Gaussian weights, 0.126 against 0.127 and 0.108 against 0.108 on
// heavy-tailed (Student t, 3 and 5 degrees of freedom) ones. Why 64 for q8: 8.25 bits against
// 8.5, and the kernels scale a group's sum once rather than each block's (the int8 GEMM does 2
// f32 operations a block instead of 3 on vpdpbusd's ports): at the 2B widths on AMD Zen 5 the
// GEMM (M = 1024-6440) 1.06-1.10x and decode's large matvecs (the MLP, the LM head; weights from
// DRAM) 1.10-1.13x faster than in 32s; RMS error over the weights' RMS 0.0059 against 0.0054
// (Gaussian), 0.0109 against 0.0085 (t, 3) and 0.0081 against 0.0068 (t, 5), still a tenth of
// q4's or less (groups of 128 were no faster and 0.0065 / 0.0138 / 0.0095).
int64_t q_load_group(WeightFormat f, int64_t in);

// The per-group step q8_quantize / q4_quantize share with the fast row quantizers
// (ops/quantize_row.h), so every variant rounds the same: the stored f16 scale of a group whose
// f32 scale is s >= 0 (raised to kQScaleMin when non-zero and below it) and its value, false when
// s overflows f16.
bool q_group_scale(float s, uint16_t* h, float* value);

// A q4 group's n (a multiple of 16) codes clamp(rne(x·inv) + zf, 0, 15) measured against x: the
// sum over elements of e², e = x - (code - zf)·s, each e and each e² added in one fused rounding
// (fma), element k summed into lane k % 16 in element order, then the 16 lanes folded in halves
// (lane l + lane l + 8, then + 4, + 2, + 1). That order is the definition: the vector variants
// give the same bits. NaN in x gives NaN.
float q4_group_error(const float* x, int64_t n, float inv, float zf, float s);
// The same for `count` (1..3) zero points zf[] at one scale, into err[]: one pass over the group.
using Q4GroupErrors = void (*)(const float* x, int64_t n, float inv, float s, const float* zf, int count, float* err);
void q4_group_errors(const float* x, int64_t n, float inv, float s, const float* zf, int count, float* err);

// One candidate scale of a q4 group's fit (q4_fit_group), step j of its range [lo, hi]: the scale
// (hi - lo) / 15 · (1 - j / 32) stored as q_group_scale stores it, 1 / its value (0 for a zero
// scale) and its three zero points: clamp(rne(-lo·inv), 0, 15), which puts lo on a code,
// clamp(15 - rne(hi·inv), 0, 15), which puts hi on code 15, and rne of their mean. Each product
// is rounded to f32 before it is rounded to an integer (no fused multiply-add: the vector
// variants must not contract it either).
constexpr int kQ4FitScales = 8;
struct Q4FitStep {
  uint16_t h = 0;
  bool ok = false;  // false: the scale overflows f16
  float s = 0.0f, inv = 0.0f;
  float z[3] = {};
};
Q4FitStep q4_fit_step(float lo, float hi, int j);
// The fit over its kQ4FitScales steps (as q4_fit_step gives them; the row quantizers compute them
// for many groups at once): the winner's stored scale, 1 / scale and zero point. False when a
// step it reaches overflows f16 (only the first can: the others are smaller). `err` is called as
// Q4GroupErrors is; a template so that the row quantizers call their vector measure directly.
template <class Errors>
inline bool q4_fit_pick(const float* x, int64_t n, const Q4FitStep* steps, Errors&& err, uint16_t* h, float* inv, float* zf) {
  float best = 0.0f;
  for (int j = 0, stale = 0; j < kQ4FitScales && stale < 2; ++j) {
    const Q4FitStep& st = steps[j];
    if (!st.ok) return false;
    // A zero point equal to one already measured at this scale would measure the same and lose the tie.
    float cand[3] = {st.z[0], 0.0f, 0.0f}, e[3];
    int count = 1;
    if (st.z[1] != st.z[0]) cand[count++] = st.z[1];
    if (st.z[2] != st.z[0] && st.z[2] != st.z[1]) cand[count++] = st.z[2];
    err(x, n, st.inv, st.s, cand, count, e);
    ++stale;
    for (int c = 0; c < count; ++c) {
      if ((j == 0 && c == 0) || e[c] < best) best = e[c], *h = st.h, *inv = st.inv, *zf = cand[c], stale = 0;
    }
  }
  return true;
}

// A q4 group's scale and zero point, fitted: the group's range [lo, hi] (lo = min(x..., 0),
// hi = max(x..., 0)) gives the candidates of q4_fit_step, j = 0..7 (a scale, each with three zero
// points); the candidate with the least error (`err`) wins, the earliest on a tie (so a group no
// candidate improves, or a NaN one, keeps the plain range fit: j = 0, lo on a code). The scales
// are tried in order until two in a row improve on none (the error is about unimodal in the
// scale: on Gaussian weights that stops after 4.3 scales on average, for the error all 8 give).
// Shrinking the scale clips the group's extremes to a code and rounds the rest finer: on Gaussian
// weights the fit's RMS error is 4% below the plain range fit's. False when the first candidate's
// scale overflows f16 (the others are smaller).
bool q4_fit_group(const float* x, int64_t n, float lo, float hi, Q4GroupErrors err, uint16_t* h, float* inv, float* zf);

// f32 -> row-form row with group `group`: q8 symmetric (s = amax / 127); q4 asymmetric, its scale
// and zero point fitted over the group's range (q4_fit_group); the scale stored as f16 (raised to
// kQScaleMin for a non-zero group, see above) and the codes rounded to nearest even against that
// stored value. Returns the first group whose scale overflows f16 (nothing promised about the row
// then), or -1. Non-finite inputs give undefined codes (the loader refuses such checkpoints
// before).
int64_t q8_quantize(const float* src, int64_t n, int64_t group, uint8_t* dst, uint16_t* scales);
int64_t q4_quantize(const float* src, int64_t n, int64_t group, uint8_t* dst, uint16_t* scales, uint8_t* zeros);

}  // namespace qvl
