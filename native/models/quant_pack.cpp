#include "models/quant_pack.h"

#include <algorithm>
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

  ConvertedWeight c = empty_group_quantized(g.format, g.out, g.in, g.group, Pages::Huge);
  ops::LogicalQuant l;
  l.format = g.format, l.out = g.out, l.in = g.in, l.group = g.group;
  l.codes = g.q.data(), l.scales = g.scales.data(), l.zeros = t.has_zeros ? g.zeros.data() : nullptr;
  const std::string err = ops::pack_weight_codes(l, c.storage[0].raw(), c.storage[1].raw(),
                                                 t.has_zeros ? c.storage[2].raw() : nullptr, pool);
  QVL_CHECK(err.empty(), ModelFormat, what + ": " + err);
  return c;
}

ConvertedWeight empty_group_quantized(WeightFormat f, int64_t out, int64_t in, int64_t group, Pages pages) {
  QuantRowBytes pb;
  QVL_CHECK(quant_panel_bytes(f, in, group, &pb) && out >= 0 &&
                q_panel_count(out) <= (int64_t{1} << 40) / std::max<int64_t>(pb.codes, 1),
            Native, std::string(weight_format_name(f)) + " weight [" + std::to_string(out) + "," + std::to_string(in) +
                        "] group " + std::to_string(group) + ": no such storage");
  // One row of each tensor per panel of 16 weight rows (core/weight_quant.h).
  const int64_t panels = q_panel_count(out);
  ConvertedWeight c;
  c.storage.push_back(Tensor::empty(DType::U8, {panels, pb.codes}, pages));
  c.storage.push_back(Tensor::empty(DType::U8, {panels, pb.scales}, pages));
  if (pb.zeros > 0) c.storage.push_back(Tensor::empty(DType::U8, {panels, pb.zeros}, pages));
  c.ref.format = f;
  c.ref.data = c.storage[0].raw();
  c.ref.ld = in;
  c.ref.scales = c.storage[1].raw();
  c.ref.zeros = pb.zeros > 0 ? c.storage[2].raw() : nullptr;
  c.ref.group = group;
  c.ref.out = out;
  c.ref.in = in;
  return c;
}

}  // namespace qvl::models
