// Qwen3-VL and Qwen3-VL-MoE: LayerNorm + GELU(tanh) ViT with a biased patch embedding, learned
// position embeddings and DeepStack mergers. The two differ only in the decoder (dense or
// mixture-of-experts layers, with q/k norm and interleaved M-RoPE), which config.json describes.
#include "models/family.h"

namespace qvl::models {

namespace {
constexpr VisionRecipe kQwen3Vision = {
    /*rms_norm=*/false, /*gated_mlp=*/false, "mlp.linear_fc1", "mlp.linear_fc2", /*patch_bias=*/true,
    /*learned_pos_embed=*/true, /*window_attention=*/false, "norm", "linear_fc1", "linear_fc2", /*deepstack=*/true};
}  // namespace

extern const Family kQwen3VL = {"qwen3_vl", kQwen3Vision};
extern const Family kQwen3VLMoe = {"qwen3_vl_moe", kQwen3Vision};

}  // namespace qvl::models
