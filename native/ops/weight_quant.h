// Weight conversions into the group-quantized formats (q8, q4; layout in core/weight_quant.h),
// panel-parallel over a thread pool (each panel's 16 rows staged in the row form, then assembled): packing checkpoint codes (AWQ/GPTQ converters, through
// models/quant_pack.h) and quantizing dense weights at load.
#pragma once
#include <cstdint>
#include <string>

#include "core/threadpool.h"
#include "core/weight_format.h"

namespace qvl::ops {

// The logical form of a q8/q4 weight (as models/quant_pack.h has it): codes [out, in] (one per
// byte: q4 0..15, q8 int8 bit patterns), scales [out, in / group] f32, zero points
// [out, in / group] (q4: 0..15; q8: null).
struct LogicalQuant {
  WeightFormat format = WeightFormat::Q4;
  int64_t out = 0, in = 0, group = 0;
  const uint8_t* codes = nullptr;
  const float* scales = nullptr;
  const uint8_t* zeros = nullptr;
};

// The first of n scales the stored format cannot hold (core/weight_quant.h, q_scale_from_f32), or -1.
int64_t first_unstorable_scale(const float* scales, int64_t n);

// g into the stored (panel) layout of g.format (row length ld = in; core/weight_quant.h's
// quant_weight_bytes gives each buffer's size). Returns an empty string, or what is wrong (the
// first code, zero point or scale out of range).
std::string pack_weight_codes(const LogicalQuant& g, void* data, void* scales, void* zeros, ThreadPool& pool);

// src [out, in] (any format, read through its dequantizer) -> format f (q8 or q4) with `group`
// elements per scale, into buffers laid out as quant_weight_bytes says; each row through the best
// quantize_row variant (ops/quantize_row.h: the same bytes as core's scalar quantizers). Returns -1, or the first
// (row-major) group whose scale overflows the stored format (nothing promised about the buffers).
int64_t quantize_weight(const WeightRef& src, WeightFormat f, int64_t group, void* data, void* scales, void* zeros,
                        ThreadPool& pool);

}  // namespace qvl::ops
