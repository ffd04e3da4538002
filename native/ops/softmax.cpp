#include "ops/softmax.h"

#include <string>

#include "ops/rows_check.h"

namespace qvl::cpu {
void softmax_ref(const ops::SoftmaxParams& p, ThreadPool& pool);
void softmax_generic(const ops::SoftmaxParams& p, ThreadPool& pool);
void softmax_avx2(const ops::SoftmaxParams& p, ThreadPool& pool);
void softmax_avx512(const ops::SoftmaxParams& p, ThreadPool& pool);
}  // namespace qvl::cpu

namespace qvl::ops {

const OpFamily<SoftmaxFn>& softmax_family() {
  static const OpFamily<SoftmaxFn> family("softmax", {
      {"reference", Isa::Reference, &cpu::softmax_ref},
      {"generic", Isa::Generic, &cpu::softmax_generic},
      {"avx2", Isa::Avx2, &cpu::softmax_avx2},
      {"avx512", Isa::Avx512, &cpu::softmax_avx512},
  });
  return family;
}

void check_softmax(const SoftmaxParams& p) {
  check_rows("softmax", "x", p.x, p.rows, p.dim, p.ldx, sizeof(float));
  check_rows("softmax", "out", p.out, p.rows, p.dim, p.ldo, sizeof(float));
  QVL_CHECK(p.out != p.x || p.ldo == p.ldx, Input,
            "softmax: in place needs ldo == ldx (got " + std::to_string(p.ldo) + " and " + std::to_string(p.ldx) + ")");
}

void softmax(const SoftmaxParams& p, ThreadPool& pool) {
  check_softmax(p);
  softmax_family().best().fn(p, pool);
}

}  // namespace qvl::ops
