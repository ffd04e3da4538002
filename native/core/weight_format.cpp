#include "core/weight_format.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "core/error.h"
#include "core/weight_quant.h"

namespace qvl {

namespace {

void dequant_f32(const WeightRef& w, int64_t row, int64_t k0, int64_t n, float* out) {
  std::memcpy(out, static_cast<const float*>(w.row(row)) + k0, static_cast<size_t>(n) * sizeof(float));
}

void dequant_bf16(const WeightRef& w, int64_t row, int64_t k0, int64_t n, float* out) {
  const uint16_t* s = static_cast<const uint16_t*>(w.row(row)) + k0;
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(s[i]);
}

void dequant_f16(const WeightRef& w, int64_t row, int64_t k0, int64_t n, float* out) {
  const uint16_t* s = static_cast<const uint16_t*>(w.row(row)) + k0;
  for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(s[i]);
}

bool quant_f32(const float* src, int64_t n, void* dst, void*, void*) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  return true;
}

bool quant_bf16(const float* src, int64_t n, void* dst, void*, void*) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
  return true;
}

bool quant_f16(const float* src, int64_t n, void* dst, void*, void*) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
  return true;
}

void dequant_q(const WeightRef& w, int64_t row, int64_t k0, int64_t n, float* out) { q_dequantize_row(w, row, k0, n, out); }

bool quant_q8(const float* src, int64_t n, void* dst, void* scales, void*) {
  return q8_quantize(src, n, kQuantBlock, static_cast<uint8_t*>(dst), static_cast<uint16_t*>(scales)) < 0;
}

bool quant_q4(const float* src, int64_t n, void* dst, void* scales, void* zeros) {
  return q4_quantize(src, n, kQuantBlock, static_cast<uint8_t*>(dst), static_cast<uint16_t*>(scales),
                     static_cast<uint8_t*>(zeros)) < 0;
}

// Blocked transpose of elements of type T (copied bit for bit): 64x64 blocks keep both the reads
// and the writes within a few pages (a row-by-row transpose of a 2048-wide bf16 matrix touches a
// new page on every element it writes).
template <class T>
void transpose_elements(const void* src, void* dst, int64_t R, int64_t C, int64_t r0, int64_t r1) {
  constexpr int64_t B = 64;
  const T* s0 = static_cast<const T*>(src);
  T* d = static_cast<T*>(dst);
  for (int64_t c0 = 0; c0 < C; c0 += B) {
    const int64_t c1 = std::min(C, c0 + B);
    for (int64_t r = r0; r < r1; ++r) {
      const T* s = s0 + r * C;
      for (int64_t c = c0; c < c1; ++c) d[c * R + r] = s[c];
    }
  }
}

// float8_e4m3fn -> f32 for every byte pattern, built once (exact; the two NaN patterns give NaN).
struct F8Table {
  float v[256];
  F8Table() {
    for (int b = 0; b < 256; ++b) v[b] = f8e4m3_to_f32(static_cast<uint8_t>(b));
  }
};
const F8Table& f8_table() {
  static const F8Table t;
  return t;
}

constexpr int64_t kF8Block = 128;

void dequant_f8(const WeightRef& w, int64_t row, int64_t k0, int64_t n, float* out) {
  const uint8_t* s = static_cast<const uint8_t*>(w.row(row));
  const float* scale = static_cast<const float*>(w.scales) + row * (w.ld / kF8Block);
  const float* t = f8_table().v;
  for (int64_t k = k0; k < k0 + n;) {  // per block, the scale hoisted (matmul_bf16 reads every weight so)
    const int64_t end = std::min(k0 + n, (k / kF8Block + 1) * kF8Block);
    const float sc = scale[k / kF8Block];
    for (int64_t i = k; i < end; ++i) out[i - k0] = t[s[i]] * sc;
    k = end;
  }
}

// Per block: scale = max|x| / 448 (1 for an all-zero block), elements x / scale rounded to e4m3.
// NaN inputs (the parity harness's row padding) are skipped for the scale and stored as NaN.
bool quant_f8(const float* src, int64_t n, void* dst, void* scale_out, void*) {
  uint8_t* d = static_cast<uint8_t*>(dst);
  float* scales = static_cast<float*>(scale_out);
  for (int64_t b = 0; b < n / kF8Block; ++b) {
    float amax = 0.0f;
    for (int64_t i = 0; i < kF8Block; ++i) {
      const float a = std::fabs(src[b * kF8Block + i]);
      if (a > amax) amax = a;
    }
    const float s = amax > 0.0f ? amax / 448.0f : 1.0f;
    scales[b] = s;
    for (int64_t i = 0; i < kF8Block; ++i) d[b * kF8Block + i] = f32_to_f8e4m3(src[b * kF8Block + i] / s);
  }
  return true;
}

constexpr WeightFormatTraits kF32 = {WeightFormat::F32, "f32", 1, 4, false, false, WeightKernel::DenseF32,
                                     DType::F32, DType::F32, dequant_f32, quant_f32, transpose_elements<uint32_t>};
constexpr WeightFormatTraits kF16 = {WeightFormat::F16, "f16", 1, 2, false, false, WeightKernel::DenseF32,
                                     DType::F32, DType::F16, dequant_f16, quant_f16, transpose_elements<uint16_t>};
constexpr WeightFormatTraits kBF16 = {WeightFormat::BF16, "bf16", 1, 2, false, false, WeightKernel::DenseF32,
                                      DType::F32, DType::BF16, dequant_bf16, quant_bf16, transpose_elements<uint16_t>};
constexpr WeightFormatTraits kF8 = {WeightFormat::F8, "fp8", kF8Block, kF8Block, true, false, WeightKernel::Fp8Block,
                                    DType::F32, DType::F8E4M3, dequant_f8, quant_f8, nullptr};

// Blocks run along the rows: no transpose (an "x @ W" expert tensor is not quantized in place).
// quantize_row writes the row form, which q_panelize assembles (core/weight_quant.h).
constexpr WeightFormatTraits kQ8 = {WeightFormat::Q8, "q8", kQuantBlock, kQuantBlock, true, false, WeightKernel::Int8Dot,
                                    DType::F32, DType::U8, dequant_q, quant_q8, nullptr};
constexpr WeightFormatTraits kQ4 = {WeightFormat::Q4, "q4", kQuantBlock, kQuantBlock / 2, true, true, WeightKernel::Int8Dot,
                                    DType::F32, DType::U8, dequant_q, quant_q4, nullptr};

}  // namespace

const WeightFormatTraits& weight_format_traits(WeightFormat f) {
  switch (f) {
    case WeightFormat::F32: return kF32;
    case WeightFormat::F16: return kF16;
    case WeightFormat::BF16: return kBF16;
    case WeightFormat::Q8: return kQ8;
    case WeightFormat::Q4: return kQ4;
    case WeightFormat::F8: return kF8;
  }
  fail(ErrorCode::Native, "weight format " + std::to_string(static_cast<int32_t>(f)) + " has no traits");
}

const char* weight_format_name(WeightFormat f) { return weight_format_traits(f).name; }

bool weight_format_from_int(int32_t v, WeightFormat* out) {
  const WeightFormat f = static_cast<WeightFormat>(v);
  switch (f) {
    case WeightFormat::F32:
    case WeightFormat::F16:
    case WeightFormat::BF16:
    case WeightFormat::Q8:
    case WeightFormat::Q4:
    case WeightFormat::F8:
      *out = f;
      return true;
  }
  return false;
}

bool weight_format_from_dtype(DType t, WeightFormat* out) {
  switch (t) {
    case DType::F32: *out = WeightFormat::F32; return true;
    case DType::F16: *out = WeightFormat::F16; return true;
    case DType::BF16: *out = WeightFormat::BF16; return true;
    case DType::I32:
    case DType::I64:
    case DType::F8E4M3:
    case DType::U8:
      return false;
  }
  return false;
}

bool weight_row_bytes(WeightFormat f, int64_t elems, int64_t* out) {
  const WeightFormatTraits& t = weight_format_traits(f);
  if (elems < 0 || elems % t.block != 0) return false;
  const int64_t blocks = elems / t.block;
  if (blocks > std::numeric_limits<int64_t>::max() / t.block_bytes) return false;
  *out = blocks * t.block_bytes;
  return true;
}

int64_t WeightRef::row_offset(int64_t r) const {
  const WeightFormatTraits& t = weight_format_traits(format);
  return r * (ld / t.block) * t.block_bytes;
}

WeightRef dense_weight(WeightFormat f, const void* data, int64_t out, int64_t in, int64_t ld) {
  WeightRef w;
  w.format = f;
  w.data = data;
  w.out = out;
  w.in = in;
  w.ld = ld;
  return w;
}

WeightRef weight_rows_from(const WeightRef& w, int64_t r) {
  QVL_CHECK(weight_format_traits(w.format).kernel != WeightKernel::Int8Dot || r % kQPanelRows == 0, Native,
            std::string(weight_format_name(w.format)) + " rows are sliced at whole panels of 16, not at row " + std::to_string(r));
  WeightRef s = w;
  s.out = w.out - r;
  s.data = w.row(r);
  switch (w.format) {
    case WeightFormat::F32:
    case WeightFormat::F16:
    case WeightFormat::BF16: break;
    case WeightFormat::F8: s.scales = static_cast<const float*>(w.scales) + r * (w.ld / kF8Block); break;
    case WeightFormat::Q8: s.scales = q_panel_scales(w, r / kQPanelRows); break;
    case WeightFormat::Q4:
      s.scales = q_panel_scales(w, r / kQPanelRows);
      s.zeros = q_panel_zeros(w, r / kQPanelRows);
      break;
  }
  return s;
}

}  // namespace qvl
