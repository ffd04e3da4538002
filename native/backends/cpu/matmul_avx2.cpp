// AVX2 + FMA matmul: a 6x16 register tile (12 accumulators of the 16 ymm registers) over x as
// the driver packs it (packed_x), weight panels transposed 8x8 at a time while converting (bf16:
// widen and shift; f16: F16C).
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "backends/cpu/matmul_cpu.h"
#include "backends/cpu/row_streams.h"
#include "backends/cpu/vec_math.h"

namespace qvl::cpu {

namespace {

using MatmulParams = DenseMatmul;  // the kernels read p.dense, the weights' element type

constexpr int kMr = 6, kNr = 16;

// The last n < 8 weights of a row, zero-filled: 16-bit types have no masked load in AVX2.
QVL_TARGET_AVX2 inline __m256 load_tail(const MatmulParams& p, int64_t off, int64_t n) {
  uint16_t t[8] = {};
  switch (p.dense) {
    case DType::F32: {
      float f[8] = {};
      std::memcpy(f, static_cast<const float*>(p.w.data) + off, n * sizeof(float));
      return _mm256_loadu_ps(f);
    }
    case DType::BF16:
      std::memcpy(t, static_cast<const uint16_t*>(p.w.data) + off, n * sizeof(uint16_t));
      return _mm256_castsi256_ps(
          _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t))), 16));
    case DType::F16:
      std::memcpy(t, static_cast<const uint16_t*>(p.w.data) + off, n * sizeof(uint16_t));
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t)));
    case DType::I32:
    case DType::I64:
    case DType::F8E4M3:
    case DType::U8: break;  // refused by dense_storage
  }
  return _mm256_setzero_ps();
}

QVL_TARGET_AVX2 inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  // u[q] holds column q (rows 0-3) in its low half and column q+4 in its high half; u[4+q] rows 4-7.
  for (int q = 0; q < 4; ++q) {
    r[q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x20);
    r[q + 4] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x31);
  }
}

QVL_TARGET_AVX2 inline __m256i lane_mask(int64_t n) {  // the first n (0..8) lanes
  static const int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 8 - n));
}

template <int R>
QVL_TARGET_AVX2 void tile_rows(int64_t kc, const float* x, int64_t ldx, const float* panel, float* y, int64_t ldy,
                               int64_t nvalid, const float* bias, bool first) {
  const int64_t n0 = nvalid < 8 ? nvalid : 8, n1 = nvalid > 8 ? nvalid - 8 : 0;
  __m256 c[R][2];
  // Full tiles (all but the last of a row) use plain loads and stores: AMD's masked moves are
  // microcoded, and twelve masked stores a tile cost as much as a few hundred FMAs there.
  const bool full = nvalid == kNr;
  for (int r = 0; r < R; ++r) {
    const float* src = first ? bias : y + r * ldy;
    if (src && full) {
      c[r][0] = _mm256_loadu_ps(src);
      c[r][1] = _mm256_loadu_ps(src + 8);
    } else if (src) {
      c[r][0] = _mm256_maskload_ps(src, lane_mask(n0));
      c[r][1] = _mm256_maskload_ps(src + 8, lane_mask(n1));
    } else {
      c[r][0] = c[r][1] = _mm256_setzero_ps();
    }
  }
  (void)ldx;  // x is packed: x[k * kMr + r]
  // kc >= 1. A do-while, not a for: when the loop might run zero times GCC 12 keeps the
  // accumulators' home in memory and stores all twelve on every iteration.
  int64_t k = 0;
  do {
    const __m256 b0 = _mm256_loadu_ps(panel + k * kNr), b1 = _mm256_loadu_ps(panel + k * kNr + 8);
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(x + k * kMr + r);
      c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
      c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
    }
  } while (++k < kc);
  for (int r = 0; r < R; ++r) {
    if (full) {
      _mm256_storeu_ps(y + r * ldy, c[r][0]);
      _mm256_storeu_ps(y + r * ldy + 8, c[r][1]);
    } else {
      _mm256_maskstore_ps(y + r * ldy, lane_mask(n0), c[r][0]);
      _mm256_maskstore_ps(y + r * ldy + 8, lane_mask(n1), c[r][1]);
    }
  }
}

QVL_TARGET_AVX2 void tile(int rows, int64_t kc, const float* x, int64_t ldx, const float* panel, float* y,
                          int64_t ldy, int64_t nvalid, const float* bias, bool first) {
  switch (rows) {
    case 1: return tile_rows<1>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    case 2: return tile_rows<2>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    case 3: return tile_rows<3>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    case 4: return tile_rows<4>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    case 5: return tile_rows<5>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
    default: return tile_rows<6>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
  }
}

// Prefetches `bytes` past p. Integer arithmetic: the address may lie past the end of the
// buffer (a prefetch never faults), where pointer arithmetic would be undefined.
template <int Hint>
QVL_TARGET_AVX2 inline void prefetch_hint(const void* p, int64_t bytes) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(bytes)),
               static_cast<_mm_hint>(Hint));
}

template <DType DT>
using WeightT = std::conditional_t<DT == DType::F32, float, uint16_t>;

template <DType DT>
QVL_TARGET_AVX2 inline __m256 widen(const WeightT<DT>* w) {
  if constexpr (DT == DType::F32) {
    return _mm256_loadu_ps(w);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
    if constexpr (DT == DType::BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    else return _mm256_cvtph_ps(h);
  }
}

constexpr int kKc = 256;
// Rows past nvalid read from here (a k panel is at most kKc long): zero bits are 0.0 in every
// weight type, and AVX2 has no masked 16-bit load to skip them.
alignas(64) const float kZeroRow[kKc] = {};

template <DType DT>
QVL_TARGET_AVX2 void pack_dt(const MatmulParams& p, int64_t n0, int64_t nvalid, int64_t k0, int64_t kc,
                             float* panel) {
  constexpr int64_t kBytes = sizeof(WeightT<DT>);
  const int64_t kfull = kc & ~int64_t{7};
  const WeightT<DT>* base = static_cast<const WeightT<DT>*>(p.w.data) + n0 * p.w.ld + k0;
  for (int g = 0; g < kNr / 8; ++g) {
    const WeightT<DT>* rows[8];
    for (int j = 0; j < 8; ++j) {
      const int64_t n = g * 8 + j;
      rows[j] = n < nvalid ? base + n * p.w.ld : reinterpret_cast<const WeightT<DT>*>(kZeroRow);
    }
    for (int64_t kb = 0; kb < kfull; kb += 8) {
      // Each row is read in kc-long bursts, too short for the hardware prefetcher to lock on:
      // fetch the next burst (the next k panel) while this one is packed.
      if (kb * kBytes % 64 == 0) {
        for (int j = 0; j < 8; ++j) prefetch_hint<_MM_HINT_T1>(rows[j], (kb + kc) * kBytes);
      }
      __m256 r[8];
      for (int j = 0; j < 8; ++j) r[j] = widen<DT>(rows[j] + kb);
      transpose8(r);
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(panel + (kb + i) * kNr + g * 8, r[i]);
    }
  }
  if (kfull < kc) {
    alignas(32) float t[kNr][8];
    for (int j = 0; j < kNr; ++j) {
      const __m256 v = j < nvalid ? load_tail(p, (n0 + j) * p.w.ld + k0 + kfull, kc - kfull) : _mm256_setzero_ps();
      _mm256_store_ps(t[j], v);
    }
    for (int64_t k = kfull; k < kc; ++k) {
      for (int j = 0; j < kNr; ++j) panel[k * kNr + j] = t[j][k - kfull];
    }
  }
}

QVL_TARGET_AVX2 void pack(const MatmulParams& p, int64_t n0, int64_t nvalid, int64_t k0, int64_t kc, float* panel) {
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

// MB rows of x against R weight rows (n, n + rs, ..., n + (R - 1)·rs) at a time, each weight
// vector converted once and used MB times; the MB*R accumulators are independent chains, enough
// to hide FMA latency. Everything the loop needs is copied to locals first; read through `p`, GCC
// reloads it every iteration. Software prefetch 1 KiB ahead on every row: the hardware prefetcher
// alone streams bf16 rows well below the bandwidth f32 rows get.
constexpr int64_t kPrefetchBytes = 1024;
template <DType DT, int MB, int R>
QVL_TARGET_AVX2 void rows_block(const MatmulParams& p, int64_t m0, int64_t n, int64_t rs) {
  constexpr int64_t kBytes = sizeof(WeightT<DT>);
  const WeightT<DT>* w[R];
  for (int j = 0; j < R; ++j) w[j] = static_cast<const WeightT<DT>*>(p.w.data) + (n + j * rs) * p.w.ld;
  const float* x[MB];
  for (int i = 0; i < MB; ++i) x[i] = p.x + (m0 + i) * p.ldx;
  const int64_t K = p.K, kfull = K & ~int64_t{7};
  __m256 acc[MB][R];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < R; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kfull; k += 8) {
    if (k * kBytes % 64 == 0) {  // once per cache line
      for (int j = 0; j < R; ++j) prefetch_hint<_MM_HINT_T0>(w[j], k * kBytes + kPrefetchBytes);
    }
    __m256 wv[R];
    for (int j = 0; j < R; ++j) wv[j] = widen<DT>(w[j] + k);
    for (int i = 0; i < MB; ++i) {
      const __m256 xv = _mm256_loadu_ps(x[i] + k);
      for (int j = 0; j < R; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  if (kfull < K) {
    const __m256i mask = lane_mask(K - kfull);
    __m256 wv[R];
    for (int j = 0; j < R; ++j) wv[j] = load_tail(p, (n + j * rs) * p.w.ld + kfull, K - kfull);
    for (int i = 0; i < MB; ++i) {
      const __m256 xv = _mm256_maskload_ps(x[i] + kfull, mask);
      for (int j = 0; j < R; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MB; ++i) {
    for (int j = 0; j < R; ++j) p.y[(m0 + i) * p.ldy + n + j * rs] = (p.bias ? p.bias[n + j * rs] : 0.0f) + vm::hsum_avx2(acc[i][j]);
  }
}

// Rows [n0, n1) as R streams (row_streams.h).
template <DType DT, int MB>
QVL_TARGET_AVX2 void rows_mb(const MatmulParams& p, int64_t m0, int64_t n0, int64_t n1) {
  constexpr int R = MB <= 2 ? 4 : 2;
  row_streams<R>(n0, n1, [&](int64_t n, int64_t part) { rows_block<DT, MB, R>(p, m0, n, part); },
                 [&](int64_t n) { rows_block<DT, MB, 1>(p, m0, n, 1); });
}

template <DType DT>
QVL_TARGET_AVX2 void rows_dt(const MatmulParams& p, int64_t m0, int count, int64_t n0, int64_t n1) {
  for (int r = 0; r < count;) {
    const int left = count - r;
    if (left >= 4) { rows_mb<DT, 4>(p, m0 + r, n0, n1); r += 4; }
    else if (left == 3) { rows_mb<DT, 3>(p, m0 + r, n0, n1); r += 3; }
    else if (left == 2) { rows_mb<DT, 2>(p, m0 + r, n0, n1); r += 2; }
    else { rows_mb<DT, 1>(p, m0 + r, n0, n1); r += 1; }
  }
}

QVL_TARGET_AVX2 void rows(const MatmulParams& p, int64_t m0, int count, int64_t n0, int64_t n1) {
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

const MatmulKernels kKernels = {kMr, kNr, kKc, /*nc=*/128, /*mc=*/192, /*small_m=*/4, pack, tile, rows, /*packed_x=*/true};

}  // namespace

void matmul_avx2(const ops::MatmulParams& p, const ExecContext& ctx) { run_matmul(p, ctx, kKernels); }

}  // namespace qvl::cpu
