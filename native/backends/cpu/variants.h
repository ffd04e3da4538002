// The CPU backend's kernel variants: one list per op family, the plain reference first.
// ops/backends.h joins them with the other backends' lists into each op family.
#pragma once
#include <vector>

#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/embedding.h"
#include "ops/finite.h"
#include "ops/matmul.h"
#include "ops/moe.h"
#include "ops/norm.h"
#include "ops/resample.h"
#include "ops/rope_gather.h"
#include "ops/rows.h"
#include "ops/rope.h"
#include "ops/sampling.h"
#include "ops/softmax.h"
#include "ops/vision_pos_embed.h"

namespace qvl::cpu {

std::vector<ops::Variant<ops::ActivationFn>> activation_variants();
std::vector<ops::Variant<ops::AttentionFn>> attention_variants();
std::vector<ops::Variant<ops::ConvertFn>> convert_variants();
std::vector<ops::Variant<ops::EmbeddingFn>> embedding_variants();
std::vector<ops::Variant<ops::FiniteFn>> finite_variants();
std::vector<ops::Variant<ops::MatmulFn>> matmul_variants();
std::vector<ops::Variant<ops::MoeFn>> moe_variants();
std::vector<ops::Variant<ops::NormFn>> layer_norm_variants();
std::vector<ops::Variant<ops::NormFn>> rms_norm_variants();
std::vector<ops::Variant<ops::ResampleFn>> resample_variants();
std::vector<ops::Variant<ops::RopeFn>> rope_variants();
std::vector<ops::Variant<ops::SampleFn>> sampling_variants();
std::vector<ops::Variant<ops::SoftmaxFn>> softmax_variants();
std::vector<ops::Variant<ops::RopeGatherFn>> rope_gather_variants();
std::vector<ops::Variant<ops::RowsFn>> rows_variants();
std::vector<ops::Variant<ops::VisionPosEmbedFn>> vision_pos_embed_variants();

}  // namespace qvl::cpu
