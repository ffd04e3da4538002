// Layout helpers of the MoE op: the one-time repack of the checkpoint's fused expert tensors
// into the matmul op's [N, K] form (through the weight format's traits: the format knows how its
// elements or blocks may move), kept as stored or quantized on the way; the stacking of
// per-expert tensors; and the grouping of routed tokens by expert.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "core/weight_quant.h"
#include "ops/moe.h"
#include "ops/weight_quant.h"

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

int64_t moe_quantize_experts(const void* src, WeightFormat src_format, int64_t E, int64_t R, int64_t C, WeightFormat f,
                             int64_t group, void* data, void* scales, void* zeros, ThreadPool& pool,
                             const std::function<void(int64_t)>& done) {
  QVL_CHECK(E >= 0 && R >= 0 && C >= 0, Input, "moe_quantize_experts: negative dimension");
  WeightFormat known;
  QVL_CHECK(weight_format_from_int(static_cast<int32_t>(src_format), &known) &&
                weight_format_from_int(static_cast<int32_t>(f), &known),
            Input, "moe_quantize_experts: unknown weight format");
  const WeightFormatTraits& st = weight_format_traits(src_format);
  QVL_CHECK(st.kernel == WeightKernel::DenseF32 && st.transpose_rows != nullptr, Unsupported,
            std::string("moe_quantize_experts: ") + st.name + " experts are not a dense format to quantize");
  QVL_CHECK(weight_format_traits(f).kernel == WeightKernel::Int8Dot, Input,
            std::string("moe_quantize_experts: ") + weight_format_name(f) + " is not a group-quantized format");
  QuantRowBytes rb;
  QVL_CHECK(group > 0 && group % kQuantBlock == 0 && R % group == 0 && quant_panel_bytes(f, R, group, &rb), Input,
            "moe_quantize_experts: group " + std::to_string(group) + " must be a multiple of 32 dividing R=" + std::to_string(R));
  // Every expert's C rows start a panel of 16 (core/weight_quant.h), so that experts slice apart.
  QVL_CHECK(E <= 1 || C % kQPanelRows == 0, Unsupported,
            "moe_quantize_experts: C=" + std::to_string(C) + " rows per expert are no whole number of 16-row panels");
  if (E == 0 || R == 0 || C == 0) return -1;
  QVL_CHECK(src && data && scales && (rb.zeros == 0 || zeros), Input, "moe_quantize_experts: null pointer");
  QVL_CHECK(R <= INT64_MAX / 8 / C && E <= INT64_MAX / 8 / (R * C), Input, "moe_quantize_experts: too large");
  int64_t src_row = 0;
  QVL_CHECK(weight_row_bytes(src_format, C, &src_row), Input, "moe_quantize_experts: bad row size");
  const int64_t expert_bytes = R * src_row, groups = R / group;
  const char* s = static_cast<const char*>(src);
  std::atomic<int64_t> bad{std::numeric_limits<int64_t>::max()}, next{0};
  std::exception_ptr err;
  std::mutex mu;
  // Each thread takes experts one at a time into its own buffer, one expert's dense transpose (a
  // few MB at Qwen3-VL-30B's sizes), freed when the conversion ends.
  pool.run_on_all([&](int, int) {
    try {
      std::vector<uint64_t> tmp(static_cast<size_t>((expert_bytes + 7) / 8));
      for (int64_t e = next++; e < E; e = next++) {
        st.transpose_rows(s + e * expert_bytes, tmp.data(), R, C, 0, R);
        if (done) done(e);
        const int64_t row0 = e * C, panel0 = row0 / kQPanelRows;  // rb: bytes per panel
        // Runs inline: this is already a job of the pool.
        const int64_t g = quantize_weight(dense_weight(src_format, tmp.data(), C, R, R), f, group,
                                          static_cast<char*>(data) + panel0 * rb.codes,
                                          static_cast<char*>(scales) + panel0 * rb.scales,
                                          rb.zeros ? static_cast<char*>(zeros) + panel0 * rb.zeros : nullptr, pool);
        int64_t cur = bad.load();
        const int64_t v = g < 0 ? cur : row0 * groups + g;
        while (v < cur && !bad.compare_exchange_weak(cur, v)) {
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!err) err = std::current_exception();
      next = E;  // the other threads stop after their current expert
    }
  });
  if (err) std::rethrow_exception(err);
  return bad.load() == std::numeric_limits<int64_t>::max() ? -1 : bad.load();
}

namespace {

// Bytes of rows [0, w.out) of each of a weight's buffers (data, scales, zero points), as the
// format lays them out (the offset of row w.out).
void row_span_bytes(const WeightRef& w, int64_t bytes[3]) {
  const WeightRef end = weight_rows_from(w, w.out);
  const auto diff = [](const void* a, const void* b) { return static_cast<const char*>(a) - static_cast<const char*>(b); };
  bytes[0] = diff(end.data, w.data);
  bytes[1] = w.scales ? diff(end.scales, w.scales) : 0;
  bytes[2] = w.zeros ? diff(end.zeros, w.zeros) : 0;
}

}  // namespace

WeightRef moe_stack_expert_rows(const WeightRef* parts, int64_t n, void* data, void* scales, void* zeros, ThreadPool& pool) {
  QVL_CHECK(parts && n >= 1, Input, "moe_stack_expert_rows: no parts");
  const WeightRef& a = parts[0];
  WeightFormat known;
  QVL_CHECK(weight_format_from_int(static_cast<int32_t>(a.format), &known), Input, "moe_stack_expert_rows: unknown weight format");
  const WeightFormatTraits& t = weight_format_traits(a.format);
  int64_t row_bytes = 0;
  QVL_CHECK(a.in >= 0 && a.ld >= a.in && weight_row_bytes(a.format, a.ld, &row_bytes), Input,
            "moe_stack_expert_rows: bad row geometry");
  std::vector<int64_t> first(static_cast<size_t>(n) + 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    const WeightRef& p = parts[i];
    QVL_CHECK(p.format == a.format && p.in == a.in && p.ld == a.ld && p.group == a.group && p.out >= 0 && p.data &&
                  (!t.has_scales || p.scales) && (!t.has_zeros || p.zeros),
              Input, "moe_stack_expert_rows: part " + std::to_string(i) + " differs from part 0 in format or geometry");
    QVL_CHECK(p.out <= (int64_t{1} << 40) / std::max<int64_t>(row_bytes, 1) - first[i], Input, "moe_stack_expert_rows: too large");
    // q8/q4 rows move as whole 16-row panels (core/weight_quant.h).
    QVL_CHECK(t.kernel != WeightKernel::Int8Dot || p.out % kQPanelRows == 0, Unsupported,
              "moe_stack_expert_rows: part " + std::to_string(i) + " has " + std::to_string(p.out) + " " + t.name +
                  " rows, no whole number of 16-row panels");
    first[i + 1] = first[i] + p.out;
  }
  QVL_CHECK(data && (!t.has_scales || scales) && (!t.has_zeros || zeros), Input, "moe_stack_expert_rows: null destination");
  WeightRef d = a;
  d.data = data, d.scales = t.has_scales ? scales : nullptr, d.zeros = t.has_zeros ? zeros : nullptr, d.out = first[n];
  void* const dst[3] = {data, d.scales ? scales : nullptr, d.zeros ? zeros : nullptr};
  pool.parallel_for(n, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      int64_t at[3], len[3];
      WeightRef head = d;
      head.out = first[i];
      row_span_bytes(head, at);
      row_span_bytes(parts[i], len);
      const void* const from[3] = {parts[i].data, parts[i].scales, parts[i].zeros};
      for (int k = 0; k < 3; ++k)
        if (len[k] > 0) std::memcpy(static_cast<char*>(dst[k]) + at[k], from[k], static_cast<size_t>(len[k]));
    }
  });
  return d;
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
