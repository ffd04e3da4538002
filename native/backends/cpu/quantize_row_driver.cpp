#include <vector>

#include "backends/cpu/quantize_row_cpu.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

int64_t quantize_row_with(const ops::QuantizeRowParams& p, const QuantRowKernels& k) {
  const int64_t groups = p.n / p.group;
  switch (p.format) {
    case WeightFormat::Q8:
      for (int64_t g = 0; g < groups; ++g) {
        const float* x = p.src + g * p.group;
        float s = 0.0f;
        if (!q_group_scale(k.amax(x, p.group) / 127.0f, &p.scales[g], &s)) return g;
        k.q8_codes(x, p.group, s > 0.0f ? 1.0f / s : 0.0f, p.dst + g * p.group);
      }
      return -1;
    case WeightFormat::Q4: {
      // Codes one per byte first, then packed 32 bytes at a time: a block pair can span groups.
      thread_local std::vector<uint8_t> q, z;
      q.resize(static_cast<size_t>(p.n));
      z.resize(static_cast<size_t>(groups));
      for (int64_t g = 0; g < groups; ++g) {
        const float* x = p.src + g * p.group;
        float lo = 0.0f, hi = 0.0f, s = 0.0f;
        k.range(x, p.group, &lo, &hi);
        if (!q_group_scale((hi - lo) / 15.0f, &p.scales[g], &s)) return g;
        const float inv = s > 0.0f ? 1.0f / s : 0.0f;
        const float zf = q4_group_zero(lo, inv);
        z[static_cast<size_t>(g)] = static_cast<uint8_t>(zf);
        k.q4_codes(x, p.group, inv, zf, q.data() + g * p.group);
      }
      k.q4_pack(q.data(), p.n, p.dst);
      q4_pack_zeros(z.data(), groups, p.zeros);
      return -1;
    }
    case WeightFormat::F32:
    case WeightFormat::F16:
    case WeightFormat::BF16:
    case WeightFormat::F8: return -1;  // refused by check_quantize_row
  }
  return -1;
}

}  // namespace qvl::cpu
