// The CUDA backend registers no kernels yet; its lists are where its variants will go
// ({"name", Device::Cuda, Isa::Cuda, &fn, formats}).
#include "backends/cuda/variants.h"

namespace qvl::cuda {

std::vector<ops::Variant<ops::ActivationFn>> activation_variants() { return {}; }
std::vector<ops::Variant<ops::AttentionFn>> attention_variants() { return {}; }
std::vector<ops::Variant<ops::ConvertFn>> convert_variants() { return {}; }
std::vector<ops::Variant<ops::EmbeddingFn>> embedding_variants() { return {}; }
std::vector<ops::Variant<ops::FiniteFn>> finite_variants() { return {}; }
std::vector<ops::Variant<ops::MatmulFn>> matmul_variants() { return {}; }
std::vector<ops::Variant<ops::MoeFn>> moe_variants() { return {}; }
std::vector<ops::Variant<ops::NormFn>> layer_norm_variants() { return {}; }
std::vector<ops::Variant<ops::NormFn>> rms_norm_variants() { return {}; }
std::vector<ops::Variant<ops::ResampleFn>> resample_variants() { return {}; }
std::vector<ops::Variant<ops::RopeFn>> rope_variants() { return {}; }
std::vector<ops::Variant<ops::SampleFn>> sampling_variants() { return {}; }
std::vector<ops::Variant<ops::SoftmaxFn>> softmax_variants() { return {}; }
std::vector<ops::Variant<ops::RopeGatherFn>> rope_gather_variants() { return {}; }
std::vector<ops::Variant<ops::RowsFn>> rows_variants() { return {}; }
std::vector<ops::Variant<ops::VisionPosEmbedFn>> vision_pos_embed_variants() { return {}; }

}  // namespace qvl::cuda
