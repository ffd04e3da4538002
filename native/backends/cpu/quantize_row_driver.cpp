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
// group's range (vector), every group's fit steps at once, every group's fit (candidates measured
// by the vector errors), each group's codes; packed at the end.
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
  thread_local std::vector<float> lo, hi, inv, zf;
  thread_local std::vector<Q4FitStep> steps;
  q.resize(static_cast<size_t>(p.n));
  z.resize(static_cast<size_t>(groups));
  for (auto* v : {&lo, &hi, &inv, &zf}) v->resize(static_cast<size_t>(groups));
  steps.resize(static_cast<size_t>(groups * kQ4FitScales));
  for (int64_t g = 0; g < groups; ++g) k.range(p.src + g * p.group, p.group, &lo[static_cast<size_t>(g)], &hi[static_cast<size_t>(g)]);
  k.q4_steps(lo.data(), hi.data(), groups, steps.data());
  const int64_t bad = k.q4_fit(p.src, p.group, groups, steps.data(), p.scales, inv.data(), zf.data());
  if (bad >= 0) return bad;
  for (int64_t g = 0; g < groups; ++g) {
    z[static_cast<size_t>(g)] = static_cast<uint8_t>(zf[static_cast<size_t>(g)]);
    k.q4_codes(p.src + g * p.group, p.group, inv[static_cast<size_t>(g)], zf[static_cast<size_t>(g)], q.data() + g * p.group);
  }
  k.q4_pack(q.data(), p.n, p.dst);
  q4_pack_zeros(z.data(), groups, p.zeros);
  return -1;
}

}  // namespace qvl::cpu
