// The test builders quantize q8/q4 weights a row at a time into the row form (core/weight_quant.h)
// as the converters do, then assemble the stored panels with this, once per weight.
#pragma once
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/weight_quant.h"

namespace qvl::parity {

// codes, scales and zeros hold `out` row-form rows of ld elements (q8: zeros unused); on return
// they hold the weight's panels, sized as quant_weight_bytes says (rounded up to whole elements).
template <class C, class S, class Z>
void to_panels(WeightFormat f, int64_t out, int64_t ld, int64_t group, C& codes, S& scales, Z& zeros) {
  QuantRowBytes tb;
  if (!quant_weight_bytes(f, out, ld, group, &tb)) fail(ErrorCode::Native, "parity: q weight size");
  const auto elems = [](int64_t bytes, size_t size) { return static_cast<size_t>((bytes + static_cast<int64_t>(size) - 1) / static_cast<int64_t>(size)); };
  C c(elems(tb.codes, sizeof(typename C::value_type)));
  S s(elems(tb.scales, sizeof(typename S::value_type)));
  Z z(elems(tb.zeros, sizeof(typename Z::value_type)));
  const bool q4 = f == WeightFormat::Q4;
  q_panelize_weight(f, out, ld, group, reinterpret_cast<const uint8_t*>(codes.data()), reinterpret_cast<const uint16_t*>(scales.data()),
                    q4 ? reinterpret_cast<const uint8_t*>(zeros.data()) : nullptr, reinterpret_cast<uint8_t*>(c.data()),
                    reinterpret_cast<uint16_t*>(s.data()), q4 ? reinterpret_cast<uint8_t*>(z.data()) : nullptr);
  codes.swap(c), scales.swap(s), zeros.swap(z);
}

}  // namespace qvl::parity
