// Int8Dot matmul with AVX2 (vpmaddubsw + vpmaddwd on ymm): the shared ymm body, matmul_q_ymm.h.
#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/matmul_q.h"
#include "backends/cpu/thread_scratch.h"
#include "core/cpu.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

namespace {
#define QVL_Q_TARGET QVL_TARGET_AVX2
#define QVL_Q_VNNI 0
#include "backends/cpu/matmul_q_ymm.h"
#undef QVL_Q_TARGET
#undef QVL_Q_VNNI

const QKernels kKernels = {quantize, tile};
}  // namespace

void matmul_q_avx2(const ops::MatmulParams& p, const ExecContext& ctx) { run_qmatmul(p, ctx.pool(), kKernels); }

}  // namespace qvl::cpu
