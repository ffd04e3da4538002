#include "ops/weight_quant.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "core/error.h"
#include "core/weight_quant.h"
#include "ops/quantize_row.h"

namespace qvl::ops {

namespace {

void require_quantized(WeightFormat f, int64_t in, int64_t group) {
  const WeightFormatTraits& t = weight_format_traits(f);
  QVL_CHECK(t.kernel == WeightKernel::Int8Dot, Native, std::string(t.name) + " is not a group-quantized format");
  QVL_CHECK(group > 0 && group % kQuantBlock == 0 && in % group == 0, Native,
            "group " + std::to_string(group) + " must be a multiple of 32 dividing the row length " + std::to_string(in));
}

}  // namespace

int64_t first_unstorable_scale(const float* scales, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    if (!q_scale_from_f32(scales[i], &h)) return i;
  }
  return -1;
}

namespace {

// Lowers *first to v (atomically; the row-parallel loops report their first failure).
void lower(std::atomic<int64_t>& first, int64_t v) {
  int64_t cur = first.load();
  while (v < cur && !first.compare_exchange_weak(cur, v)) {
  }
}

}  // namespace

namespace {

// One panel's rows in the row form (core/weight_quant.h), per thread: the converters write rows
// there and q_panelize moves them into the stored panel.
struct PanelStage {
  std::vector<uint8_t> codes, zeros;
  std::vector<uint16_t> scales;
  PanelStage(const QuantRowBytes& rb, int64_t groups)
      : codes(static_cast<size_t>(kQPanelRows * rb.codes)),
        zeros(static_cast<size_t>(kQPanelRows * rb.zeros)),
        scales(static_cast<size_t>(kQPanelRows * groups)) {}
};

// fill(stage, r0, rows) for each panel of `out` rows (rows = its real rows), then the panel stored.
template <class Fill>
void for_each_panel(WeightFormat f, int64_t out, int64_t in, int64_t group, void* data, void* scales, void* zeros,
                    ThreadPool& pool, const Fill& fill) {
  QuantRowBytes rb, pb;
  QVL_CHECK(quant_row_bytes(f, in, group, &rb) && quant_panel_bytes(f, in, group, &pb), Native, "row size overflows");
  const int64_t groups = in / group;
  pool.parallel_for(q_panel_count(out), 1, [&](int64_t b, int64_t e) {
    PanelStage st(rb, groups);
    for (int64_t P = b; P < e; ++P) {
      const int64_t r0 = P * kQPanelRows, rows = std::min(kQPanelRows, out - r0);
      fill(st, r0, rows);
      q_panelize(f, in, group, rows, st.codes.data(), st.scales.data(), st.zeros.empty() ? nullptr : st.zeros.data(),
                 static_cast<uint8_t*>(data) + P * pb.codes, static_cast<uint16_t*>(scales) + P * pb.scales / 2,
                 pb.zeros ? static_cast<uint8_t*>(zeros) + P * pb.zeros : nullptr);
    }
  });
}

}  // namespace

std::string pack_weight_codes(const LogicalQuant& g, void* data, void* scales, void* zeros, ThreadPool& pool) {
  require_quantized(g.format, g.in, g.group);
  QuantRowBytes rb;
  QVL_CHECK(quant_row_bytes(g.format, g.in, g.group, &rb), Native, "row size overflows");
  const int64_t groups = g.in / g.group;
  std::atomic<int64_t> bad_row{g.out}, bad_scale{g.out * groups};
  for_each_panel(g.format, g.out, g.in, g.group, data, scales, zeros, pool, [&](PanelStage& st, int64_t r0, int64_t rows) {
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t r = r0 + i;
      const uint8_t* q = g.codes + r * g.in;
      uint8_t* d = st.codes.data() + i * rb.codes;
      bool ok = true;
      switch (g.format) {
        case WeightFormat::Q8: q8_pack_row(q, g.in, d); break;
        case WeightFormat::Q4:
          ok = q4_pack_row(q, g.in, d) && q4_pack_zeros(g.zeros + r * groups, groups, st.zeros.data() + i * rb.zeros);
          break;
        case WeightFormat::F32:
        case WeightFormat::F16:
        case WeightFormat::BF16:
        case WeightFormat::F8: ok = false; break;
      }
      if (!ok) lower(bad_row, r);
      uint16_t* s = st.scales.data() + i * groups;
      for (int64_t k = 0; k < groups; ++k)
        if (!q_scale_from_f32(g.scales[r * groups + k], &s[k])) lower(bad_scale, r * groups + k);
    }
  });
  if (bad_row.load() < g.out) return "row " + std::to_string(bad_row.load()) + " holds a 4-bit code or zero point above 15";
  if (bad_scale.load() < g.out * groups) {
    const int64_t i = bad_scale.load();
    return "scale " + std::to_string(i) + " (" + std::to_string(g.scales[i]) +
           ") is outside what f16 holds (finite, at most 65504, normal or an exact f16 subnormal)";
  }
  return "";
}

int64_t quantize_weight(const WeightRef& src, WeightFormat f, int64_t group, void* data, void* scales, void* zeros,
                        ThreadPool& pool) {
  require_quantized(f, src.in, group);
  QuantRowBytes rb;
  QVL_CHECK(quant_row_bytes(f, src.in, group, &rb), Native, "row size overflows");
  const WeightFormatTraits& st = weight_format_traits(src.format);
  const int64_t groups = src.in / group;
  std::atomic<int64_t> bad{src.out * groups};
  const QuantizeRowFn quantize = quantize_row_family().best(Device::Host).fn;
  for_each_panel(f, src.out, src.in, group, data, scales, zeros, pool, [&](PanelStage& stage, int64_t r0, int64_t rows) {
    thread_local std::vector<float> row;  // the source row as f32
    row.resize(static_cast<size_t>(src.in));
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t r = r0 + i;
      st.dequantize_row(src, r, 0, src.in, row.data());
      QuantizeRowParams q;
      q.format = f, q.n = src.in, q.group = group, q.src = row.data(), q.dst = stage.codes.data() + i * rb.codes;
      q.scales = stage.scales.data() + i * groups;
      q.zeros = f == WeightFormat::Q4 ? stage.zeros.data() + i * rb.zeros : nullptr;
      const int64_t g = quantize(q);
      if (g >= 0) lower(bad, r * groups + g);
    }
  });
  return bad.load() < src.out * groups ? bad.load() : -1;
}

}  // namespace qvl::ops
