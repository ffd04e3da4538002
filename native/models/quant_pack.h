// The one door into the group-quantized weight formats (q8, q4) for checkpoint converters (AWQ,
// GPTQ, ...): they produce the logical form below and never depend on the physical layout
// (core/weight_quant.h), which the kernels are free to change.
#pragma once
#include <cstdint>
#include <vector>

#include "core/placement.h"
#include "core/threadpool.h"
#include "core/weight_format.h"
#include "models/weight_converter.h"

namespace qvl::models {

// Logical group-quantized weights, one byte per element, row-major [out, in].
// Q4: W = (q − zero) · scale; Q8: W = q · scale (q the int8 value).
struct GroupQuantized {
  WeightFormat format = WeightFormat::Q4;  // Q4 or Q8
  int64_t out = 0, in = 0, group = 0;      // group: a multiple of 32 dividing in
  std::vector<uint8_t> q;                  // Q4: values 0..15; Q8: int8 values stored as uint8 bit patterns
  std::vector<float> scales;               // [out, in / group], finite
  std::vector<uint8_t> zeros;              // Q4: [out, in / group], values 0..15; Q8: empty
};

// Packs into the format's physical layout, validating every size and value range (E_MODEL_FORMAT
// saying what is wrong; a scale f16 cannot hold is one: see core/weight_quant.h).
ConvertedWeight pack_group_quantized(const GroupQuantized& g, ThreadPool& pool);

// Uninitialised storage of a q8/q4 weight [out, in] with `group` elements per scale, in `pages`,
// its reference set (codes, scales and, for q4, zero points: one tensor each, in that order).
ConvertedWeight empty_group_quantized(WeightFormat f, int64_t out, int64_t in, int64_t group, Pages pages);

}  // namespace qvl::models
