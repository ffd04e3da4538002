#include "ops/quantize_row.h"

#include <string>

#include "core/weight_quant.h"
#include "ops/backends.h"

namespace qvl::ops {

const OpFamily<QuantizeRowFn>& quantize_row_family() {
  static const OpFamily<QuantizeRowFn> family("quantize_row", QVL_BACKEND_VARIANTS(quantize_row));
  return family;
}

void check_quantize_row(const QuantizeRowParams& p) {
  const char* op = "quantize_row";
  QVL_CHECK(p.format == WeightFormat::Q8 || p.format == WeightFormat::Q4, Input,
            std::string(op) + ": format must be q8 or q4 (got " + weight_format_name(p.format) + ")");
  QVL_CHECK(p.group > 0 && p.group % kQuantBlock == 0 && p.n >= 0 && p.n % p.group == 0, Input,
            std::string(op) + ": group " + std::to_string(p.group) + " must be a multiple of 32 dividing n=" +
                std::to_string(p.n));
  QVL_CHECK(p.n == 0 || (p.src && p.dst && p.scales), Input, std::string(op) + ": null src, dst or scales");
  QVL_CHECK((p.format == WeightFormat::Q4) == (p.zeros != nullptr) || p.n == 0, Input,
            std::string(op) + ": q4 needs zero points and q8 has none");
}

}  // namespace qvl::ops
