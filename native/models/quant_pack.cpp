#include "models/quant_pack.h"

#include <string>

#include "core/error.h"
#include "core/weight_quant.h"
#include "ops/finite.h"
#include "ops/weight_quant.h"

namespace qvl::models {

ConvertedWeight pack_group_quantized(const GroupQuantized& g, ThreadPool& pool) {
  const std::string what = std::string("group-quantized weight [") + std::to_string(g.out) + "," + std::to_string(g.in) + "]";
  QVL_CHECK(g.format == WeightFormat::Q4 || g.format == WeightFormat::Q8, ModelFormat,
            what + ": format must be q4 or q8, not " + std::to_string(static_cast<int32_t>(g.format)));
  const WeightFormatTraits& t = weight_format_traits(g.format);
  QVL_CHECK(g.out > 0 && g.in > 0 && g.out <= (int64_t{1} << 40) / g.in, ModelFormat, what + ": bad shape");
  QVL_CHECK(g.group > 0 && g.group % kQuantBlock == 0 && g.in % g.group == 0, ModelFormat,
            what + ": group " + std::to_string(g.group) + " must be a positive multiple of 32 dividing in");
  const int64_t groups = g.out * (g.in / g.group);
  QVL_CHECK(static_cast<int64_t>(g.q.size()) == g.out * g.in, ModelFormat,
            what + ": " + std::to_string(g.q.size()) + " codes, expected out·in");
  QVL_CHECK(static_cast<int64_t>(g.scales.size()) == groups, ModelFormat,
            what + ": " + std::to_string(g.scales.size()) + " scales, expected out·in/group = " + std::to_string(groups));
  if (t.has_zeros) {
    QVL_CHECK(static_cast<int64_t>(g.zeros.size()) == groups, ModelFormat,
              what + ": " + std::to_string(g.zeros.size()) + " zero points, expected out·in/group = " + std::to_string(groups));
  } else {
    QVL_CHECK(g.zeros.empty(), ModelFormat, what + ": " + t.name + " has no zero points, but some were given");
  }
  ops::FiniteParams fp;
  fp.x = g.scales.data();
  fp.dtype = DType::F32;
  fp.n = groups;
  const int64_t bad = ops::first_nonfinite(fp, ExecContext(pool));
  QVL_CHECK(bad < 0, ModelFormat, what + ": scale " + std::to_string(bad) + " is not finite");

  int64_t row_bytes = 0;
  QVL_CHECK(weight_row_bytes(g.format, g.in, &row_bytes), ModelFormat, what + ": row size overflows");
  ConvertedWeight c;
  c.storage.push_back(Tensor::empty(DType::U8, {g.out, row_bytes}));
  c.storage.push_back(Tensor::empty(DType::F32, {g.out, g.in / g.group}));
  if (t.has_zeros) c.storage.push_back(Tensor::empty(DType::U8, {g.out, g.in / g.group}));
  const std::string err = ops::pack_weight_codes(g.format, g.q.data(), t.has_zeros ? g.zeros.data() : nullptr, g.out, g.in,
                                                 g.group, c.storage[0].raw(), pool);
  QVL_CHECK(err.empty(), ModelFormat, what + ": " + err);
  std::copy(g.scales.begin(), g.scales.end(), c.storage[1].data<float>());
  if (t.has_zeros) std::copy(g.zeros.begin(), g.zeros.end(), c.storage[2].data<uint8_t>());
  c.ref.format = g.format;
  c.ref.data = c.storage[0].raw();
  c.ref.ld = g.in;
  c.ref.scales = c.storage[1].data<float>();
  c.ref.zeros = t.has_zeros ? c.storage[2].raw() : nullptr;
  c.ref.group = g.group;
  c.ref.out = g.out;
  c.ref.in = g.in;
  return c;
}

}  // namespace qvl::models
