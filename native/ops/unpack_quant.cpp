#include "ops/unpack_quant.h"

#include <string>
#include <vector>

#include "ops/backends.h"
#include "ops/rows_check.h"

namespace qvl::ops {

const OpFamily<UnpackQuantFn>& unpack_quant_family() {
  static const OpFamily<UnpackQuantFn> family("unpack_quant", QVL_BACKEND_VARIANTS(unpack_quant));
  return family;
}

namespace {

std::string n2s(int64_t v) { return std::to_string(v); }

const char* packing_name(QuantPacking k) {
  switch (k) {
    case QuantPacking::AwqGemm: return "awq_gemm";
    case QuantPacking::Gptq: return "gptq";
    case QuantPacking::Fp8Blocks: return "fp8_blocks";
  }
  return "?";
}

void check_perm(const std::string& where, const int32_t* perm, int64_t in) {
  std::vector<char> seen(static_cast<size_t>(in), 0);
  for (int64_t j = 0; j < in; ++j) {
    const int64_t i = perm[j];
    QVL_CHECK(i >= 0 && i < in && !seen[static_cast<size_t>(i)], Input,
              where + ": perm[" + n2s(j) + "] = " + n2s(i) + " is not an unused channel below " + n2s(in));
    seen[static_cast<size_t>(i)] = 1;
  }
}

// Every layout's files hold their scales in one of these (Qwen's own FP8 releases: bf16 or f16).
void check_scales_dtype(const std::string& where, DType d) {
  QVL_CHECK(d == DType::F32 || d == DType::BF16 || d == DType::F16, Input,
            where + ": scales must be f32, bf16 or f16 (got " + dtype_name(d) + ")");
}

}  // namespace

void check_unpack_quant(const UnpackQuantParams& p) {
  const std::string where = std::string("unpack_quant ") + packing_name(p.packing);
  const char* op = "unpack_quant";
  QVL_CHECK(p.out >= 1 && p.in >= 1 && p.out <= (int64_t{1} << 40) / p.in, Input,
            where + ": bad shape [" + n2s(p.out) + "," + n2s(p.in) + "]");
  QVL_CHECK(p.groups >= 1 && p.groups <= p.in, Input, where + ": " + n2s(p.groups) + " scale groups for " + n2s(p.in) + " inputs");
  check_rows(op, "row_scales", p.row_scales, p.out, p.groups, p.groups, sizeof(float));
  if (p.packing == QuantPacking::Fp8Blocks) {
    QVL_CHECK(p.block_out >= 1, Input, where + ": block_out must be >= 1 (got " + n2s(p.block_out) + ")");
    check_scales_dtype(where, p.scales_dtype);
    check_rows(op, "scales", p.scales, (p.out + p.block_out - 1) / p.block_out, p.groups, p.groups, dtype_size(p.scales_dtype));
    QVL_CHECK(!p.codes && !p.zeros && !p.qweight && !p.qzeros && !p.perm, Input,
              where + ": only scales unpack (codes, zeros, qweight, qzeros and perm must be null)");
    return;
  }
  QVL_CHECK(p.packing == QuantPacking::AwqGemm || p.packing == QuantPacking::Gptq, Input, where + ": unknown packing");
  const bool awq = p.packing == QuantPacking::AwqGemm;
  QVL_CHECK(awq ? p.bits == 4 : (p.bits == 4 || p.bits == 8), Input, where + ": " + n2s(p.bits) + " bits");
  QVL_CHECK(p.group >= 1 && p.in % p.group == 0 && p.groups == p.in / p.group, Input,
            where + ": group " + n2s(p.group) + " must divide in " + n2s(p.in) + " into " + n2s(p.groups) + " groups");
  check_scales_dtype(where, p.scales_dtype);
  check_rows(op, "scales", p.scales, p.groups, p.out, p.out, dtype_size(p.scales_dtype));
  check_rows(op, "codes", p.codes, p.out, p.in, p.in, 1);
  if (p.bits == 4) {
    check_rows(op, "zeros", p.zeros, p.out, p.groups, p.groups, 1);
  } else {
    QVL_CHECK(p.zeros == nullptr, Input, where + ": 8-bit codes have no zero points (zeros must be null)");
  }
  const int64_t per = 32 / p.bits;
  if (awq) {
    QVL_CHECK(p.out % 8 == 0, Input, where + ": out " + n2s(p.out) + " is not a multiple of 8");
    QVL_CHECK(p.zero_offset == 0 && p.perm == nullptr, Input, where + ": no zero offset or perm");
    check_rows(op, "qweight", p.qweight, p.in, p.out / 8, p.out / 8, sizeof(uint32_t));
    check_rows(op, "qzeros", p.qzeros, p.groups, p.out / 8, p.out / 8, sizeof(uint32_t));
    return;
  }
  QVL_CHECK(p.in % per == 0 && p.out % per == 0, Input,
            where + ": [" + n2s(p.out) + "," + n2s(p.in) + "] is not a whole number of " + n2s(per) + "-value words");
  QVL_CHECK(p.zero_offset == 0 || p.zero_offset == 1, Input, where + ": zero offset must be 0 or 1");
  check_rows(op, "qweight", p.qweight, p.in / per, p.out, p.out, sizeof(uint32_t));
  check_rows(op, "qzeros", p.qzeros, p.groups, p.out / per, p.out / per, sizeof(uint32_t));
  if (p.perm) check_perm(where, p.perm, p.in);
}

UnpackQuantStatus unpack_quant(const UnpackQuantParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "unpack_quant");
  check_unpack_quant(p);
  return unpack_quant_family().best(ctx.device()).fn(p, ctx);
}

// A stable counting sort by group, then the same position-by-position check the layout needs.
ActOrderStatus act_order_columns(const int32_t* g_idx, int64_t in, int64_t group, int64_t groups, int32_t* perm) {
  QVL_CHECK(in >= 1 && group >= 1 && groups >= 1 && perm != nullptr, Input, "act_order_columns: bad arguments");
  ActOrderStatus s;
  auto group_of = [&](int64_t i) -> int64_t { return g_idx ? g_idx[i] : i / group; };
  std::vector<int64_t> start(static_cast<size_t>(groups) + 1, 0);
  for (int64_t i = 0; i < in; ++i) {
    const int64_t g = group_of(i);
    if (g < 0 || g >= groups) {
      s.kind = ActOrderStatus::OutOfRange, s.at = i, s.value = g;
      return s;
    }
    ++start[static_cast<size_t>(g) + 1];
  }
  for (int64_t g = 0; g < groups; ++g) start[static_cast<size_t>(g) + 1] += start[static_cast<size_t>(g)];
  for (int64_t i = 0; i < in; ++i) perm[start[static_cast<size_t>(group_of(i))]++] = static_cast<int32_t>(i);
  s.identity = true;
  for (int64_t j = 0; j < in; ++j) {
    if (group_of(perm[j]) != j / group) {
      s.kind = ActOrderStatus::UnequalGroup, s.at = j / group, s.identity = false;
      return s;
    }
    s.identity = s.identity && perm[j] == j;
  }
  return s;
}

}  // namespace qvl::ops
