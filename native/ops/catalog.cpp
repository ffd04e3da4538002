// The list of op families. Adding an op family = one include and one line here.
#include "ops/registry.h"
#include "ops/moe.h"
#include "ops/sampling.h"
#include "ops/activation.h"
#include "ops/softmax.h"
#include "ops/norm.h"
#include "ops/embedding.h"
#include "ops/attention.h"
#include "ops/rope.h"
#include "ops/matmul.h"
#include "ops/resample.h"
#include "ops/finite.h"
#include "ops/convert.h"
#include "ops/rows.h"
#include "ops/rope_gather.h"
#include "ops/vision_pos_embed.h"
#include "ops/unpack_quant.h"
#include "ops/dequant_groups.h"
#include "ops/token_mask.h"
#include "ops/quantize_row.h"

namespace qvl::ops {

std::vector<const OpFamilyBase*> op_catalog() {
  return {
      &moe_family(),
      &sampling_family(),
      &activation_family(),
      &softmax_family(),
      &layer_norm_family(),
      &rms_norm_family(),
      &embedding_family(),
      &attention_family(),
      &attention_bf16_family(),
      &attention_bf16_decode_family(),
      &rope_family(),
      &matmul_family(),
      &matmul_bf16_family(),
      &resample_family(),
      &finite_family(),
      &convert_family(),
      &rows_family(),
      &rope_gather_family(),
      &vision_pos_embed_family(),
      &unpack_quant_family(),
      &dequant_groups_family(),
      &token_mask_family(),
      &quantize_row_family(),
  };
}

}  // namespace qvl::ops
