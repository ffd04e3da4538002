// AVX-512 matmul: a 12x32 register tile (24 of the 32 zmm registers accumulate), weight panels
// transposed 16x16 at a time while converting, masked loads and stores for every tail.
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "backends/cpu/matmul_cpu.h"
#include "backends/cpu/row_streams.h"
#include "backends/cpu/vec_math.h"

namespace qvl::cpu {

namespace {

using MatmulParams = DenseMatmul;  // the kernels read p.dense, the weights' element type

constexpr int kMr = 12, kNr = 32;
// GCC 12 warns (-Wmaybe-uninitialized) about the undefined pass-through operand inside several
// plain AVX-512 intrinsics; their zero-masked forms with a full mask are the same instructions.
constexpr __mmask16 kAll = static_cast<__mmask16>(0xffff);

QVL_TARGET_AVX512 inline __mmask16 first_lanes(int64_t n) {  // n in [0, 16]
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1);
}

QVL_TARGET_AVX512 inline __m512 unpacklo(__m512 a, __m512 b) { return _mm512_maskz_unpacklo_ps(kAll, a, b); }
QVL_TARGET_AVX512 inline __m512 unpackhi(__m512 a, __m512 b) { return _mm512_maskz_unpackhi_ps(kAll, a, b); }
template <int Imm>
QVL_TARGET_AVX512 inline __m512 shuffle_lanes(__m512 a, __m512 b) {
  return _mm512_maskz_shuffle_f32x4(kAll, a, b, Imm);
}

QVL_TARGET_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = unpacklo(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = unpackhi(r[2 * i], r[2 * i + 1]);
  }
  // Afterwards r[4i+q] holds, in 128-bit lane L, column 4L+q of rows 4i..4i+3.
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int q = 0; q < 4; ++q) {
    const __m512 v0 = shuffle_lanes<0x44>(r[q], r[4 + q]), v1 = shuffle_lanes<0xEE>(r[q], r[4 + q]);
    const __m512 v2 = shuffle_lanes<0x44>(r[8 + q], r[12 + q]);
    const __m512 v3 = shuffle_lanes<0xEE>(r[8 + q], r[12 + q]);
    t[q] = shuffle_lanes<0x88>(v0, v2);
    t[4 + q] = shuffle_lanes<0xDD>(v0, v2);
    t[8 + q] = shuffle_lanes<0x88>(v1, v3);
    t[12 + q] = shuffle_lanes<0xDD>(v1, v3);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

// Prefetches `bytes` past p. Integer arithmetic: the address may lie past the end of the
// buffer (a prefetch never faults), where pointer arithmetic would be undefined.
template <int Hint>
QVL_TARGET_AVX512 inline void prefetch_hint(const void* p, int64_t bytes) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(bytes)),
               static_cast<_mm_hint>(Hint));
}

template <DType DT>
using WeightT = std::conditional_t<DT == DType::F32, float, uint16_t>;

template <DType DT>
QVL_TARGET_AVX512 inline __m512 widen(const WeightT<DT>* w, __mmask16 m) {
  if constexpr (DT == DType::F32) {
    return _mm512_maskz_loadu_ps(m, w);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(m, w);
    if constexpr (DT == DType::BF16) {
      return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(kAll, _mm512_maskz_cvtepu16_epi32(kAll, h), 16));
    } else {
      return _mm512_maskz_cvtph_ps(kAll, h);
    }
  }
}

// 16 weight rows x 16 k, widened and transposed into 16 panel rows. Rows past nvalid get an
// all-zero mask: nothing is read and they pack as zeros.
template <DType DT>
QVL_TARGET_AVX512 inline void pack_block(const WeightT<DT>* const* rows, const __mmask16* row_mask, int64_t k,
                                         __mmask16 kmask, float* out) {
  __m512 r[16];
  for (int j = 0; j < 16; ++j) r[j] = widen<DT>(rows[j] + k, static_cast<__mmask16>(kmask & row_mask[j]));
  transpose16(r);
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(out + i * kNr, r[i]);
}

template <DType DT>
QVL_TARGET_AVX512 void pack_dt(const MatmulParams& p, int64_t n0, int64_t nvalid, int64_t k0, int64_t kc,
                               float* panel) {
  constexpr int64_t kBytes = sizeof(WeightT<DT>);
  const WeightT<DT>* base = static_cast<const WeightT<DT>*>(p.w.data) + n0 * p.w.ld + k0;
  for (int g = 0; g < kNr / 16; ++g) {
    const WeightT<DT>* rows[16];
    __mmask16 row_mask[16];
    for (int j = 0; j < 16; ++j) {
      const int64_t n = g * 16 + j;
      rows[j] = base + (n < nvalid ? n : 0) * p.w.ld;
      row_mask[j] = n < nvalid ? kAll : static_cast<__mmask16>(0);
    }
    int64_t kb = 0;
    for (; kb + 16 <= kc; kb += 16) {
      // Each row is read in kc-long bursts, too short for the hardware prefetcher to lock on:
      // fetch the next burst (the next k panel) while this one is packed.
      if (kb * kBytes % 64 == 0) {
        for (int j = 0; j < 16; ++j) prefetch_hint<_MM_HINT_T1>(rows[j], (kb + kc) * kBytes);
      }
      pack_block<DT>(rows, row_mask, kb, kAll, panel + kb * kNr + g * 16);
    }
    if (kb < kc) pack_block<DT>(rows, row_mask, kb, first_lanes(kc - kb), panel + kb * kNr + g * 16);
  }
}

QVL_TARGET_AVX512 void pack(const MatmulParams& p, int64_t n0, int64_t nvalid, int64_t k0, int64_t kc, float* panel) {
  switch (p.dense) {
    case DType::F32: return pack_dt<DType::F32>(p, n0, nvalid, k0, kc, panel);
    case DType::BF16: return pack_dt<DType::BF16>(p, n0, nvalid, k0, kc, panel);
    case DType::F16: return pack_dt<DType::F16>(p, n0, nvalid, k0, kc, panel);
    case DType::I32:
    case DType::I64:
    case DType::F8E4M3:
    case DType::U8: return;  // refused by dense_params
  }
}

template <int R>
QVL_TARGET_AVX512 void tile_rows(int64_t kc, const float* x, int64_t ldx, const float* panel, float* y, int64_t ldy,
                                 int64_t nvalid, const float* bias, bool first) {
  const __mmask16 m0 = first_lanes(nvalid < 16 ? nvalid : 16), m1 = first_lanes(nvalid > 16 ? nvalid - 16 : 0);
  __m512 c[R][2];
  for (int r = 0; r < R; ++r) {
    const float* src = first ? bias : y + r * ldy;
    if (src) {
      c[r][0] = _mm512_maskz_loadu_ps(m0, src);
      c[r][1] = _mm512_maskz_loadu_ps(m1, src + 16);
    } else {
      c[r][0] = c[r][1] = _mm512_setzero_ps();
    }
  }
  const float* xr[R];
  for (int r = 0; r < R; ++r) xr[r] = x + r * ldx;
  int64_t k = 0;  // kc >= 1; a do-while keeps GCC from spilling accumulators (see matmul_avx2.cpp)
  do {
    const __m512 b0 = _mm512_loadu_ps(panel + k * kNr), b1 = _mm512_loadu_ps(panel + k * kNr + 16);
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_set1_ps(xr[r][k]);
      c[r][0] = _mm512_fmadd_ps(a, b0, c[r][0]);
      c[r][1] = _mm512_fmadd_ps(a, b1, c[r][1]);
    }
  } while (++k < kc);
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(y + r * ldy, m0, c[r][0]);
    _mm512_mask_storeu_ps(y + r * ldy + 16, m1, c[r][1]);
  }
}

QVL_TARGET_AVX512 void tile(int rows, int64_t kc, const float* x, int64_t ldx, const float* panel, float* y,
                            int64_t ldy, int64_t nvalid, const float* bias, bool first) {
  switch (rows) {
    case 1: return tile_rows<1>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    case 2: return tile_rows<2>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    case 3: return tile_rows<3>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    case 4: return tile_rows<4>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    case 5: return tile_rows<5>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    case 6: return tile_rows<6>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    case 7: return tile_rows<7>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    case 8: return tile_rows<8>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    case 9: return tile_rows<9>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    case 10: return tile_rows<10>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    case 11: return tile_rows<11>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    default: return tile_rows<12>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
  }
}

// MB rows of x against R weight rows (n, n + rs, ..., n + (R - 1)·rs), streamed once: each
// weight vector is converted once and used MB times, and the MB*R accumulators are independent
// chains. Everything the loop needs is copied to locals first; read through `p`, GCC reloads and
// re-multiplies it every iteration. The hardware prefetcher alone left bf16 decode at ~20 GB/s on
// one Zen 5 core where f32 gets ~33; prefetching 1 KiB ahead on every row brings bf16 to 26-31.
constexpr int64_t kPrefetchBytes = 1024;
template <DType DT, int MB, int R>
QVL_TARGET_AVX512 void rows_block(const MatmulParams& p, int64_t m0, int64_t n, int64_t rs) {
  constexpr int64_t kBytes = sizeof(WeightT<DT>);
  const WeightT<DT>* w[R];
  for (int j = 0; j < R; ++j) w[j] = static_cast<const WeightT<DT>*>(p.w.data) + (n + j * rs) * p.w.ld;
  const float* x[MB];
  for (int i = 0; i < MB; ++i) x[i] = p.x + (m0 + i) * p.ldx;
  const int64_t K = p.K;
  __m512 acc[MB][R];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < R; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {  // unmasked: the widening can then read memory directly
    if (k * kBytes % 64 == 0) {  // once per cache line
      for (int j = 0; j < R; ++j) prefetch_hint<_MM_HINT_T0>(w[j], k * kBytes + kPrefetchBytes);
    }
    __m512 wv[R];
    for (int j = 0; j < R; ++j) wv[j] = widen<DT>(w[j] + k, kAll);
    for (int i = 0; i < MB; ++i) {
      const __m512 xv = _mm512_loadu_ps(x[i] + k);
      for (int j = 0; j < R; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  if (k < K) {
    const __mmask16 m = first_lanes(K - k);
    __m512 wv[R];
    for (int j = 0; j < R; ++j) wv[j] = widen<DT>(w[j] + k, m);
    for (int i = 0; i < MB; ++i) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x[i] + k);
      for (int j = 0; j < R; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MB; ++i) {
    for (int j = 0; j < R; ++j) p.y[(m0 + i) * p.ldy + n + j * rs] = (p.bias ? p.bias[n + j * rs] : 0.0f) + vm::hsum_avx512(acc[i][j]);
  }
}

// Rows [n0, n1) as R streams (row_streams.h). Eight streams at M = 1 against four: within 2.5%,
// kept for the extra requests in flight.
template <DType DT, int MB>
QVL_TARGET_AVX512 void rows_mb(const MatmulParams& p, int64_t m0, int64_t n0, int64_t n1) {
  constexpr int R = MB == 1 ? 8 : 4;
  row_streams<R>(n0, n1, [&](int64_t n, int64_t part) { rows_block<DT, MB, R>(p, m0, n, part); },
                 [&](int64_t n) { rows_block<DT, MB, 1>(p, m0, n, 1); });
}

template <DType DT>
QVL_TARGET_AVX512 void rows_dt(const MatmulParams& p, int64_t m0, int count, int64_t n0, int64_t n1) {
  for (int r = 0; r < count;) {
    const int left = count - r;
    if (left >= 4) { rows_mb<DT, 4>(p, m0 + r, n0, n1); r += 4; }
    else if (left == 3) { rows_mb<DT, 3>(p, m0 + r, n0, n1); r += 3; }
    else if (left == 2) { rows_mb<DT, 2>(p, m0 + r, n0, n1); r += 2; }
    else { rows_mb<DT, 1>(p, m0 + r, n0, n1); r += 1; }
  }
}

QVL_TARGET_AVX512 void rows(const MatmulParams& p, int64_t m0, int count, int64_t n0, int64_t n1) {
  switch (p.dense) {
    case DType::F32: return rows_dt<DType::F32>(p, m0, count, n0, n1);
    case DType::BF16: return rows_dt<DType::BF16>(p, m0, count, n0, n1);
    case DType::F16: return rows_dt<DType::F16>(p, m0, count, n0, n1);
    case DType::I32:
    case DType::I64:
    case DType::F8E4M3:
    case DType::U8: return;  // refused by dense_params
  }
}

const MatmulKernels kKernels = {kMr, kNr, /*kc=*/256, /*nc=*/128, /*mc=*/256, /*small_m=*/4, pack, tile, rows};

}  // namespace

void matmul_avx512(const ops::MatmulParams& p, const ExecContext& ctx) { run_matmul(p, ctx, kKernels); }

}  // namespace qvl::cpu
