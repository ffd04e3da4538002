// y[M,N] = x[M,K] · wᵀ (+ bias): activations f32, weights in nn.Linear's layout (out × in) in a
// weight format (core/weight_format.h; today f32, bf16 or f16 as stored), accumulated in f32. One
// call covers decode (M=1), prefill and the vision tower (large M); variants are multi-threaded
// over the pool. The dispatcher picks the best variant by (ISA, weight format): each variant
// lists the formats it reads in its mask.
#pragma once
#include <cstdint>

#include "core/cancel.h"
#include "core/dtype.h"
#include "core/weight_format.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

struct MatmulParams {
  int64_t M = 0, N = 0, K = 0;
  const float* x = nullptr;  // [M, K], row stride ldx (elements)
  int64_t ldx = 0;
  WeightRef w;               // [N, K]: w.out == N, w.in == K, row stride w.ld (elements)
  const float* bias = nullptr;  // [N] or null
  float* y = nullptr;           // [M, N], row stride ldy (elements)
  int64_t ldy = 0;
  // Optional: the packed (large M) path polls it between output blocks, so a long prefill's or
  // vision tower's matmul stops early; matmul() then throws the token's error instead of
  // returning y half written.
  const CancelToken* cancel = nullptr;
};

using MatmulFn = void (*)(const MatmulParams&, const ExecContext&);

const OpFamily<MatmulFn>& matmul_family();

// matmul_bf16: the same problem with x and w rounded to bf16 (round to nearest even, subnormals
// flushed to zero, as VCVTNE2PS2BF16 does; q8, q4 and f8 weights dequantized to f32 first) and the products accumulated in f32: AMX tiles
// (TDPBF16PS) or AVX512-BF16 (VDPBF16PS). Its own family rather than more matmul variants or a
// flag in MatmulParams: the registry ranks variants by ISA, so bf16 kernels listed under matmul
// would win the exact path on any AMX CPU; as a family they have their own reference (which
// rounds like the hardware, so the parity bound stays tight) and their own line in `qwenvl info`,
// and the choice between the two families is made in one place, matmul() below, from the
// context's precision.
const OpFamily<MatmulFn>& matmul_bf16_family();
// Rows from which matmul() under Precision::Fast runs matmul_bf16 variant v. Measured with
// bench_matmul at the 2B model's widths on Sapphire Rapids (2 threads): AMX beats the exact
// avx512 path from M = 8 (1.2-3x; at M = 4 the exact streaming kernel is as fast or faster).
// The AVX512-BF16 kernel computes whole 32-row blocks, so fewer rows only waste its work.
inline int64_t matmul_bf16_min_rows(Isa isa) { return isa == Isa::Amx ? 8 : 32; }

// Validates shapes/strides (E_INPUT) and runs the best variant for p.w.format; throws E_ABORTED /
// E_DISPOSED when p.cancel is set. Under ctx.precision() == Fast, problems of at least
// matmul_bf16_min_rows rows go to matmul_bf16 when this machine has a bf16 kernel for the format
// (AMX, or AVX512-BF16 for the dense and f8 formats: matmul_bf16_variant); without one they stay exact.
void matmul(const MatmulParams& p, const ExecContext& ctx);
// Throws E_INPUT unless p describes a consistent problem (the kernels assume it does).
void check_matmul(const MatmulParams& p);
// The variant matmul() runs on device d for weights in format f (E_UNSUPPORTED when none there reads f).
const Variant<MatmulFn>& matmul_variant(Device d, WeightFormat f);
// The matmul_bf16 variant matmul() would run for format f on device d, or null when Fast runs
// exact for f: there is none but the scalar reference, or f is q8/q4 and the kernel is not AMX
// (the exact path's int8 GEMM, backends/cpu/matmul_q_gemm.h, ran 3-5x faster than AVX512-BF16 on
// dequantized q8 panels at M = 512 on Sapphire Rapids; AMX stays 1.3-3x faster than it).
const Variant<MatmulFn>* matmul_bf16_variant(Device d, WeightFormat f);
// Whether matmul() runs p under ctx with a matmul_bf16 variant (else with matmul_variant).
bool matmul_runs_bf16(const MatmulParams& p, const ExecContext& ctx);

}  // namespace qvl::ops
