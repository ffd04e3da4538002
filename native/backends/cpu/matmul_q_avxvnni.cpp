// Int8Dot matmul with AVX-VNNI (VEX vpdpbusd on ymm): the shared ymm bodies, matmul_q_ymm.h
// (quantizer, row tiles) and matmul_q_gemm_ymm.h (the GEMM from kQGemmMinRows rows).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "backends/cpu/matmul_q.h"
#include "backends/cpu/matmul_q_gemm.h"
#include "backends/cpu/thread_scratch.h"
#include "backends/cpu/vec_math.h"
#include "core/cpu.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

namespace {
#define QVL_Q_TARGET QVL_TARGET_AVXVNNI
#define QVL_Q_VNNI 1
#include "backends/cpu/matmul_q_ymm.h"
#include "backends/cpu/matmul_q_gemm_ymm.h"
#undef QVL_Q_TARGET
#undef QVL_Q_VNNI

const QKernels kKernels = {quantize, tile, gemm};
}  // namespace

void matmul_q_avxvnni(const ops::MatmulParams& p, const ExecContext& ctx) { run_qmatmul(p, ctx, kKernels); }

}  // namespace qvl::cpu
