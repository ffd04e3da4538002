// The official quantized checkpoint layouts (AWQ GEMM, GPTQ, block FP8) -> the weight formats the
// matmul op reads. The layouts are described in lib/model/quantization.ts (with where each was
// confirmed); C++ re-checks every tensor's dtype and shape against the layer's expected [out, in].
//
// - AWQ and GPTQ unpack losslessly into per-element codes, per-group scales and zero points
//   (models/quant_pack.h GroupQuantized), W = (q − z)·s (4-bit) or q·s (8-bit, symmetric), packed
//   into the q4 / q8 formats (their f16 scales hold an f16 file's scales exactly; bf16/f32 ones
//   are rounded to f16 in its normal range). Layers those cannot hold (groups not a multiple of
//   32, or a scale f16 cannot hold: core/weight_quant.h) become f32 instead.
// - GPTQ act-order (g_idx not i / group): the weight's columns are permuted so each group is
//   contiguous and ConvertedWeight::perm tells Linear to gather the activations the same way.
// - FP8 e4m3 with 128-wide input blocks becomes WeightFormat::F8 (the file's bytes, zero-copy,
//   and one f32 scale per 128-block of each row). A layer whose input width is not a multiple of
//   128 (no official checkpoint has one) is dequantized to f32 instead: e4m3 · scale in f32, the
//   same single rounding the F8 format's reference makes, so the two agree exactly.
#pragma once
#include <string>

#include "models/weight_converter.h"
#include "models/weights.h"

namespace qvl::models {

// When `prefix` is stored in the checkpoint's quantized layout (it has `<prefix>.qweight`, or a
// float8 `<prefix>.weight`), converts it into *c and returns true; false for a plain dense layer.
// E_MODEL_FORMAT naming the tensor for a missing tensor, a wrong shape, dtype or index, or
// quantized tensors in a checkpoint whose config declares no such quantization; E_UNSUPPORTED
// naming the layer for values the internal formats cannot hold exactly.
bool convert_official_linear(const WeightStore& w, const std::string& prefix, int64_t in, int64_t out,
                             ConvertedWeight* c);

}  // namespace qvl::models
