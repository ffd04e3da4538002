// Layout helpers of the MoE op: the one-time repack of the checkpoint's fused expert tensors
// into the matmul op's [N, K] form (through the weight format's traits: the format knows how its
// elements or blocks may move), and the grouping of routed tokens by expert.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/moe.h"

namespace qvl::ops {

void moe_pack_experts(const void* src, void* dst, WeightFormat f, int64_t E, int64_t R, int64_t C, ThreadPool& pool) {
  QVL_CHECK(E >= 0 && R >= 0 && C >= 0, Input, "moe_pack_experts: negative dimension");
  WeightFormat known;
  QVL_CHECK(weight_format_from_int(static_cast<int32_t>(f), &known), Input,
            "moe_pack_experts: unknown weight format " + std::to_string(static_cast<int32_t>(f)));
  const WeightFormatTraits& t = weight_format_traits(f);
  QVL_CHECK(t.transpose_rows != nullptr, Unsupported,
            std::string("moe_pack_experts: ") + t.name + " experts cannot be transposed (its blocks run along the "
            "checkpoint's rows); convert them per expert in [N, K] form instead");
  if (E == 0 || R == 0 || C == 0) return;
  QVL_CHECK(src && dst, Input, "moe_pack_experts: null pointer");
  QVL_CHECK(R <= INT64_MAX / 8 / C && E <= INT64_MAX / 8 / (R * C), Input, "moe_pack_experts: too large");
  // Both layouts must be whole blocks per row: [R, C] rows of C, [C, R] rows of R.
  int64_t src_row = 0, dst_row = 0;
  QVL_CHECK(weight_row_bytes(f, C, &src_row) && weight_row_bytes(f, R, &dst_row), Input,
            std::string("moe_pack_experts: ") + t.name + " rows come in blocks of " + std::to_string(t.block) +
                " elements; R=" + std::to_string(R) + " and C=" + std::to_string(C) + " must be multiples");
  const int64_t expert_bytes = R * src_row;
  const size_t bytes = static_cast<size_t>(E * expert_bytes);
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  QVL_CHECK(s + bytes <= d || d + bytes <= s, Input, "moe_pack_experts: dst overlaps src");
  // Blocks of 64 source rows per task.
  constexpr int64_t B = 64;
  const int64_t rblocks = (R + B - 1) / B;
  pool.parallel_for(E * rblocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t e = b / rblocks, r0 = (b % rblocks) * B;
      t.transpose_rows(s + e * expert_bytes, d + e * expert_bytes, R, C, r0, std::min(R, r0 + B));
    }
  });
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
