// The Int8Dot GEMM with AVX512-VNNI (the scheme is in matmul_q_gemm.h). The stored panels
// (core/weight_quant.h) already hold 4 consecutive k of 16 outputs per 64-byte vector, so a task
// streams its kNB panels straight from the weight: no repack. It sweeps the activation rows over
// them kMB at a time, kChunk blocks at a time (16 KiB of q8 codes, 8 KiB of q4: in L1 while
// every row tile reuses them), adding each chunk's sums into y.
//
// Operands: vpdpbusd takes the stored codes as the unsigned side (q8 biased bytes, q4 codes
// 0..15) and the activation codes, as quantized, as the signed side. The codes' offset (128 for
// q8, the zero point for q4) is the reference's term −s·z·Σ_g gs, subtracted from y once per task
// before the chunks are added.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "backends/cpu/matmul_q_gemm.h"
#include "backends/cpu/thread_scratch.h"
#include "core/cpu.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

namespace {

constexpr int kNB = 2;                 // 16-output panels per task
constexpr int64_t kPanelN = kQPanelRows * kNB;
constexpr int kMB = kQGemmTileRows;    // activation rows per register tile
constexpr int64_t kChunk = 16;         // 32-blocks per L1 chunk
constexpr __mmask16 kAll = static_cast<__mmask16>(0xffff);

// Bytes of one 32-block of a panel's codes.
template <WeightFormat F>
constexpr int64_t block_bytes() {
  return F == WeightFormat::Q8 ? 8 * 64 : 4 * 64;
}

struct ScaleTag {};

// What a task reads besides the codes: the first panel's codes (the next one panel_stride bytes
// on), each group's f32 scales [groups][kNB][16], the valid lanes of each panel.
struct Panels {
  const uint8_t* codes = nullptr;
  int64_t panel_stride = 0;
  const float* scales = nullptr;
  __mmask16 mask[kNB] = {};
};

// One 4-k step j of a block: the MB rows' 4 codes (xb: the block's interleaved codes) broadcast
// against each panel's vector w[v].
template <int MB, int NB>
QVL_TARGET_AVX512VNNI inline void step(__m512i (&dot)[MB][NB], const __m512i* w, const uint8_t* xb, int j) {
  for (int i = 0; i < MB; ++i) {
    int32_t x4;
    __builtin_memcpy(&x4, xb + j * 4 * MB + 4 * i, 4);
    const __m512i xv = _mm512_set1_epi32(x4);
    for (int v = 0; v < NB; ++v) dot[i][v] = _mm512_dpbusd_epi32(dot[i][v], w[v], xv);
  }
}

// y[m0 + i, 16v + lane] += Σ over blocks [b0, b1) for MB rows.
template <WeightFormat F, int MB, int NB>
QVL_TARGET_AVX512VNNI void tile(const QActs& a, const Panels& pn, int64_t m0, int64_t b0, int64_t b1, float* y, int64_t ldy) {
  const int64_t per_group = a.group / kQuantBlock;
  // The tile's rows as interleave_tile_rows left them.
  const uint8_t* xq = reinterpret_cast<const uint8_t*>(a.q) + m0 * a.K;
  const float* xd = a.d + m0 * a.blocks;
  __m512 acc[MB][NB];
  for (int i = 0; i < MB; ++i)
    for (int v = 0; v < NB; ++v) acc[i][v] = _mm512_setzero_ps();
  // The block's scales: a group counter rather than a division per block.
  const float* s = pn.scales + (b0 / per_group) * kNB * 16;
  const __m512i low4 = _mm512_set1_epi8(15);
  for (int64_t b = b0, in_group = b0 % per_group; b < b1; ++b) {
    const uint8_t* wb = pn.codes + b * block_bytes<F>();
    const uint8_t* xb = xq + b * 32 * MB;
    __m512i dot[MB][NB];
    for (int i = 0; i < MB; ++i)
      for (int v = 0; v < NB; ++v) dot[i][v] = _mm512_setzero_si512();
    if constexpr (F == WeightFormat::Q8) {
      for (int j = 0; j < 8; ++j) {
        __m512i w[NB];
        for (int v = 0; v < NB; ++v) w[v] = _mm512_loadu_si512(wb + v * pn.panel_stride + j * 64);
        step<MB, NB>(dot, w, xb, j);
      }
    } else {
      // Vector c: elements 4c + t in the low nibbles (step c), 16 + 4c + t in the high (step 4 + c).
      for (int c = 0; c < 4; ++c) {
        __m512i lo[NB], hi[NB];
        for (int v = 0; v < NB; ++v) {
          const __m512i raw = _mm512_loadu_si512(wb + v * pn.panel_stride + c * 64);
          lo[v] = _mm512_and_si512(raw, low4);
          hi[v] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
        }
        step<MB, NB>(dot, lo, xb, c);
        step<MB, NB>(dot, hi, xb, 4 + c);
      }
    }
    for (int i = 0; i < MB; ++i) {
      const __m512 d = _mm512_set1_ps(xd[b * MB + i]);
      for (int v = 0; v < NB; ++v)
        acc[i][v] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_maskz_cvtepi32_ps(kAll, dot[i][v]), d), _mm512_load_ps(s + v * 16), acc[i][v]);
    }
    if (++in_group == per_group) in_group = 0, s += kNB * 16;
  }
  for (int i = 0; i < MB; ++i) {
    float* yr = y + (m0 + i) * ldy;
    for (int v = 0; v < NB; ++v)
      _mm512_mask_storeu_ps(yr + 16 * v, pn.mask[v], _mm512_add_ps(_mm512_maskz_loadu_ps(pn.mask[v], yr + 16 * v), acc[i][v]));
  }
}

template <WeightFormat F, int NB>
QVL_TARGET_AVX512VNNI void tiles(const QActs& a, const Panels& pn, int64_t m0, int64_t m1, int64_t b0, int64_t b1, float* y,
                                 int64_t ldy) {
  int64_t m = m0;
  for (; m + kMB <= m1; m += kMB) tile<F, kMB, NB>(a, pn, m, b0, b1, y, ldy);
  switch (m1 - m) {
    case 1: return tile<F, 1, NB>(a, pn, m, b0, b1, y, ldy);
    case 2: return tile<F, 2, NB>(a, pn, m, b0, b1, y, ldy);
    case 3: return tile<F, 3, NB>(a, pn, m, b0, b1, y, ldy);
    default: return;
  }
}

// Rows [m0, m1) × the panels from n0: y = bias − the zero-point term, then the chunks' sums.
template <WeightFormat F>
QVL_TARGET_AVX512VNNI void run_panels(const ops::MatmulParams& p, const QActs& a, int64_t n0, int64_t m0, int64_t m1) {
  const int64_t P0 = n0 / kQPanelRows, groups = a.groups;
  const int nb = static_cast<int>(std::min<int64_t>(kNB, q_panel_count(p.N) - P0));
  // [groups][kNB][16] f32 scales, then (the zero-point term's factor) the same for s·z.
  auto* scales = static_cast<float*>(thread_scratch<ScaleTag>(static_cast<size_t>(2 * groups * kNB * 16) * sizeof(float),
                                                              "int8 GEMM panel scales"));
  float* sz = scales + groups * kNB * 16;
  Panels pn;
  pn.codes = q_panel_codes(p.w, P0);
  pn.panel_stride = kQPanelRows * (F == WeightFormat::Q4 ? p.w.ld / 2 : p.w.ld);
  pn.scales = scales;
  for (int v = 0; v < kNB; ++v) {
    const int64_t lanes = std::clamp<int64_t>(p.N - n0 - 16 * v, 0, 16);
    pn.mask[v] = static_cast<__mmask16>((1u << lanes) - 1);
    for (int64_t g = 0; g < groups; ++g) {
      float* s = scales + (g * kNB + v) * 16;
      float* z = sz + (g * kNB + v) * 16;
      if (v >= nb) {
        std::fill(s, s + 16, 0.0f), std::fill(z, z + 16, 0.0f);
        continue;
      }
      const __m512 sv = _mm512_maskz_cvtph_ps(kAll, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q_panel_scales(p.w, P0 + v) + g * 16)));
      __m512 zv = _mm512_set1_ps(128.0f);
      if constexpr (F == WeightFormat::Q4) {
        // 16 nibbles of 8 bytes, low nibble first: row i's zero point into lane i.
        const __m128i zb = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q_panel_zeros(p.w, P0 + v) + g * 8));
        const __m128i m4 = _mm_set1_epi8(15);
        const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(zb, m4), _mm_and_si128(_mm_srli_epi16(zb, 4), m4));
        zv = _mm512_maskz_cvtepi32_ps(kAll, _mm512_maskz_cvtepu8_epi32(kAll, nib));
      }
      _mm512_store_ps(s, sv);
      _mm512_store_ps(z, _mm512_mul_ps(sv, zv));
    }
  }
  float* y = p.y + n0;
  for (int64_t m = m0; m < m1; ++m) {
    const float* gs = a.gs + m * groups;
    for (int v = 0; v < nb; ++v) {
      __m512 acc = p.bias ? _mm512_maskz_loadu_ps(pn.mask[v], p.bias + n0 + 16 * v) : _mm512_setzero_ps();
      for (int64_t g = 0; g < groups; ++g) acc = _mm512_fnmadd_ps(_mm512_load_ps(sz + (g * kNB + v) * 16), _mm512_set1_ps(gs[g]), acc);
      _mm512_mask_storeu_ps(y + m * p.ldy + 16 * v, pn.mask[v], acc);
    }
  }
  for (int64_t b0 = 0; b0 < a.blocks; b0 += kChunk) {
    const int64_t b1 = std::min(b0 + kChunk, a.blocks);
    if (nb == kNB) tiles<F, kNB>(a, pn, m0, m1, b0, b1, y, p.ldy);
    else tiles<F, 1>(a, pn, m0, m1, b0, b1, y, p.ldy);
  }
}

}  // namespace

void qgemm_avx512vnni(const ops::MatmulParams& p, QActs& a, ThreadPool& pool) {
  qgemm_schedule(
      p, pool, kPanelN, [&](int64_t m0, int rows) { interleave_tile_rows(a, m0, rows, 0x00); },
      [&](int64_t n0, int64_t m0, int64_t m1) {
        switch (p.w.format) {
          case WeightFormat::Q8: return run_panels<WeightFormat::Q8>(p, a, n0, m0, m1);
          case WeightFormat::Q4: return run_panels<WeightFormat::Q4>(p, a, n0, m0, m1);
          case WeightFormat::F32:
          case WeightFormat::F16:
          case WeightFormat::BF16:
          case WeightFormat::F8: return;  // the dispatcher sends only the formats the variant lists
        }
      });
}

}  // namespace qvl::cpu
