// AVX512-BF16 bf16 matmul (for CPUs with VDPBF16PS but no AMX, e.g. AMD Zen 4/5, where it runs
// at twice the f32 FMA rate): a 32 x 32 block as row groups of 12, 12 and 8, each row's two
// accumulators (outputs 0..15, 16..31) fed per k-pair by one broadcast pair of x and the two
// packed weight rows, which are exactly VDPBF16PS's operand layout. A block whose outputs past 16
// are padding (Bf16BlockShape) takes one accumulator a row, in two groups of 16 rows, and the
// last step stops at its last real k-pair.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backends/cpu/bf16_vec.h"
#include "backends/cpu/matmul_bf16_cpu.h"

namespace qvl::cpu {

namespace {

QVL_TARGET_AVX512BF16 inline __m512bh as_bh(__m512i v) { return reinterpret_cast<__m512bh>(v); }

// The R rows' sums (+ bias) into y rows [0, min(R, out.rows)) x out.cols columns.
template <int R>
QVL_TARGET_AVX512BF16 inline void store_rows(const __m512 (&c0)[R], const __m512 (&c1)[R], const Bf16BlockOut& out) {
  const __mmask16 k0 = lanes16(out.cols), k1 = lanes16(out.cols - 16);
  const bool stream = out.stream && out.cols == 32;
  const __m512 b0 = out.bias ? _mm512_maskz_loadu_ps(k0, out.bias) : _mm512_setzero_ps();
  const __m512 b1 = out.bias ? _mm512_maskz_loadu_ps(k1, out.bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    if (r >= out.rows) break;
    // Without a bias the sums go out as they are (adding +0 would turn a -0 into +0).
    const __m512 v0 = out.bias ? _mm512_add_ps(c0[r], b0) : c0[r], v1 = out.bias ? _mm512_add_ps(c1[r], b1) : c1[r];
    float* y = out.y + r * out.ldy;
    if (stream) {
      _mm512_stream_ps(y, v0);
      _mm512_stream_ps(y + 16, v1);
    } else {
      _mm512_mask_storeu_ps(y, k0, v0);
      _mm512_mask_storeu_ps(y + 16, k1, v1);
    }
  }
}

// The row loops are unrolled whole and the start's two cases kept apart: with one loop choosing
// load or zero per row GCC 12 zeroed stack copies of the accumulators (rep stos) and moved them
// through memory around the step loop, ~100 cycles a call. Attention's calls are short (S = q·kᵀ
// over a head dim of 80 is 40 k-pairs), so there this was a fifth of the kernel's time: in L1 on
// one Zen 5 thread S 340 -> 430 GFLOP/s, O = P·v 402 -> 425, an 8-step matmul block 422 -> 434
// (peak ~440).
// Out: the sums go to *out (a block's last steps, Both only) instead of back into c.
template <int R, bool Both, bool Out = false>
QVL_TARGET_AVX512BF16 void rows_block(const uint16_t* a, int64_t lda, const uint16_t* b, int64_t steps, float* c,
                                      int64_t ldc, bool accumulate, int last_pairs, const Bf16BlockOut* out = nullptr) {
  static_assert(Both || !Out, "a written-out block has both column tiles");
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
  if constexpr (Out) {
    store_rows<R>(c0, c1, *out);
  } else {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      _mm512_storeu_ps(c + r * ldc, c0[r]);
      if (Both) _mm512_storeu_ps(c + r * ldc + 16, c1[r]);
    }
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

// Writing y from the registers (rather than c, then y from c after the task) spreads the output's
// stores over the task, where the driver's pass after it wrote 512 KiB at once and waited on them.
QVL_TARGET_AVX512BF16 void block_out(const uint16_t* a, int64_t lda, const uint16_t* b, int64_t steps, const float* c,
                                     int64_t ldc, bool accumulate, const Bf16BlockOut& out) {
  float* cc = const_cast<float*>(c);  // read only: Out never stores to c
  Bf16BlockOut o = out;
  rows_block<12, true, true>(a, lda, b, steps, cc, ldc, accumulate, 16, &o);
  o.y += 12 * o.ldy, o.rows -= 12;
  if (o.rows <= 0) return;
  rows_block<12, true, true>(a + 12 * lda, lda, b, steps, cc + 12 * ldc, ldc, accumulate, 16, &o);
  o.y += 12 * o.ldy, o.rows -= 12;
  if (o.rows <= 0) return;
  rows_block<8, true, true>(a + 24 * lda, lda, b, steps, cc + 24 * ldc, ldc, accumulate, 16, &o);
}

const Bf16Kernels kKernels = {block, nullptr, nullptr, block_out};

}  // namespace

const Bf16Kernels& avx512bf16_bf16_kernels() { return kKernels; }

void matmul_bf16_avx512bf16(const ops::MatmulParams& p, const ExecContext& ctx) { run_matmul_bf16(p, ctx, kKernels); }

}  // namespace qvl::cpu
