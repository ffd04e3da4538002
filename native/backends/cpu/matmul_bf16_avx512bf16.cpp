// AVX512-BF16 bf16 matmul (for CPUs with VDPBF16PS but no AMX, e.g. AMD Zen 4/5, where it runs
// at twice the f32 FMA rate): a 32 x 32 block as row groups of 12, 12 and 8, each row's two
// accumulators (outputs 0..15, 16..31) fed per k-pair by one broadcast pair of x and the two
// packed weight rows, which are exactly VDPBF16PS's operand layout. A block whose outputs past 16
// are padding (Bf16BlockShape) takes one accumulator a row, in two groups of 16 rows, and the
// last step stops at its last real k-pair.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backends/cpu/matmul_bf16_cpu.h"

namespace qvl::cpu {

namespace {

QVL_TARGET_AVX512BF16 inline __m512bh as_bh(__m512i v) { return reinterpret_cast<__m512bh>(v); }

// The row loops are unrolled whole and the start's two cases kept apart: with one loop choosing
// load or zero per row GCC 12 zeroed stack copies of the accumulators (rep stos) and moved them
// through memory around the step loop, ~100 cycles a call. Attention's calls are short (S = q·kᵀ
// over a head dim of 80 is 40 k-pairs), so there this was a fifth of the kernel's time: in L1 on
// one Zen 5 thread S 340 -> 430 GFLOP/s, O = P·v 402 -> 425, an 8-step matmul block 422 -> 434
// (peak ~440).
template <int R, bool Both>
QVL_TARGET_AVX512BF16 void rows_block(const uint16_t* a, int64_t lda, const uint16_t* b, int64_t steps, float* c,
                                      int64_t ldc, bool accumulate, int last_pairs) {
  __m512 c0[R], c1[R];
  if (accumulate) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      c0[r] = _mm512_loadu_ps(c + r * ldc);
      c1[r] = Both ? _mm512_loadu_ps(c + r * ldc + 16) : _mm512_setzero_ps();
    }
  } else {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
  }
  for (int64_t s = 0; s < steps; ++s) {
    const uint16_t* bs = b + s * kBf16StepElems;
    const uint16_t* as = a + s * kBf16Step;
    const int pairs = s + 1 < steps ? 16 : last_pairs;
    for (int kp = 0; kp < pairs; ++kp) {
      const __m512bh b0 = as_bh(_mm512_load_si512(bs + kp * 32));
      const __m512bh b1 = Both ? as_bh(_mm512_load_si512(bs + 512 + kp * 32)) : b0;
      for (int r = 0; r < R; ++r) {
        int32_t pair;
        std::memcpy(&pair, as + r * lda + 2 * kp, 4);
        const __m512bh x = as_bh(_mm512_set1_epi32(pair));
        c0[r] = _mm512_dpbf16_ps(c0[r], x, b0);
        if (Both) c1[r] = _mm512_dpbf16_ps(c1[r], x, b1);
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_ps(c + r * ldc, c0[r]);
    if (Both) _mm512_storeu_ps(c + r * ldc + 16, c1[r]);
  }
}

// One column tile holds 16 rows' accumulators in 16 registers: the 32 rows go as two groups of 16.
template <bool Both>
QVL_TARGET_AVX512BF16 void rows_blocks(const uint16_t* a, int64_t lda, const uint16_t* b, int64_t steps, float* c,
                                       int64_t ldc, bool accumulate, int last_pairs) {
  if (Both) {
    rows_block<12, true>(a, lda, b, steps, c, ldc, accumulate, last_pairs);
    rows_block<12, true>(a + 12 * lda, lda, b, steps, c + 12 * ldc, ldc, accumulate, last_pairs);
    rows_block<8, true>(a + 24 * lda, lda, b, steps, c + 24 * ldc, ldc, accumulate, last_pairs);
  } else {
    rows_block<16, false>(a, lda, b, steps, c, ldc, accumulate, last_pairs);
    rows_block<16, false>(a + 16 * lda, lda, b, steps, c + 16 * ldc, ldc, accumulate, last_pairs);
  }
}

QVL_TARGET_AVX512BF16 void block(const uint16_t* a, int64_t lda, const uint16_t* b, int64_t steps, float* c,
                                 int64_t ldc, bool accumulate, const Bf16BlockShape& shape) {
  if (shape.cols > 16) return rows_blocks<true>(a, lda, b, steps, c, ldc, accumulate, shape.last_pairs);
  rows_blocks<false>(a, lda, b, steps, c, ldc, accumulate, shape.last_pairs);
}

const Bf16Kernels kKernels = {block, nullptr, nullptr};

}  // namespace

const Bf16Kernels& avx512bf16_bf16_kernels() { return kKernels; }

void matmul_bf16_avx512bf16(const ops::MatmulParams& p, const ExecContext& ctx) { run_matmul_bf16(p, ctx, kKernels); }

}  // namespace qvl::cpu
