// Layout helpers of the MoE op: the one-time repack of the checkpoint's fused expert tensors
// into the matmul op's [N, K] form, and the grouping of routed tokens by expert.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/moe.h"

namespace qvl::ops {

namespace {

// Blocked transpose of one [R, C] matrix: blocks of 64x64 elements keep both the reads and the
// writes within a few pages (a row-by-row transpose of a 2048-wide bf16 matrix touches a new page
// on every element it writes).
template <class T>
void transpose_block(const T* src, T* dst, int64_t R, int64_t C, int64_t r0, int64_t r1) {
  constexpr int64_t B = 64;
  for (int64_t c0 = 0; c0 < C; c0 += B) {
    const int64_t c1 = std::min(C, c0 + B);
    for (int64_t r = r0; r < r1; ++r) {
      const T* s = src + r * C;
      for (int64_t c = c0; c < c1; ++c) dst[c * R + r] = s[c];
    }
  }
}

template <class T>
void pack_typed(const T* src, T* dst, int64_t E, int64_t R, int64_t C, ThreadPool& pool) {
  constexpr int64_t B = 64;
  const int64_t rblocks = (R + B - 1) / B;
  pool.parallel_for(E * rblocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t e = b / rblocks, r0 = (b % rblocks) * B;
      transpose_block(src + e * R * C, dst + e * R * C, R, C, r0, std::min(R, r0 + B));
    }
  });
}

}  // namespace

void moe_pack_experts(const void* src, void* dst, DType dtype, int64_t E, int64_t R, int64_t C, ThreadPool& pool) {
  QVL_CHECK(E >= 0 && R >= 0 && C >= 0, Input, "moe_pack_experts: negative dimension");
  QVL_CHECK(dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16, Input,
            std::string("moe_pack_experts: dtype must be f32, bf16 or f16 (got ") + dtype_name(dtype) + ")");
  if (E == 0 || R == 0 || C == 0) return;
  QVL_CHECK(src && dst, Input, "moe_pack_experts: null pointer");
  QVL_CHECK(R <= INT64_MAX / 8 / C && E <= INT64_MAX / 8 / (R * C), Input, "moe_pack_experts: too large");
  const size_t bytes = static_cast<size_t>(E * R * C) * dtype_size(dtype);
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  QVL_CHECK(s + bytes <= d || d + bytes <= s, Input, "moe_pack_experts: dst overlaps src");
  if (dtype == DType::F32) {
    pack_typed(static_cast<const uint32_t*>(src), static_cast<uint32_t*>(dst), E, R, C, pool);
  } else {
    pack_typed(static_cast<const uint16_t*>(src), static_cast<uint16_t*>(dst), E, R, C, pool);
  }
}

void moe_group(const int32_t* ids, int64_t T, int64_t k, int64_t E, int64_t* counts, int64_t* offsets, int64_t* rows) {
  std::fill(counts, counts + E, int64_t{0});
  for (int64_t i = 0; i < T * k; ++i) {
    QVL_CHECK(ids[i] >= 0 && ids[i] < E, Input,
              "moe_group: expert id " + std::to_string(ids[i]) + " of token " + std::to_string(i / k) +
                  " is outside [0, " + std::to_string(E) + ")");
    ++counts[ids[i]];
  }
  offsets[0] = 0;
  for (int64_t e = 0; e < E; ++e) offsets[e + 1] = offsets[e] + counts[e];
  // Counting sort, stable in (token, slot) order.
  std::vector<int64_t> fill(offsets, offsets + E);
  for (int64_t i = 0; i < T * k; ++i) rows[fill[ids[i]]++] = i;
}

}  // namespace qvl::ops
