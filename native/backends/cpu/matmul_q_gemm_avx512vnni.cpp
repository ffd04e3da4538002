// The Int8Dot GEMM with AVX512-VNNI (the scheme is in matmul_q_gemm.h). The stored panels
// (core/weight_quant.h) already hold 4 consecutive k of 16 outputs per 64-byte vector, so a task
// sweeps the activation rows over its pairs of panels kMB rows and one chunk of blocks at a time
// (the chunk's codes in L1 or L2 while every row tile reuses them; see Blocking), adding each
// chunk's sums into y:
//  - q8: straight from the stored panels (no repack).
//  - q4: each chunk first unpacked into the q8 shape (one code per byte, 8 vectors per block) with
//    16 − z added per byte, once per task and chunk rather than once per row tile.
// vpdpbusd takes these bytes as its unsigned side and the activation codes, as quantized, as its
// signed side. Each byte is its code minus the zero point plus a constant offset (q8 128, q4 16),
// so a block's dot starts from −offset·Σx of its row and block (computed with the interleave):
// the integer dot is the reference's zero-point-corrected one, exactly. Per block, a row and 16
// outputs then cost 8 vpdpbusd and 3 f32 operations (convert, activation scale, weight scale FMA;
// 2 in groups of several blocks), as in the repacking GEMM this replaced (git c5a7c5a), without its
// per-call transpose and repack. Against it (bench qgemm's shapes, separate processes
// alternately, one thread, 5 rounds, medians): 1.3-2.0x at M = 8, 1.2-1.8x at 16, 1.1-1.3x at 64,
// 1.08-1.15x at 512.
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
// Blocking. A task's row tiles sweep its panels one chunk of blocks at a time. Below kWholeKRows
// rows: while the activation codes fit in L2 (kActsInL2), a task is one pair of panels and a chunk
// 16 blocks (16 KiB of codes). Past that every task would stream all of them from L3 for just 32
// outputs, so a task takes kPairs pairs and chunks of 8 blocks (32 KiB of codes), each row tile's
// activations staying in L1 through the pairs (one thread, M = 256, 512, K = 8960: 1.02-1.07x
// over one pair; whole-K chunks, below, have since beaten both at these M).
constexpr int kPairs = 4;
constexpr int64_t kChunk = 16;
constexpr int64_t kActsInL2 = int64_t{1} << 20;
// From kWholeKRows activation rows on (prefill, the vision tower: compute-bound, each weight reused
// by 16 or more row tiles) a task is one pair and a chunk the whole of K (up to kMaxChunk blocks, a
// pair's 256 KiB of q8 codes or q4 staging, in L2): every row tile then goes through K once,
// without adding into y per chunk, and the pair's codes stream from L2. bench's benchMatmul, M =
// 512, one process, the blockings alternated, 2 runs each (GOP/s): N = 1536, K = 8960: q8 595-641
// → 798-829, q4 639-695 → 849-903; N = 8960, K = 1536: q8 861-942 → 969-989, q4 899-948 →
// 992-1000; N = K = 1536: q8 800-807 → 858-893, q4 800-847 → 937-939. M = 64 gained 0-12% (noisy,
// one q4 shape -5% in one run). M = 16, the weights from DRAM, lost 5-17% that way (q4 most: the
// chunked path prefetches the next chunk's codes while it works), so fewer rows keep the chunks.
constexpr int64_t kWholeKRows = 64;
constexpr int64_t kMaxChunk = 512;
constexpr int64_t kBlockBytes = 8 * 64;  // one block of one panel in the q8 shape
constexpr __mmask16 kAll = static_cast<__mmask16>(0xffff);

struct ScaleTag {};
struct StageTag {};
struct TileTag {};

// The bytes a tile reads: block b of panel v at codes + (b − b0)·block_stride + v·panel_stride (b0
// the chunk's first block), each group's f32 scales [groups][kNB][16], the valid lanes per panel.
struct Panels {
  const uint8_t* codes = nullptr;
  int64_t block_stride = 0, panel_stride = 0;
  const float* scales = nullptr;
  const float* bias = nullptr;  // at the panels' first output, or null
  __mmask16 mask[kNB] = {};
  // y's lines (whole 16-output pieces) written past the caches: see kStreamBytes.
  bool stream = false;
  // The next chunk's stored codes (block b0 + c of panel v at ahead + c·ahead_block +
  // v·ahead_panel, c < ahead_blocks), which a chunk's first row tile prefetches for q4: at few
  // rows the weights come from DRAM, and the unpacking read them in bursts the hardware
  // prefetcher did not keep up with (M = 8, 16: q4 1.15-1.3x faster with it; q8, read by the
  // tiles themselves, 0.95-1.03x, so not there).
  const uint8_t* ahead = nullptr;
  int64_t ahead_block = 0, ahead_panel = 0, ahead_blocks = 0;
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

// y[m0 + i, 16v + lane] += Σ over blocks [b0, b1) for MB rows (first: y = bias + Σ instead).
// Grouped (groups of several blocks): a group's blocks are summed with their activation scales
// alone and the sum multiplied by the group's weight scales once, 2 f32 operations per block
// rather than 3 (group 128, one thread: 1.02-1.13x at M = 16..512, the 2B widths).
template <int MB, int NB, bool Grouped>
QVL_TARGET_AVX512VNNI void tile(const QActs& a, const int32_t* xoff, const Panels& pn, int64_t m0, int64_t b0, int64_t b1,
                                bool first, bool prefetch, float* y, int64_t ldy) {
  const int64_t per_group = a.group / kQuantBlock;
  // The tile's rows as interleave_tile left them.
  const uint8_t* xq = reinterpret_cast<const uint8_t*>(a.q) + m0 * a.K;
  const float* xd = a.d + m0 * a.blocks;
  const int32_t* xo = xoff + m0 * a.blocks;
  __m512 acc[MB][NB], gacc[MB][NB];
  for (int i = 0; i < MB; ++i)
    for (int v = 0; v < NB; ++v) acc[i][v] = gacc[i][v] = _mm512_setzero_ps();
  // The block's scales: a group counter rather than a division per block.
  const float* s = pn.scales + (b0 / per_group) * kNB * 16;
  for (int64_t b = b0, in_group = b0 % per_group; b < b1; ++b) {
    const uint8_t* wb = pn.codes + (b - b0) * pn.block_stride;
    const uint8_t* xb = xq + b * 32 * MB;
    // The even and the odd steps in two sets of sums, added after the block: one set made each
    // sum a chain of 8 dependent vpdpbusd, and at MB x NB = 8 sums the chains' latency, not the
    // ports, bounded the tile (two sets: 1.04-1.05x at the 2B widths, M = 512-6440, q8 in groups
    // of 32; q4's groups of 64 1.01-1.03x).
    __m512i dot[MB][NB], odd[MB][NB];
    for (int i = 0; i < MB; ++i) {
      const __m512i start = _mm512_set1_epi32(xo[b * MB + i]);
      for (int v = 0; v < NB; ++v) dot[i][v] = start, odd[i][v] = _mm512_setzero_si512();
    }
    for (int j = 0; j < 8; j += 2) {
      __m512i w[NB];
      for (int v = 0; v < NB; ++v) w[v] = _mm512_loadu_si512(wb + v * pn.panel_stride + j * 64);
      step<MB, NB>(dot, w, xb, j);
      for (int v = 0; v < NB; ++v) w[v] = _mm512_loadu_si512(wb + v * pn.panel_stride + (j + 1) * 64);
      step<MB, NB>(odd, w, xb, j + 1);
    }
    for (int i = 0; i < MB; ++i)
      for (int v = 0; v < NB; ++v) dot[i][v] = _mm512_add_epi32(dot[i][v], odd[i][v]);
    for (int i = 0; i < MB; ++i) {
      const __m512 d = _mm512_set1_ps(xd[b * MB + i]);
      for (int v = 0; v < NB; ++v) {
        const __m512 f = _mm512_maskz_cvtepi32_ps(kAll, dot[i][v]);
        if constexpr (Grouped) gacc[i][v] = _mm512_fmadd_ps(f, d, gacc[i][v]);
        else acc[i][v] = _mm512_fmadd_ps(_mm512_mul_ps(f, d), _mm512_load_ps(s + v * 16), acc[i][v]);
      }
    }
    const bool group_end = ++in_group == per_group;
    // A group cut by the chunk's end is finished with the same scales by the next chunk.
    if (Grouped && (group_end || b + 1 == b1))
      for (int i = 0; i < MB; ++i)
        for (int v = 0; v < NB; ++v)
          acc[i][v] = _mm512_fmadd_ps(gacc[i][v], _mm512_load_ps(s + v * 16), acc[i][v]), gacc[i][v] = _mm512_setzero_ps();
    if (group_end) in_group = 0, s += kNB * 16;
    if (prefetch && b - b0 < pn.ahead_blocks)
      for (int v = 0; v < NB; ++v)
        for (int64_t l = 0; l < pn.ahead_block; l += 64)
          _mm_prefetch(reinterpret_cast<const char*>(pn.ahead + (b - b0) * pn.ahead_block + v * pn.ahead_panel + l), _MM_HINT_T0);
  }
  for (int i = 0; i < MB; ++i) {
    float* yr = y + (m0 + i) * ldy;
    for (int v = 0; v < NB; ++v) {
      const __mmask16 mk = pn.mask[v];
      const __m512 base = !first ? _mm512_maskz_loadu_ps(mk, yr + 16 * v)
                          : pn.bias ? _mm512_maskz_loadu_ps(mk, pn.bias + 16 * v)
                                    : _mm512_setzero_ps();
      if (first && pn.stream && mk == kAll) _mm512_stream_ps(yr + 16 * v, _mm512_add_ps(base, acc[i][v]));
      else _mm512_mask_storeu_ps(yr + 16 * v, mk, _mm512_add_ps(base, acc[i][v]));
    }
  }
}

// One tile of min(kMB, m1 − m) rows on pair pn.
template <bool Grouped>
QVL_TARGET_AVX512VNNI void tile_rows(const QActs& a, const int32_t* xoff, const Panels& pn, int64_t m, int64_t m1, int64_t b0,
                                     int64_t b1, bool first, bool prefetch, float* y, int64_t ldy) {
  switch (std::min<int64_t>(kMB, m1 - m) * 2 + (pn.mask[1] != 0)) {
    case 2: return tile<1, 1, Grouped>(a, xoff, pn, m, b0, b1, first, prefetch, y, ldy);
    case 3: return tile<1, 2, Grouped>(a, xoff, pn, m, b0, b1, first, prefetch, y, ldy);
    case 4: return tile<2, 1, Grouped>(a, xoff, pn, m, b0, b1, first, prefetch, y, ldy);
    case 5: return tile<2, 2, Grouped>(a, xoff, pn, m, b0, b1, first, prefetch, y, ldy);
    case 6: return tile<3, 1, Grouped>(a, xoff, pn, m, b0, b1, first, prefetch, y, ldy);
    case 7: return tile<3, 2, Grouped>(a, xoff, pn, m, b0, b1, first, prefetch, y, ldy);
    case 8: return tile<4, 1, Grouped>(a, xoff, pn, m, b0, b1, first, prefetch, y, ldy);
    case 9: return tile<4, 2, Grouped>(a, xoff, pn, m, b0, b1, first, prefetch, y, ldy);
    default: return;
  }
}

// Rows [m0, m1) over every pair's chunk [b0, b1): a row tile's activations stay in L1 while it
// goes through the pairs.
QVL_TARGET_AVX512VNNI void tiles(const QActs& a, const int32_t* xoff, const Panels* pn, int pairs, int64_t m0, int64_t m1,
                                 int64_t b0, int64_t b1, bool first, float* y, int64_t ldy) {
  const bool grouped = a.group > kQuantBlock;
  for (int64_t m = m0; m < m1; m += kMB)
    for (int g = 0; g < pairs; ++g) {
      if (grouped) tile_rows<true>(a, xoff, pn[g], m, m1, b0, b1, first, m == m0, y + g * kPanelN, ldy);
      else tile_rows<false>(a, xoff, pn[g], m, m1, b0, b1, first, m == m0, y + g * kPanelN, ldy);
    }
}

// Panel P's q4 zero points of group g as bytes 16 − z, 4 per lane (lane i = row i).
QVL_TARGET_AVX512VNNI inline __m512i q4_offsets(const ops::MatmulParams& p, int64_t P, int64_t g) {
  const __m128i zb = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q_panel_zeros(p.w, P) + g * (kQPanelRows / 2)));
  const __m128i m4 = _mm_set1_epi8(15);
  const __m128i z = _mm_unpacklo_epi8(_mm_and_si128(zb, m4), _mm_and_si128(_mm_srli_epi16(zb, 4), m4));  // row order
  const __m512i z4 = _mm512_mullo_epi32(_mm512_maskz_cvtepu8_epi32(kAll, z), _mm512_set1_epi32(0x01010101));
  return _mm512_sub_epi8(_mm512_set1_epi8(16), z4);
}

// Blocks [b0, b1) of nb q4 panels from P0 into stage ([block][kNB][8][64], the q8 shape): vector
// c's low nibbles become step c, its high nibbles step 4 + c, each plus 16 − z (1..31).
QVL_TARGET_AVX512VNNI void stage_q4(const ops::MatmulParams& p, int64_t P0, int nb, int64_t b0, int64_t b1, uint8_t* stage) {
  const int64_t per_group = p.w.group / kQuantBlock;
  const __m512i low4 = _mm512_set1_epi8(15);
  for (int v = 0; v < nb; ++v) {
    const uint8_t* src = q_panel_codes(p.w, P0 + v);
    __m512i off = q4_offsets(p, P0 + v, b0 / per_group);
    for (int64_t b = b0; b < b1; ++b) {
      if (b % per_group == 0) off = q4_offsets(p, P0 + v, b / per_group);
      uint8_t* dst = stage + ((b - b0) * kNB + v) * kBlockBytes;
      for (int c = 0; c < 4; ++c) {
        const __m512i raw = _mm512_loadu_si512(src + b * 256 + c * 64);
        _mm512_store_si512(dst + c * 64, _mm512_add_epi8(_mm512_and_si512(raw, low4), off));
        _mm512_store_si512(dst + (4 + c) * 64, _mm512_add_epi8(_mm512_and_si512(_mm512_srli_epi16(raw, 4), low4), off));
      }
    }
  }
}

// Panel pairs per task and blocks per chunk (see kPairs).
struct Blocking {
  int pairs = 1;
  int64_t chunk = kChunk;
};

// An output of at least this many bytes, written by one whole-K chunk, goes past the caches
// (non-temporal stores of whole lines, as matmul_bf16's driver writes its large outputs): it does
// not stay in them for the next op anyway, and the stores then skip reading each line of y first.
// The 2B vision tower's four GEMMs of a layer with q8 weights (benchMatmul, 2 Zen 5 threads, builds
// alternating in one process, 3 rounds): 1.03-1.04x at 1024 rows, 1.05-1.06x at 6440; in the model
// under 'fast' with `visionWeights: 'q8'` at 448x448 the matmuls 1.08-1.14 -> 1.06-1.10 s; at
// 1288x980 and in a 504-token q8 prefill no change beyond the noise.
constexpr int64_t kStreamBytes = int64_t{8} << 20;

// Rows [m0, m1) × the panel pairs from n0 (up to bl.pairs).
template <WeightFormat F>
QVL_TARGET_AVX512VNNI void run_panels(const ops::MatmulParams& p, const QActs& a, const int32_t* xoff, Blocking bl, int64_t n0,
                                      int64_t m0, int64_t m1) {
  const int64_t P0 = n0 / kQPanelRows, groups = a.groups, panels = q_panel_count(p.N) - P0;
  const int pairs = static_cast<int>(std::min<int64_t>(bl.pairs, (panels + kNB - 1) / kNB));
  const int64_t pair_scales = groups * kNB * 16;
  auto* scales = static_cast<float*>(thread_scratch<ScaleTag>(static_cast<size_t>(kPairs * pair_scales) * sizeof(float), "int8 GEMM scales"));
  uint8_t* stage = nullptr;
  if constexpr (F == WeightFormat::Q4)
    stage = static_cast<uint8_t*>(thread_scratch<StageTag>(static_cast<size_t>(bl.pairs * bl.chunk * kNB * kBlockBytes), "int8 GEMM q4 chunk"));
  Panels pn[kPairs];
  for (int g = 0; g < pairs; ++g) {
    Panels& q = pn[g];
    q.scales = scales + g * pair_scales;
    q.bias = p.bias ? p.bias + n0 + g * kPanelN : nullptr;
    for (int v = 0; v < kNB; ++v) {
      const int64_t P = P0 + g * kNB + v;
      q.mask[v] = static_cast<__mmask16>((1u << std::clamp<int64_t>(p.N - P * kQPanelRows, 0, 16)) - 1);
      for (int64_t gr = 0; gr < groups; ++gr) {
        const __m256i h = P - P0 < panels ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q_panel_scales(p.w, P) + gr * 16))
                                          : _mm256_setzero_si256();
        _mm512_store_ps(scales + g * pair_scales + (gr * kNB + v) * 16, _mm512_maskz_cvtph_ps(kAll, h));
      }
    }
    q.ahead_block = F == WeightFormat::Q4 ? kBlockBytes / 2 : kBlockBytes, q.ahead_panel = q.ahead_block * (p.w.ld / kQuantBlock);
    if constexpr (F == WeightFormat::Q4) {
      q.codes = stage + g * bl.chunk * kNB * kBlockBytes, q.block_stride = kNB * kBlockBytes, q.panel_stride = kBlockBytes;
    } else {
      q.block_stride = kBlockBytes, q.panel_stride = kQPanelRows * p.w.ld;
    }
  }
  float* y = p.y + n0;
  const bool stream = bl.chunk >= a.blocks && p.M * p.N * static_cast<int64_t>(sizeof(float)) >= kStreamBytes &&
                      reinterpret_cast<uintptr_t>(p.y) % 64 == 0 && p.ldy % 16 == 0;
  for (int g = 0; g < pairs; ++g) pn[g].stream = stream;
  for (int64_t b0 = 0; b0 < a.blocks; b0 += bl.chunk) {
    const int64_t b1 = std::min(b0 + bl.chunk, a.blocks);
    for (int g = 0; g < pairs; ++g) {
      const int64_t P = P0 + g * kNB;
      pn[g].ahead = q_panel_codes(p.w, P) + b1 * pn[g].ahead_block, pn[g].ahead_blocks = F == WeightFormat::Q4 ? std::min(bl.chunk, a.blocks - b1) : 0;
      if constexpr (F == WeightFormat::Q4) stage_q4(p, P, pn[g].mask[1] ? 2 : 1, b0, b1, stage + g * bl.chunk * kNB * kBlockBytes);
      else pn[g].codes = q_panel_codes(p.w, P) + b0 * kBlockBytes;
    }
    tiles(a, xoff, pn, pairs, m0, m1, b0, b1, b0 == 0, y, p.ldy);
  }
  if (stream) _mm_sfence();  // ordered before the pool's hand-back like any store
}

// Rows [m0, m0 + r) of a (m0 a multiple of kMB, r <= kMB: one register tile's rows, which occupy
// the same bytes in either layout) rewritten in place as interleave_tile_rows lays them out
// (flip 0), and −offset·Σ codes of each row and block into xoff, laid out as d.
QVL_TARGET_AVX512VNNI void interleave_tile(QActs& a, int64_t m0, int r, int32_t offset, int32_t* xoff) {
  const int64_t K = a.K, blocks = a.blocks;
  int32_t* xo = xoff + m0 * blocks;
  if (r != 4) {
    for (int64_t b = 0; b < blocks; ++b)
      for (int i = 0; i < r; ++i) {
        int32_t sum = 0;
        for (int64_t k = 0; k < kQuantBlock; ++k) sum += a.q[(m0 + i) * K + b * kQuantBlock + k];
        xo[b * r + i] = -offset * sum;
      }
    return interleave_tile_rows(a, m0, r, 0x00);
  }
  uint8_t* q = reinterpret_cast<uint8_t*>(a.q) + m0 * K;
  float* d = a.d + m0 * blocks;
  auto* tmp = static_cast<uint8_t*>(thread_scratch<TileTag>(static_cast<size_t>(4 * (K + 4 * blocks)), "int8 GEMM row tile"));
  auto* dtmp = reinterpret_cast<float*>(tmp + 4 * K);
  __builtin_memcpy(tmp, q, static_cast<size_t>(4 * K));
  __builtin_memcpy(dtmp, d, static_cast<size_t>(4 * blocks) * sizeof(float));
  for (int64_t b = 0; b < blocks; ++b)
    for (int i = 0; i < 4; ++i) d[b * 4 + i] = dtmp[i * blocks + b];
  // Output dword 4j + i (j < 4 in the first vector, 4..7 in the second) is dword j of row i:
  // rows 0, 1 in ab's halves, rows 2, 3 in cd's.
  alignas(64) static constexpr int32_t kLo[16] = {0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27};
  alignas(64) static constexpr int32_t kHi[16] = {4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7, 15, 23, 31};
  const __m512i lo = _mm512_load_si512(kLo), hi = _mm512_load_si512(kHi);
  const __m512i ones = _mm512_set1_epi8(1), neg_off = _mm512_set1_epi32(-offset);
  const __mmask8 all = static_cast<__mmask8>(0xff);
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* src = tmp + b * kQuantBlock;
    __m256i row[4];
    for (int i = 0; i < 4; ++i) row[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i * K));
    const __m512i ab = _mm512_maskz_inserti64x4(all, _mm512_maskz_inserti64x4(all, _mm512_setzero_si512(), row[0], 0), row[1], 1);
    const __m512i cd = _mm512_maskz_inserti64x4(all, _mm512_maskz_inserti64x4(all, _mm512_setzero_si512(), row[2], 0), row[3], 1);
    const __m512i q0 = _mm512_permutex2var_epi32(ab, lo, cd), q1 = _mm512_permutex2var_epi32(ab, hi, cd);
    _mm512_storeu_si512(q + b * 128, q0);
    _mm512_storeu_si512(q + b * 128 + 64, q1);
    // Lane 4j + i: row i's codes 4j..4j+3 and 4j+16..; then lanes i, i + 4, i + 8, i + 12 summed.
    __m512i s = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, q0), ones, q1);
    s = _mm512_add_epi32(s, _mm512_maskz_shuffle_i64x2(all, s, s, 0x4e));
    s = _mm512_add_epi32(s, _mm512_maskz_shuffle_i64x2(all, s, s, 0xb1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(xo + b * 4), _mm512_maskz_extracti32x4_epi32(static_cast<__mmask8>(0xf), _mm512_mullo_epi32(s, neg_off), 0));
  }
}

}  // namespace

void qgemm_avx512vnni(const ops::MatmulParams& p, QActs& a, ThreadPool& pool) {
  static_assert(kMB == kQGemmTileRows, "interleave_tile's fast path packs 4 rows");
  const int32_t offset = p.w.format == WeightFormat::Q8 ? 128 : 16;
  int32_t* xoff = a.xsum;
  Blocking bl;
  if (a.M >= kWholeKRows) {
    bl.chunk = qgemm_even_chunk(a.blocks, kMaxChunk);
  } else if (a.M * a.K > kActsInL2) {
    bl.pairs = kPairs, bl.chunk = kChunk / 2;
  }
  qgemm_schedule(
      p, pool, bl.pairs * kPanelN, [&](int64_t m0, int rows) { interleave_tile(a, m0, rows, offset, xoff); },
      [&](int64_t n0, int64_t m0, int64_t m1) {
        switch (p.w.format) {
          case WeightFormat::Q8: return run_panels<WeightFormat::Q8>(p, a, xoff, bl, n0, m0, m1);
          case WeightFormat::Q4: return run_panels<WeightFormat::Q4>(p, a, xoff, bl, n0, m0, m1);
          case WeightFormat::F32:
          case WeightFormat::F16:
          case WeightFormat::BF16:
          case WeightFormat::F8: return;  // the dispatcher sends only the formats the variant lists
        }
      });
}

}  // namespace qvl::cpu
