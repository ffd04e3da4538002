// AVX-512 fp8 rows (the shared body, matmul_fp8_rows.h, on zmm). e4m3 bytes are sign-extended to
// 16 bits, so one shift puts the sign at bit 15 and the 7 value bits at 13..7, and one mask
// clears bit 14 (a copy of the sign): three integer operations per 32 weights before vcvtph2ps,
// where zero extension with separate sign and value masks took six per 16 and left the kernel
// compute-bound below bf16's speed (17 against 9.5 Gweights/s on one Sapphire Rapids core).
#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/matmul_fp8.h"
#include "backends/cpu/row_streams.h"
#include "backends/cpu/vec_math.h"

namespace qvl::cpu {

namespace {

// GCC 12 warns about the undefined pass-through operand of plain intrinsics; their zero-masked
// forms with a full mask are the same instructions.
constexpr __mmask16 kAll = static_cast<__mmask16>(0xffff);

struct Vec {
  static constexpr int kLanes = 16;
  __m512 v;
};

QVL_TARGET_AVX512 inline Vec vzero() { return {_mm512_setzero_ps()}; }
QVL_TARGET_AVX512 inline Vec vset1(float s) { return {_mm512_set1_ps(s)}; }
QVL_TARGET_AVX512 inline Vec vload(const float* x) { return {_mm512_loadu_ps(x)}; }
QVL_TARGET_AVX512 inline Vec vfma(Vec a, Vec b, Vec c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }

QVL_TARGET_AVX512 inline void widen2(const uint8_t* w, Vec* lo, Vec* hi) {
  const __m512i b = _mm512_maskz_cvtepi8_epi16(0xffffffffu, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
  const __m512i h = _mm512_and_si512(_mm512_slli_epi16(b, 7), _mm512_set1_epi16(static_cast<short>(0xbfff)));
  lo->v = _mm512_maskz_cvtph_ps(kAll, _mm512_maskz_extracti64x4_epi64(static_cast<__mmask8>(0xf), h, 0));
  hi->v = _mm512_maskz_cvtph_ps(kAll, _mm512_maskz_extracti64x4_epi64(static_cast<__mmask8>(0xf), h, 1));
}

QVL_TARGET_AVX512 inline float vsum(Vec v) { return vm::hsum_avx512(v.v); }

#define QVL_FP8_TARGET QVL_TARGET_AVX512
#define QVL_FP8_REGS 32
#include "backends/cpu/matmul_fp8_rows.h"
#undef QVL_FP8_TARGET
#undef QVL_FP8_REGS

const Fp8Kernels kKernels = {rows, matmul_avx512};

}  // namespace

void matmul_fp8_avx512(const ops::MatmulParams& p, const ExecContext& ctx) { run_matmul_fp8(p, ctx, kKernels); }

}  // namespace qvl::cpu
