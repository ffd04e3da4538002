#include <vector>

#include "backends/cpu/quantize_row_cpu.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

int64_t group_scales_scalar(const float* s, int64_t g0, int64_t groups, uint16_t* h, float* inv) {
  for (int64_t g = g0; g < groups; ++g) {
    float v = 0.0f;
    if (!q_group_scale(s[g], &h[g], &v)) return g;
    inv[g] = v > 0.0f ? 1.0f / v : 0.0f;
  }
  return -1;
}

// q8: each group's amax (vector), every group's scale at once, then each group's codes. q4: each
// group's range (vector), its fitted scale and zero point (candidates measured by the vector
// q4_errors), its codes; packed at the end.
int64_t quantize_row_with(const ops::QuantizeRowParams& p, const QuantRowKernels& k) {
  const int64_t groups = p.n / p.group;
  if (p.format == WeightFormat::Q8) {  // (check_quantize_row admits q8 and q4 only)
    thread_local std::vector<float> s, inv;
    for (auto* v : {&s, &inv}) v->resize(static_cast<size_t>(groups));
    for (int64_t g = 0; g < groups; ++g) s[static_cast<size_t>(g)] = k.amax(p.src + g * p.group, p.group) / 127.0f;
    const int64_t bad = k.scales(s.data(), groups, p.scales, inv.data());
    if (bad >= 0) return bad;
    for (int64_t g = 0; g < groups; ++g) k.q8_codes(p.src + g * p.group, p.group, inv[static_cast<size_t>(g)], p.dst + g * p.group);
    return -1;
  }
  // Codes one per byte first, then packed 32 bytes at a time: a block pair can span groups.
  thread_local std::vector<uint8_t> q, z;
  q.resize(static_cast<size_t>(p.n));
  z.resize(static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) {
    const float* x = p.src + g * p.group;
    float lo = 0.0f, hi = 0.0f, iv = 0.0f, zf = 0.0f;
    k.range(x, p.group, &lo, &hi);
    if (!q4_fit_group(x, p.group, lo, hi, k.q4_errors, &p.scales[g], &iv, &zf)) return g;
    z[static_cast<size_t>(g)] = static_cast<uint8_t>(zf);
    k.q4_codes(x, p.group, iv, zf, q.data() + g * p.group);
  }
  k.q4_pack(q.data(), p.n, p.dst);
  q4_pack_zeros(z.data(), groups, p.zeros);
  return -1;
}

}  // namespace qvl::cpu
