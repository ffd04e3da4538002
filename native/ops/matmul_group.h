// Independent matmul problems of a few rows each run as one pool job: a layer's q, k and v
// projections, its MLP's gate and up. Decode issues a job per matmul, and each job costs a
// wake-up of the pool's threads and a barrier; the k and v projections (N = 256 at the 2B
// model's widths) are so small that the barrier is a large share of their time. Grouped, the
// parts' output rows are dealt out together, so a step pays one barrier for the group and the
// small parts fill the threads' time beside the large ones.
//
// Every part runs the variant matmul() would run for it, over the same rows in runs that start
// at the same multiples of 16 from the part's first row, so the results are bit-identical to
// one matmul() per part (tests/parity_matmul_group.cpp checks it).
#pragma once
#include <cstdint>

#include "core/exec_context.h"
#include "ops/matmul.h"

namespace qvl::ops {

// Rows up to which matmul_group shares one job between its parts: the matmul drivers' decode
// path (weights streamed once, split over output rows). Larger problems have work enough to fill
// the threads on their own and run one matmul() per part.
constexpr int64_t kMatmulGroupMaxRows = 4;
// Parts one matmul_group takes: a layer groups two or three projections.
constexpr int64_t kMatmulGroupMaxParts = 8;

// Runs parts[0, n) (each a complete problem, checked as matmul() checks it) as one job when every
// part has at most kMatmulGroupMaxRows rows and runs on the host, else one matmul() after another.
// At most kMatmulGroupMaxParts parts (E_INPUT).
// Throws E_ABORTED / E_DISPOSED as matmul() does when a part's cancel token is set.
void matmul_group(const MatmulParams* parts, int64_t n, const ExecContext& ctx);

}  // namespace qvl::ops
