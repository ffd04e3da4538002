// Qwen2-VL: LayerNorm + QuickGELU ViT with full attention per image, PatchMerger (ln_q, mlp.0/2).
#include "models/family.h"

namespace qvl::models {

extern const Family kQwen2VL = {
    "qwen2_vl",
    {/*rms_norm=*/false, /*gated_mlp=*/false, "mlp.fc1", "mlp.fc2", /*patch_bias=*/false,
     /*learned_pos_embed=*/false, /*window_attention=*/false, "ln_q", "mlp.0", "mlp.2", /*deepstack=*/false},
};

}  // namespace qvl::models
