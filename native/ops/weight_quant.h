// Weight conversions into the group-quantized formats (q8, q4; layout in core/weight_quant.h),
// row-parallel over a thread pool: packing checkpoint codes (AWQ/GPTQ converters, through
// models/quant_pack.h) and quantizing dense weights at load.
#pragma once
#include <cstdint>
#include <string>

#include "core/threadpool.h"
#include "core/weight_format.h"

namespace qvl::ops {

// Logical codes [out, in] (one per byte: q4 0..15, q8 int8 bit patterns) into the stored rows of
// format f (row stride in elements = in), and zero points [out, in / group] (q4: 0..15; q8: null).
// Returns an empty string, or what is wrong (the first code or zero point out of range).
std::string pack_weight_codes(WeightFormat f, const uint8_t* codes, const uint8_t* zeros, int64_t out, int64_t in,
                              int64_t group, void* dst, ThreadPool& pool);

// src [out, in] (any format, read through its dequantizer) -> format f (q8 or q4) with `group`
// elements per scale: data rows of in elements, scales and (q4) zeros [out, in / group].
void quantize_weight(const WeightRef& src, WeightFormat f, int64_t group, void* data, float* scales, uint8_t* zeros,
                     ThreadPool& pool);

}  // namespace qvl::ops
