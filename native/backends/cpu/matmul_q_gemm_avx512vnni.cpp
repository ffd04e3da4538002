// The Int8Dot GEMM with AVX512-VNNI (the scheme is in matmul_q_gemm.h). A task repacks one panel
// of kPanelN outputs over all of K into its thread's scratch (about 1.1 KiB per 32-block: it
// stays in L2), then sweeps the activation rows over it kMB at a time, kChunk blocks at a time
// (18 KiB of panel, in L1 while every row tile reuses it), adding each chunk's sums into y.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "backends/cpu/matmul_q_gemm.h"
#include "backends/cpu/thread_scratch.h"
#include "core/cpu.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

namespace {

constexpr int kNB = 2;                   // 16-output vectors per panel
constexpr int64_t kPanelN = 16 * kNB;    // outputs per panel
constexpr int kMB = kQGemmTileRows;      // activation rows per register tile
constexpr int64_t kChunk = 16;           // 32-blocks per L1 chunk
constexpr int64_t kVecBlock = 8 * 64;    // one block of 16 outputs: 8 vectors of 4 k × 16 outputs
constexpr int64_t kBlockBytes = kNB * (kVecBlock + 64);  // + the int32 corrections of each vector
constexpr __mmask16 kAll = static_cast<__mmask16>(0xffff);

struct PanelTag {};

// Block b's 32 codes of a stored row as signed repacked values: q8 the stored byte − 128; q4 the
// raw code (the zero point is subtracted after the transpose, per lane).
template <WeightFormat F>
QVL_TARGET_AVX512VNNI inline __m256i block_codes(const uint8_t* row, int64_t ld, int64_t b) {
  if constexpr (F == WeightFormat::Q8) {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * kQuantBlock)),
                            _mm256_set1_epi8(static_cast<char>(0x80)));
  } else {
    const __m256i m4 = _mm256_set1_epi8(15);
    const int64_t paired = ld / kQuantBlock / 2 * 2;
    if (b < paired) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b / 2 * 32));
      return _mm256_and_si256(b % 2 ? _mm256_srli_epi16(v, 4) : v, m4);
    }
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + paired / 2 * 32));
    const __m128i lo = _mm_and_si128(v, _mm256_castsi256_si128(m4));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm256_castsi256_si128(m4));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
  }
}

// One round of transpose_16x8 for register bit S: a = z[r], b = z[r | 1 << S] (r without bit S)
// become the lanes with lane bit S clear (x) and set (y) of both.
template <int S>
QVL_TARGET_AVX512VNNI inline void trade(__m512i z[8]) {
  alignas(64) static constexpr int32_t kIdx[3][2][16] = {
      {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}, {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}},
      {{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29}, {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}},
      {{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27}, {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}},
  };
  constexpr int B = 1 << S;
  const __m512i ix = _mm512_load_si512(kIdx[S][0]), iy = _mm512_load_si512(kIdx[S][1]);
#pragma GCC unroll 8
  for (int r = 0; r < 8; ++r) {
    if (r & B) continue;
    const __m512i a = z[r], b = z[r | B];
    z[r] = _mm512_permutex2var_epi32(a, ix, b);
    z[r | B] = _mm512_permutex2var_epi32(a, iy, b);
  }
}

// z[r] holds dword c of row r in lane c and of row r + 8 in lane 8 + c (r, c < 8). Afterwards z[c]
// holds dword c of row r in lane r (r < 16): each round trades one bit of the register index for
// the same bit of the lane index (the tables: lane l of x takes lane l with bit S cleared from
// a or b as bit S of l says; y the same with bit S set).
QVL_TARGET_AVX512VNNI inline void transpose_16x8(__m512i z[8]) {
  trade<2>(z);
  trade<1>(z);
  trade<0>(z);
}

// Outputs [n0, n0 + kPanelN) of p.w (rows past N are zeros) into `panel` (blocks × kBlockBytes:
// per block and 16-output vector 8 × 64 bytes of signed weights, lane i = output i, then per
// vector −128·Σ w per output as int32) and `scales` (per group and vector the 16 f32 scales).
template <WeightFormat F>
QVL_TARGET_AVX512VNNI void pack_panel(const ops::MatmulParams& p, int64_t blocks, int64_t n0, uint8_t* panel, float* scales) {
  const int64_t groups = p.K / p.w.group, per_group = p.w.group / kQuantBlock, ld = p.w.ld;
  const __m512i c128 = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int v = 0; v < kNB; ++v) {
    const PanelRows<16> pr = panel_rows<F, 16>(p, n0 + 16 * v);
    for (int64_t g = 0; g < groups; ++g) {
      float* s = scales + (g * kNB + v) * 16;
      for (int r = 0; r < 16; ++r) s[r] = pr.scales[r] ? _cvtsh_ss(pr.scales[r][g]) : 0.0f;
    }
    __m512i zeros = _mm512_setzero_si512();  // q4: the group's zero point in every byte of lane r
    for (int64_t b = 0, in_group = 0; b < blocks; ++b) {
      __m512i z[8];
#pragma GCC unroll 8
      for (int r = 0; r < 8; ++r) {
        const __m256i lo = pr.codes[r] ? block_codes<F>(pr.codes[r], ld, b) : _mm256_setzero_si256();
        const __m256i hi = pr.codes[r + 8] ? block_codes<F>(pr.codes[r + 8], ld, b) : _mm256_setzero_si256();
        // maskz forms: GCC 12's unmasked inserts read an "undefined" vector it then warns about.
        const __m512i low = _mm512_maskz_inserti64x4(static_cast<__mmask8>(0xff), _mm512_setzero_si512(), lo, 0);
        z[r] = _mm512_maskz_inserti64x4(static_cast<__mmask8>(0xff), low, hi, 1);
      }
      transpose_16x8(z);
      if constexpr (F == WeightFormat::Q4) {
        if (in_group == 0) {
          alignas(64) int32_t zs[16];
          const int64_t g = b / per_group;
          for (int r = 0; r < 16; ++r) zs[r] = pr.zeros[r] ? q4_zero(pr.zeros[r], g) * 0x01010101 : 0;
          zeros = _mm512_load_si512(zs);
        }
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) z[j] = _mm512_sub_epi8(z[j], zeros);
      }
      if (++in_group == per_group) in_group = 0;
      uint8_t* dst = panel + b * kBlockBytes + v * kVecBlock;
      __m512i sum = _mm512_setzero_si512();
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        _mm512_store_si512(dst + j * 64, z[j]);
        sum = _mm512_dpbusd_epi32(sum, c128, z[j]);
      }
      _mm512_store_si512(panel + b * kBlockBytes + kNB * kVecBlock + v * 64, _mm512_sub_epi32(_mm512_setzero_si512(), sum));
    }
  }
}

// y[m0 + i, n0 + 16v + lane] += Σ over blocks [b0, b1) for MB rows (mask: the panel's valid lanes).
template <int MB>
QVL_TARGET_AVX512VNNI void tile(const QActs& a, const uint8_t* panel, const float* scales, int64_t m0, int64_t b0, int64_t b1,
                                float* y, int64_t ldy, const __mmask16 mask[kNB]) {
  const int64_t per_group = a.group / kQuantBlock;
  // The tile's rows as interleave_tile left them.
  const uint8_t* xq = reinterpret_cast<const uint8_t*>(a.q) + m0 * a.K;
  const float* xd = a.d + m0 * a.blocks;
  __m512 acc[MB][kNB];
  for (int i = 0; i < MB; ++i)
    for (int v = 0; v < kNB; ++v) acc[i][v] = _mm512_setzero_ps();
  // The block's scales: a group counter rather than a division per block.
  const float* s = scales + (b0 / per_group) * kNB * 16;
  for (int64_t b = b0, in_group = b0 % per_group; b < b1; ++b) {
    const uint8_t* pb = panel + b * kBlockBytes;
    __m512i dot[MB][kNB];
    for (int v = 0; v < kNB; ++v) {
      const __m512i corr = _mm512_load_si512(pb + kNB * kVecBlock + v * 64);
      for (int i = 0; i < MB; ++i) dot[i][v] = corr;
    }
    for (int j = 0; j < 8; ++j) {
      __m512i w[kNB];
      for (int v = 0; v < kNB; ++v) w[v] = _mm512_load_si512(pb + v * kVecBlock + j * 64);
      for (int i = 0; i < MB; ++i) {
        int32_t x4;
        __builtin_memcpy(&x4, xq + (b * 8 + j) * 4 * MB + 4 * i, 4);
        const __m512i xv = _mm512_set1_epi32(x4);
        for (int v = 0; v < kNB; ++v) dot[i][v] = _mm512_dpbusd_epi32(dot[i][v], xv, w[v]);
      }
    }
    for (int i = 0; i < MB; ++i) {
      const __m512 d = _mm512_set1_ps(xd[b * MB + i]);
      for (int v = 0; v < kNB; ++v)
        acc[i][v] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_maskz_cvtepi32_ps(kAll, dot[i][v]), d), _mm512_load_ps(s + v * 16), acc[i][v]);
    }
    if (++in_group == per_group) in_group = 0, s += kNB * 16;
  }
  for (int i = 0; i < MB; ++i) {
    float* yr = y + (m0 + i) * ldy;
    for (int v = 0; v < kNB; ++v)
      _mm512_mask_storeu_ps(yr + 16 * v, mask[v], _mm512_add_ps(_mm512_maskz_loadu_ps(mask[v], yr + 16 * v), acc[i][v]));
  }
}

QVL_TARGET_AVX512VNNI void tiles(const QActs& a, const uint8_t* panel, const float* scales, int64_t m0, int64_t m1, int64_t b0,
                                 int64_t b1, float* y, int64_t ldy, const __mmask16 mask[kNB]) {
  int64_t m = m0;
  for (; m + kMB <= m1; m += kMB) tile<kMB>(a, panel, scales, m, b0, b1, y, ldy, mask);
  switch (m1 - m) {
    case 1: return tile<1>(a, panel, scales, m, b0, b1, y, ldy, mask);
    case 2: return tile<2>(a, panel, scales, m, b0, b1, y, ldy, mask);
    case 3: return tile<3>(a, panel, scales, m, b0, b1, y, ldy, mask);
    default: return;
  }
}

// Rows [m0, m1) × the panel at n0: repack, then y = bias + the chunks' sums.
template <WeightFormat F>
QVL_TARGET_AVX512VNNI void run_panel(const ops::MatmulParams& p, const QActs& a, int64_t n0, int64_t m0, int64_t m1) {
  const int64_t groups = p.K / p.w.group;
  const size_t panel_bytes = static_cast<size_t>(a.blocks * kBlockBytes), scale_bytes = static_cast<size_t>(groups * kNB * 64);
  auto* panel = static_cast<uint8_t*>(thread_scratch<PanelTag>(panel_bytes + scale_bytes, "int8 GEMM weight panel"));
  auto* scales = reinterpret_cast<float*>(panel + panel_bytes);
  pack_panel<F>(p, a.blocks, n0, panel, scales);
  const int64_t valid = std::min(kPanelN, p.N - n0);
  __mmask16 mask[kNB];
  for (int v = 0; v < kNB; ++v) {
    const int64_t lanes = std::clamp<int64_t>(valid - 16 * v, 0, 16);
    mask[v] = static_cast<__mmask16>((1u << lanes) - 1);
  }
  float* y = p.y + n0;
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t n = 0; n < valid; ++n) y[m * p.ldy + n] = p.bias ? p.bias[n0 + n] : 0.0f;
  for (int64_t b0 = 0; b0 < a.blocks; b0 += kChunk)
    tiles(a, panel, scales, m0, m1, b0, std::min(b0 + kChunk, a.blocks), y, p.ldy, mask);
}

struct TileTag {};

// Rows [m0, m0 + r) of a (m0 a multiple of kMB, r <= kMB: the rows of one register tile, which
// occupy the same bytes in either layout) rewritten in place into the layout tile() reads: codes
// made unsigned (+128), and for each block and 4-k step the r rows' 4 codes side by side
// (q[(8·b + j)·4r + 4i + t] = code k = 32b + 4j + t of row i); the scales side by side per block
// (d[b·r + i]). Then one tile's activations are one sequential stream.
QVL_TARGET_AVX512VNNI void interleave_tile(QActs& a, int64_t m0, int r) {
  const int64_t K = a.K, blocks = a.blocks;
  uint8_t* q = reinterpret_cast<uint8_t*>(a.q) + m0 * K;
  float* d = a.d + m0 * blocks;
  auto* tmp = static_cast<uint8_t*>(thread_scratch<TileTag>(static_cast<size_t>(r * (K + 4 * blocks)), "int8 GEMM row tile"));
  auto* dtmp = reinterpret_cast<float*>(tmp + r * K);
  __builtin_memcpy(tmp, q, static_cast<size_t>(r * K));
  __builtin_memcpy(dtmp, d, static_cast<size_t>(r * blocks) * sizeof(float));
  for (int64_t b = 0; b < blocks; ++b)
    for (int i = 0; i < r; ++i) d[b * r + i] = dtmp[i * blocks + b];
  const __m512i c128 = _mm512_set1_epi8(static_cast<char>(0x80));
  if (r == 4) {
    // Output dword 4j + i (j < 4 in the first vector, 4..7 in the second) is dword j of row i:
    // rows 0, 1 in a's halves, rows 2, 3 in b's.
    alignas(64) static constexpr int32_t kLo[16] = {0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27};
    alignas(64) static constexpr int32_t kHi[16] = {4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7, 15, 23, 31};
    const __m512i lo = _mm512_load_si512(kLo), hi = _mm512_load_si512(kHi);
    const __mmask8 all = static_cast<__mmask8>(0xff);
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* src = tmp + b * kQuantBlock;
      __m256i row[4];
      for (int i = 0; i < 4; ++i) row[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i * K));
      const __m512i ab = _mm512_maskz_inserti64x4(all, _mm512_maskz_inserti64x4(all, _mm512_setzero_si512(), row[0], 0), row[1], 1);
      const __m512i cd = _mm512_maskz_inserti64x4(all, _mm512_maskz_inserti64x4(all, _mm512_setzero_si512(), row[2], 0), row[3], 1);
      _mm512_storeu_si512(q + b * 128, _mm512_xor_si512(_mm512_permutex2var_epi32(ab, lo, cd), c128));
      _mm512_storeu_si512(q + b * 128 + 64, _mm512_xor_si512(_mm512_permutex2var_epi32(ab, hi, cd), c128));
    }
    return;
  }
  for (int64_t b = 0; b < blocks; ++b)
    for (int j = 0; j < 8; ++j)
      for (int i = 0; i < r; ++i)
        for (int t = 0; t < 4; ++t) q[(b * 8 + j) * 4 * r + 4 * i + t] = static_cast<uint8_t>(tmp[i * K + b * kQuantBlock + 4 * j + t] ^ 0x80u);
}

}  // namespace

void qgemm_avx512vnni(const ops::MatmulParams& p, QActs& a, ThreadPool& pool) {
  static_assert(kMB == kQGemmTileRows, "interleave_tile's fast path packs 4 rows");
  qgemm_schedule(
      p, pool, kPanelN, [&](int64_t m0, int rows) { interleave_tile(a, m0, rows); },
      [&](int64_t n0, int64_t m0, int64_t m1) {
        switch (p.w.format) {
          case WeightFormat::Q8: return run_panel<WeightFormat::Q8>(p, a, n0, m0, m1);
          case WeightFormat::Q4: return run_panel<WeightFormat::Q4>(p, a, n0, m0, m1);
          case WeightFormat::F32:
          case WeightFormat::F16:
          case WeightFormat::BF16:
          case WeightFormat::F8: return;  // the dispatcher sends only the formats the variant lists
        }
      });
}

}  // namespace qvl::cpu
