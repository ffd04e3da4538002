// Every op family with its kernel function type, once: each backend declares its variant lists
// from this (backends/<device>/variants.h), so a new family is one line here plus its lists.
#pragma once
#include <vector>

#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/dequant_groups.h"
#include "ops/embedding.h"
#include "ops/finite.h"
#include "ops/matmul.h"
#include "ops/moe.h"
#include "ops/norm.h"
#include "ops/quantize_row.h"
#include "ops/resample.h"
#include "ops/rope.h"
#include "ops/rope_gather.h"
#include "ops/rows.h"
#include "ops/sampling.h"
#include "ops/softmax.h"
#include "ops/unpack_quant.h"
#include "ops/token_mask.h"
#include "ops/vision_pos_embed.h"

// X(family, Fn) for each family: `family##_variants()` returns std::vector<ops::Variant<ops::Fn>>.
#define QVL_OP_FAMILIES(X)            \
  X(activation, ActivationFn)         \
  X(attention, AttentionFn)           \
  X(attention_bf16, AttentionFn)      \
  X(attention_bf16_decode, AttentionFn) \
  X(convert, ConvertFn)               \
  X(dequant_groups, DequantGroupsFn)  \
  X(embedding, EmbeddingFn)           \
  X(finite, FiniteFn)                 \
  X(matmul, MatmulFn)                 \
  X(matmul_bf16, MatmulFn)            \
  X(moe, MoeFn)                       \
  X(layer_norm, NormFn)               \
  X(quantize_row, QuantizeRowFn)      \
  X(rms_norm, NormFn)                 \
  X(resample, ResampleFn)             \
  X(rope, RopeFn)                     \
  X(sampling, SampleFn)               \
  X(softmax, SoftmaxFn)               \
  X(rope_gather, RopeGatherFn)        \
  X(rows, RowsFn)                     \
  X(unpack_quant, UnpackQuantFn)      \
  X(token_mask, TokenMaskFn)          \
  X(vision_pos_embed, VisionPosEmbedFn)

// Declares one backend's list function for a family (inside the backend's namespace).
#define QVL_DECLARE_VARIANTS(family, Fn) std::vector<::qvl::ops::Variant<::qvl::ops::Fn>> family##_variants();
