// Plain softmax in double: max, exp of the differences, sum, divide. Single-threaded on purpose.
#include <cmath>
#include <limits>
#include <vector>

#include "ops/softmax.h"

namespace qvl::cpu {

void softmax_ref(const ops::SoftmaxParams& p, const ExecContext& /*ctx*/) {
  std::vector<double> e(static_cast<size_t>(p.dim));
  for (int64_t r = 0; r < p.rows; ++r) {
    const float* x = p.x + r * p.ldx;
    float* out = p.out + r * p.ldo;
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < p.dim; ++i) mx = std::max(mx, static_cast<double>(x[i]));
    if (mx == -std::numeric_limits<double>::infinity()) {  // fully masked: zeros by definition
      for (int64_t i = 0; i < p.dim; ++i) out[i] = 0.0f;
      continue;
    }
    double sum = 0;
    for (int64_t i = 0; i < p.dim; ++i) sum += (e[i] = std::exp(x[i] - mx));
    for (int64_t i = 0; i < p.dim; ++i) out[i] = static_cast<float>(e[i] / sum);
  }
}

}  // namespace qvl::cpu
