// Qwen2.5-VL: RMSNorm + SwiGLU ViT with window attention (full in fullatt_block_indexes),
// merger with an RMSNorm ln_q.
#include "models/family.h"

namespace qvl::models {

extern const Family kQwen25VL = {
    "qwen2_5_vl",
    {/*rms_norm=*/true, /*gated_mlp=*/true, "", "", /*patch_bias=*/false,
     /*learned_pos_embed=*/false, /*window_attention=*/true, "ln_q", "mlp.0", "mlp.2", /*deepstack=*/false},
};

}  // namespace qvl::models
