#include "ops/matmul.h"

#include <limits>
#include <string>

#include "backends/cpu/matmul_cpu.h"
#include "core/error.h"

namespace qvl::ops {

const OpFamily<MatmulFn>& matmul_family() {
  // No avx512bf16 variant: VDPBF16PS rounds the activations to bf16 as well, which is far
  // outside the f32 accuracy this op promises (and HF's f32 path keeps).
  static const OpFamily<MatmulFn> family("matmul", {
                                                       {"reference", Isa::Reference, cpu::matmul_ref},
                                                       {"generic", Isa::Generic, cpu::matmul_generic},
                                                       {"avx2", Isa::Avx2, cpu::matmul_avx2},
                                                       {"avx512", Isa::Avx512, cpu::matmul_avx512},
                                                   });
  return family;
}

namespace {

// rows x ld elements must be addressable without int64 overflow (the kernels compute offsets so).
bool fits(int64_t rows, int64_t ld) {
  return rows == 0 || ld <= std::numeric_limits<int64_t>::max() / 8 / rows;
}

}  // namespace

void check_matmul(const MatmulParams& p) {
  const std::string shape =
      " (M=" + std::to_string(p.M) + " K=" + std::to_string(p.K) + " N=" + std::to_string(p.N) + ")";
  QVL_CHECK(p.M >= 0 && p.N >= 0 && p.K >= 0, Input, "matmul: negative dimension" + shape);
  QVL_CHECK(p.w_dtype == DType::F32 || p.w_dtype == DType::BF16 || p.w_dtype == DType::F16, Input,
            std::string("matmul: weights must be f32, bf16 or f16, got ") + dtype_name(p.w_dtype));
  QVL_CHECK(p.ldx >= p.K, Input, "matmul: ldx " + std::to_string(p.ldx) + " < K" + shape);
  QVL_CHECK(p.ldw >= p.K, Input, "matmul: ldw " + std::to_string(p.ldw) + " < K" + shape);
  QVL_CHECK(p.ldy >= p.N, Input, "matmul: ldy " + std::to_string(p.ldy) + " < N" + shape);
  QVL_CHECK(fits(p.M, p.ldx) && fits(p.N, p.ldw) && fits(p.M, p.ldy), Input, "matmul: sizes overflow" + shape);
  QVL_CHECK(p.x || p.M == 0 || p.K == 0, Input, "matmul: x is null" + shape);
  QVL_CHECK(p.w || p.N == 0 || p.K == 0, Input, "matmul: w is null" + shape);
  QVL_CHECK(p.y || p.M == 0 || p.N == 0, Input, "matmul: y is null" + shape);
}

void matmul(const MatmulParams& p, ThreadPool& pool) {
  check_matmul(p);
  check_cancel(p.cancel, "a matmul");
  matmul_family().best().fn(p, pool);
  check_cancel(p.cancel, "a matmul");
}

}  // namespace qvl::ops
