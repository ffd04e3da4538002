// Weight formats: how a linear layer's [out, in] weight is stored, one traits row per format.
// The table (weight_format.cpp) is the only place that knows a format's block geometry, how to
// turn a stored row back into f32, and which matmul kernel family consumes it. Adding a format
// (q8_0, q4 groups, AWQ, GPTQ, FP8) is: a WeightFormat value, its traits row, its kernels (they
// declare the format in their variant's mask) and its converter at load; nothing else.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace qvl {

// Values are stable (they cross the N-API boundary and name parity cases). The dense formats keep
// their DType's value.
// Q8 and Q4 are the group-quantized formats (core/weight_quant.h has their layout).
// F8: float8_e4m3fn elements (official FP8 checkpoints), blocks of 128 along a row, one f32 scale
// per block (scales [out, ld / 128]); an element's value is e4m3 · scale.
enum class WeightFormat : int32_t { F32 = 0, F16 = 1, BF16 = 2, Q8 = 3, Q4 = 4, F8 = 5 };

// Every format, in value order: the parity harness's format axis and info() iterate it.
inline constexpr WeightFormat kWeightFormats[] = {WeightFormat::F32, WeightFormat::F16, WeightFormat::BF16,
                                                  WeightFormat::Q8,  WeightFormat::Q4,  WeightFormat::F8};

// What a matmul kernel does with a format's data. Dense: weights are widened to f32 and multiplied
// with f32 activations in f32 (the exact path). Int8Dot: the activations are quantized per block of
// 32 to int8 (ops/quant_act.h) and multiplied with the weights' integer codes in integer
// arithmetic, one f32 scale product per block (q8, q4: the fast, approximate path). Fp8Block: e4m3
// weights decoded to f32, each 128-block's f32 sum times its scale, f32 activations (exact path).
enum class WeightKernel : int32_t { DenseF32 = 0, Int8Dot = 1, Fp8Block = 2 };

struct WeightRef;

struct WeightFormatTraits {
  WeightFormat format;
  const char* name;
  int64_t block;        // elements per block; a row's length must be a multiple of it
  int64_t block_bytes;  // bytes one block takes in the data (scales and zeros live apart)
  bool has_scales;      // WeightRef::scales must be set (f8: f32 [out, in / 128]; q8/q4: core/weight_quant.h)
  bool has_zeros;       // WeightRef::zeros must be set
  WeightKernel kernel;  // the matmul kernel family that reads this format
  DType activation;     // what that kernel expects the activations as
  // The safetensors dtype a checkpoint stores this format's data in, for the converter.
  DType storage;
  // out[0, n) = row `row` of w, elements [k0, k0 + n), as f32 (exact for the dense formats).
  // k0 and n are multiples of block, except that k0 + n may be the row's end.
  void (*dequantize_row)(const WeightRef& w, int64_t row, int64_t k0, int64_t n, float* out);
  // The inverse, for converters and the parity harness: src[0, n) (n a whole number of blocks) into
  // one stored row `dst`, with that row's scales ([n / group]) and zero points where the format has
  // them (null otherwise), one scale per block (group == block), both in the format's layout (q8,
  // q4: the row form, which core/weight_quant.h's q_panelize assembles into the stored panels).
  // Dense formats round to nearest even, NaN kept; q8/q4 as core/weight_quant.h says (false: a
  // scale overflowed the format, nothing promised about the row); the others always return true.
  bool (*quantize_row)(const float* src, int64_t n, void* dst, void* scales, void* zeros);
  // Copies element c of each of rows [r0, r1) of an [R, C] matrix to dst[c, r] ([C, R]): the MoE
  // repack of "x @ W" experts into [N, K] form. Null where blocks run along the source rows, so a
  // transpose would split them (such checkpoints come per expert in [N, K] form already).
  void (*transpose_rows)(const void* src, void* dst, int64_t R, int64_t C, int64_t r0, int64_t r1);
};

const WeightFormatTraits& weight_format_traits(WeightFormat f);
const char* weight_format_name(WeightFormat f);
// The bit a kernel variant sets in its format mask (ops/registry.h).
inline constexpr uint32_t format_bit(WeightFormat f) { return 1u << static_cast<uint32_t>(f); }
bool weight_format_from_int(int32_t v, WeightFormat* out);
// A checkpoint tensor stored as dtype `t` read as a dense weight: false for non-float dtypes.
bool weight_format_from_dtype(DType t, WeightFormat* out);
// Bytes of `elems` elements of one row: false unless elems is a whole number of blocks and the
// size fits int64.
bool weight_row_bytes(WeightFormat f, int64_t elems, int64_t* out);

// A linear layer's weight as the matmul op reads it: `out` rows of `in` elements in `format`,
// row r starting at byte r * row_bytes(format, ld) (q8/q4: panels of 16 rows, core/weight_quant.h;
// there only a panel's first row has such a start). Not owning: the model keeps the storage alive.
struct WeightRef {
  WeightFormat format = WeightFormat::F32;
  const void* data = nullptr;
  int64_t ld = 0;                  // elements per stored row (>= in, a whole number of blocks)
  const void* scales = nullptr;    // f8: f32 [out, ld / 128]; q8/q4: as core/weight_quant.h lays them out
  const void* zeros = nullptr;     // formats with zero points (q4): as core/weight_quant.h lays them out
  int64_t group = 0;               // elements per scale (a multiple of block dividing ld); 0 for dense formats
  int64_t out = 0, in = 0;         // shape [out, in]

  // Byte offset of row r (the caller has checked the row size fits; see weight_row_bytes).
  int64_t row_offset(int64_t r) const;
  const void* row(int64_t r) const { return static_cast<const char*>(data) + row_offset(r); }
};

// A dense weight: `out` rows of `in` elements, rows `ld` elements apart.
WeightRef dense_weight(WeightFormat f, const void* data, int64_t out, int64_t in, int64_t ld);
// Rows [r, out) of w (0 <= r <= out) as a weight of their own: its data, scales and zero points
// start at row r. q8/q4 weights are sliced at whole panels only (r a multiple of 16; E_NATIVE else).
WeightRef weight_rows_from(const WeightRef& w, int64_t r);

}  // namespace qvl
