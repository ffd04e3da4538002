#include <vector>

#include "backends/cpu/quantize_row_cpu.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

int64_t group_scales_scalar(const float* s, const float* lo, int64_t g0, int64_t groups, uint16_t* h, float* inv, float* zf) {
  for (int64_t g = g0; g < groups; ++g) {
    float v = 0.0f;
    if (!q_group_scale(s[g], &h[g], &v)) return g;
    inv[g] = v > 0.0f ? 1.0f / v : 0.0f;
    if (lo) zf[g] = q4_group_zero(lo[g], inv[g]);
  }
  return -1;
}

// Per row: each group's range (vector), every group's scale at once, then each group's codes.
int64_t quantize_row_with(const ops::QuantizeRowParams& p, const QuantRowKernels& k) {
  const int64_t groups = p.n / p.group;
  const bool q4 = p.format == WeightFormat::Q4;
  thread_local std::vector<float> s, lo, inv, zf;
  for (auto* v : {&s, &lo, &inv, &zf}) v->resize(static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) {
    const float* x = p.src + g * p.group;
    if (q4) {
      float hi = 0.0f;
      k.range(x, p.group, &lo[static_cast<size_t>(g)], &hi);
      s[static_cast<size_t>(g)] = (hi - lo[static_cast<size_t>(g)]) / 15.0f;
    } else {
      s[static_cast<size_t>(g)] = k.amax(x, p.group) / 127.0f;
    }
  }
  const int64_t bad = k.scales(s.data(), q4 ? lo.data() : nullptr, groups, p.scales, inv.data(), zf.data());
  if (bad >= 0) return bad;
  if (!q4) {  // q8 (check_quantize_row admits q8 and q4 only)
    for (int64_t g = 0; g < groups; ++g) k.q8_codes(p.src + g * p.group, p.group, inv[static_cast<size_t>(g)], p.dst + g * p.group);
    return -1;
  }
  // Codes one per byte first, then packed 32 bytes at a time: a block pair can span groups.
  thread_local std::vector<uint8_t> q, z;
  q.resize(static_cast<size_t>(p.n));
  z.resize(static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) {
    const size_t gi = static_cast<size_t>(g);
    z[gi] = static_cast<uint8_t>(zf[gi]);
    k.q4_codes(p.src + g * p.group, p.group, inv[gi], zf[gi], q.data() + g * p.group);
  }
  k.q4_pack(q.data(), p.n, p.dst);
  q4_pack_zeros(z.data(), groups, p.zeros);
  return -1;
}

}  // namespace qvl::cpu
