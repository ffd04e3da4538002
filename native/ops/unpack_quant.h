// The official quantized checkpoints' packed layouts, unpacked into the logical group-quantized
// form the converters hand to models/quant_pack.h: one code per byte [out, in], and per row the
// group scales (widened to f32) and zero points [out, groups]. Lossless bit movement only.
//
//   AwqGemm  qweight [in, out/8] int32: word (i, w) holds columns 8w..8w+7 of input channel i,
//            nibble p (bits 4p..4p+3) holding column 8w + kAwqColumn[p], kAwqColumn = 0,2,4,6,1,3,5,7.
//            qzeros [groups, out/8] packed the same way; scales [groups, out].
//   Gptq     packed along the input: qweight [in/per, out] int32, per = 32/bits values a word,
//            channel i in bits bits·(i%per) of word (i/per, n). qzeros [groups, out/per] packed along
//            the output the same way, each stored zero + zero_offset (1: the classic format, which
//            stores zeros minus one; 0: gptq_v2). scales [groups, out]. Output column j reads input
//            channel perm[j] (act-order, see act_order_columns); 8-bit codes come out as q − 128
//            (int8 bit patterns: the symmetric format's zero is 128).
//   Fp8Blocks the codes stay the file's e4m3 bytes; only the scales unpack: the file's one f32
//            row of scales per block_out rows [ceil(out/block_out), groups] -> one per row.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

enum class QuantPacking { AwqGemm, Gptq, Fp8Blocks };

struct UnpackQuantParams {
  QuantPacking packing = QuantPacking::AwqGemm;
  int64_t bits = 4;           // AwqGemm: 4; Gptq: 4 or 8; Fp8Blocks: unused
  int64_t out = 0, in = 0;    // the weight's [out, in]
  int64_t group = 0;          // AwqGemm/Gptq: input channels per group, dividing in; Fp8Blocks: unused
  int64_t groups = 0;         // scale columns per row: in / group (AwqGemm/Gptq), the file's (Fp8Blocks)
  int64_t block_out = 1;      // Fp8Blocks: rows sharing one row of file scales
  int64_t zero_offset = 0;    // Gptq: added to each stored zero point (0 or 1)
  const uint32_t* qweight = nullptr;  // AwqGemm/Gptq, as above
  const uint32_t* qzeros = nullptr;   // AwqGemm/Gptq, as above
  const int32_t* perm = nullptr;      // Gptq: [in], a permutation of 0..in-1; null: identity
  const void* scales = nullptr;       // file scales, as above
  DType scales_dtype = DType::F32;    // F32, BF16 or F16
  uint8_t* codes = nullptr;           // [out, in]; Fp8Blocks: null
  float* row_scales = nullptr;        // [out, groups]
  uint8_t* zeros = nullptr;           // 4-bit: [out, groups], each zero point mod 16; else null
};

// The first zero point (in row-major [out, groups] order) the internal formats cannot hold: above
// 15 for 4-bit codes, other than 128 for 8-bit ones (those are symmetric). index < 0: none.
struct UnpackQuantStatus {
  int64_t index = -1;  // row · groups + group
  int64_t zero = 0;    // its value (stored + zero_offset)
};

using UnpackQuantFn = UnpackQuantStatus (*)(const UnpackQuantParams&, const ExecContext&);

const OpFamily<UnpackQuantFn>& unpack_quant_family();

// Throws E_INPUT unless p is consistent: sizes, bits and offsets valid, pointers non-null and
// aligned, perm a permutation.
void check_unpack_quant(const UnpackQuantParams& p);
// Validates and runs the best variant.
UnpackQuantStatus unpack_quant(const UnpackQuantParams& p, const ExecContext& ctx);

// GPTQ act-order: the column order that makes each group contiguous, the input channels stably
// sorted by g_idx (null: channel i is in group i / group). Fills perm [in].
struct ActOrderStatus {
  enum Kind { Ok, OutOfRange, UnequalGroup } kind = Ok;
  int64_t at = 0;         // OutOfRange: the channel; UnequalGroup: the group
  int64_t value = 0;      // OutOfRange: its g_idx value
  bool identity = false;  // Ok: perm is 0..in-1
};
// OutOfRange: a g_idx value outside [0, groups); UnequalGroup: group j / group does not hold exactly
// the channels at sorted positions [j·group, min(in, (j+1)·group)) (the first such position j).
ActOrderStatus act_order_columns(const int32_t* g_idx, int64_t in, int64_t group, int64_t groups, int32_t* perm);

}  // namespace qvl::ops
