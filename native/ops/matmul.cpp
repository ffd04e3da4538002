#include "ops/matmul.h"

#include "ops/backends.h"

#include <limits>
#include <string>

#include "core/error.h"
#include "ops/backends.h"

namespace qvl::ops {

const OpFamily<MatmulFn>& matmul_family() {
  static const OpFamily<MatmulFn> family("matmul", QVL_BACKEND_VARIANTS(matmul));
  return family;
}

const OpFamily<MatmulFn>& matmul_bf16_family() {
  static const OpFamily<MatmulFn> family("matmul_bf16", QVL_BACKEND_VARIANTS(matmul_bf16));
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
  WeightFormat known;
  QVL_CHECK(weight_format_from_int(static_cast<int32_t>(p.w.format), &known), Input,
            "matmul: unknown weight format " + std::to_string(static_cast<int32_t>(p.w.format)));
  const WeightFormatTraits& t = weight_format_traits(p.w.format);
  QVL_CHECK(p.w.out == p.N && p.w.in == p.K, Input,
            "matmul: weight is [" + std::to_string(p.w.out) + "," + std::to_string(p.w.in) + "], not [N,K]" + shape);
  QVL_CHECK(p.ldx >= p.K, Input, "matmul: ldx " + std::to_string(p.ldx) + " < K" + shape);
  QVL_CHECK(p.w.ld >= p.K, Input, "matmul: weight row stride " + std::to_string(p.w.ld) + " < K" + shape);
  QVL_CHECK(p.ldy >= p.N, Input, "matmul: ldy " + std::to_string(p.ldy) + " < N" + shape);
  QVL_CHECK(fits(p.M, p.ldx) && fits(p.N, p.w.ld) && fits(p.M, p.ldy), Input, "matmul: sizes overflow" + shape);
  int64_t row_bytes = 0;
  QVL_CHECK(weight_row_bytes(p.w.format, p.w.ld, &row_bytes) && weight_row_bytes(p.w.format, p.K, &row_bytes), Input,
            std::string("matmul: ") + t.name + " rows come in blocks of " + std::to_string(t.block) +
                " elements; K and the row stride must be multiples" + shape);
  QVL_CHECK(!t.has_scales || p.w.scales || p.N == 0 || p.K == 0, Input,
            std::string("matmul: ") + t.name + " weights need scales" + shape);
  QVL_CHECK(!t.has_scales || (p.w.group > 0 && p.w.group % t.block == 0 && p.w.ld % p.w.group == 0), Input,
            std::string("matmul: ") + t.name + " group " + std::to_string(p.w.group) + " must be a positive multiple of " +
                std::to_string(t.block) + " dividing the row stride " + std::to_string(p.w.ld) + shape);
  QVL_CHECK(!t.has_zeros || p.w.zeros || p.N == 0 || p.K == 0, Input,
            std::string("matmul: ") + t.name + " weights need zero points" + shape);
  QVL_CHECK(p.x || p.M == 0 || p.K == 0, Input, "matmul: x is null" + shape);
  QVL_CHECK(p.w.data || p.N == 0 || p.K == 0, Input, "matmul: w is null" + shape);
  QVL_CHECK(p.y || p.M == 0 || p.N == 0, Input, "matmul: y is null" + shape);
}

const Variant<MatmulFn>& matmul_variant(Device d, WeightFormat f) {
  const Variant<MatmulFn>* v = matmul_family().best_for(d, f);
  if (!v) {
    fail(ErrorCode::Unsupported,
         std::string("matmul: no kernel on ") + device_name(d) + " reads " + weight_format_name(f) + " weights");
  }
  return *v;
}

const Variant<MatmulFn>* matmul_bf16_variant(Device d, WeightFormat f) {
  const Variant<MatmulFn>* v = matmul_bf16_family().best_for(d, f);
  if (v && v->isa != Isa::Amx && weight_format_traits(f).kernel == WeightKernel::Int8Dot) return nullptr;
  return v && v->isa != Isa::Reference ? v : nullptr;
}

namespace {

// The matmul_bf16 variant matmul() runs p with under ctx, or null for the exact family.
const Variant<MatmulFn>* fast_variant(const MatmulParams& p, const ExecContext& ctx) {
  const Variant<MatmulFn>* fast =
      ctx.precision() == Precision::Fast ? matmul_bf16_variant(ctx.device(), p.w.format) : nullptr;
  return fast && p.M >= matmul_bf16_min_rows(fast->isa) ? fast : nullptr;
}

}  // namespace

bool matmul_runs_bf16(const MatmulParams& p, const ExecContext& ctx) { return fast_variant(p, ctx) != nullptr; }

void matmul(const MatmulParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "matmul");
  check_matmul(p);
  check_cancel(p.cancel, "a matmul");
  const Variant<MatmulFn>* fast = fast_variant(p, ctx);
  (fast ? *fast : matmul_variant(ctx.device(), p.w.format)).fn(p, ctx);
  check_cancel(p.cancel, "a matmul");
}

}  // namespace qvl::ops
