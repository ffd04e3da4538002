#include "ops/dequant_groups.h"

#include <string>

#include "ops/backends.h"
#include "ops/rows_check.h"

namespace qvl::ops {

const OpFamily<DequantGroupsFn>& dequant_groups_family() {
  static const OpFamily<DequantGroupsFn> family("dequant_groups", QVL_BACKEND_VARIANTS(dequant_groups));
  return family;
}

void check_dequant_groups(const DequantGroupsParams& p) {
  const char* op = "dequant_groups";
  QVL_CHECK(p.format == WeightFormat::Q4 || p.format == WeightFormat::Q8 || p.format == WeightFormat::F8, Input,
            std::string(op) + ": format must be q4, q8 or f8 (got " + weight_format_name(p.format) + ")");
  QVL_CHECK(p.out >= 0 && p.in >= 1 && p.group >= 1, Input,
            std::string(op) + ": bad problem out=" + std::to_string(p.out) + " in=" + std::to_string(p.in) +
                " group=" + std::to_string(p.group));
  const int64_t groups = (p.in + p.group - 1) / p.group;
  check_rows(op, "codes", p.codes, p.out, p.in, p.in, 1);
  check_rows(op, "scales", p.scales, p.out, groups, groups, sizeof(float));
  check_rows(op, "dst", p.dst, p.out, p.in, p.in, sizeof(float));
  if (p.format == WeightFormat::Q4) {
    check_rows(op, "zeros", p.zeros, p.out, groups, groups, 1);
  } else {
    QVL_CHECK(p.zeros == nullptr, Input, std::string(op) + ": only q4 has zero points");
  }
}

void dequant_groups(const DequantGroupsParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "dequant_groups");
  check_dequant_groups(p);
  if (p.out == 0) return;
  dequant_groups_family().best(ctx.device()).fn(p, ctx);
}

}  // namespace qvl::ops
