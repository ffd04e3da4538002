// Plain rotate_half RoPE, each output formed in double and rounded once.
#include "ops/rope.h"

namespace qvl::cpu {

void rope_ref(const ops::RopeParams& p, const ExecContext& /*ctx*/) {
  const int64_t half = p.rotary_dim / 2;
  for (int64_t t = 0; t < p.T; ++t) {
    const float* c = p.cos + t * half;
    const float* s = p.sin + t * half;
    for (int64_t h = 0; h < p.H; ++h) {
      float* x = p.x + t * p.ld + h * p.D;
      for (int64_t i = 0; i < half; ++i) {
        const double a = x[i], b = x[i + half];
        x[i] = static_cast<float>(a * c[i] - b * s[i]);
        x[i + half] = static_cast<float>(b * c[i] + a * s[i]);
      }
    }
  }
}

}  // namespace qvl::cpu
