// Int8Dot matmul tiles with AVX512-VNNI for the panel layout (core/weight_quant.h): one 64-byte
// load holds 4 consecutive elements of a panel's 16 rows, so a broadcast of 4 activation codes and
// one vpdpbusd (weights unsigned, activations signed) advance 16 outputs by 4 k, and a 32-block
// costs one convert and one FMA per 16 outputs (the row kernels paid them per output and were
// bound by that f32 work, not by memory). Up to 4 activation rows share each loaded weight vector
// (batched decode, prefill tiles).
//
// Against the row-layout kernel this replaced (c5a7c5a), one Sapphire Rapids thread, K = 1536,
// both timed alternately in separate processes, 2 rounds: with the weights in L2 (N = 512) M = 1
// q8 86 GB/s against 52, q4 53 against 25, M = 2 2.2x, M = 4 q8 42 against 16, q4 20 against 8.4
// (there vpdpbusd runs at about one per cycle, the port's limit). Streaming from DRAM (the 2B
// decode shapes; the read floor is 18.6 GB/s) M = 1 0.97-1.19x (both 75-90% of the floor), M = 2
// 0.94-1.15x, M = 4 1.07-1.37x q8 and 1.5-1.65x q4.
#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/matmul_q.h"
#include "backends/cpu/matmul_q_gemm.h"
#include "backends/cpu/row_streams.h"
#include "core/cpu.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

namespace {

constexpr __mmask16 kAll = static_cast<__mmask16>(0xffff);

// Horizontal max / sum of 16 lanes by halving (no round trip through memory: a decode call
// quantizes its whole row on one thread, ahead of every weight read).
QVL_TARGET_AVX512VNNI inline float hmax16(__m512 v) {
  __m256 h = _mm256_max_ps(_mm512_maskz_extractf32x8_ps(0xff, v, 0), _mm512_maskz_extractf32x8_ps(0xff, v, 1));
  __m128 q = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  q = _mm_max_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_max_ss(q, _mm_movehdup_ps(q)));
}
QVL_TARGET_AVX512VNNI inline int32_t hsum16(__m512i v) {
  const __m256i h = _mm256_add_epi32(_mm512_maskz_extracti32x8_epi32(0xff, v, 0), _mm512_maskz_extracti32x8_epi32(0xff, v, 1));
  __m128i q = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0x4e));
  return _mm_cvtsi128_si32(_mm_add_epi32(q, _mm_shuffle_epi32(q, 0xb1)));
}

// Bytes identical to ops::quantize_act_block: amax exact (max is exact in any order), d = amax /
// 127 and 1 / d in f32 scalar arithmetic, codes by cvtps2dq (round half even) of one f32 product
// each.
QVL_TARGET_AVX512VNNI void quantize(const float* x, int64_t m, QActs& a) {
  int8_t* q = a.q + m * a.K;
  float* d = a.d + m * a.blocks;
  float* gs = a.gs + m * a.groups;
  const int64_t per_group = a.group / kQuantBlock;
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t g = 0; g < a.groups; ++g) {
    float s = 0.0f;
    for (int64_t b = g * per_group; b < (g + 1) * per_group; ++b) {
      const __m512 x0 = _mm512_loadu_ps(x + b * kQuantBlock), x1 = _mm512_loadu_ps(x + b * kQuantBlock + 16);
      const float amax = hmax16(_mm512_maskz_max_ps(kAll, _mm512_and_ps(x0, abs_mask), _mm512_and_ps(x1, abs_mask)));
      const float db = amax / 127.0f, inv = db != 0.0f ? 1.0f / db : 0.0f;
      const __m512 iv = _mm512_set1_ps(inv);
      const __m512i q0 = _mm512_maskz_cvtps_epi32(kAll, _mm512_mul_ps(x0, iv)), q1 = _mm512_maskz_cvtps_epi32(kAll, _mm512_mul_ps(x1, iv));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * kQuantBlock), _mm512_maskz_cvtepi32_epi8(kAll, q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * kQuantBlock + 16), _mm512_maskz_cvtepi32_epi8(kAll, q1));
      d[b] = db;
      s += db * static_cast<float>(hsum16(_mm512_add_epi32(q0, q1)));
    }
    gs[g] = s;
  }
}

// The 16 f16 scales of a panel's group as f32.
QVL_TARGET_AVX512VNNI inline __m512 scales16(const uint16_t* sw) {
  return _mm512_maskz_cvtph_ps(kAll, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sw)));
}

// The 16 zero points of a panel's group (8 bytes, a nibble per row, the low one for even rows) as
// f32: low and high nibbles interleaved back into row order.
QVL_TARGET_AVX512VNNI inline __m512 zeros16(const uint8_t* z) {
  uint64_t v;
  __builtin_memcpy(&v, z, 8);
  const __m128i b = _mm_cvtsi64_si128(static_cast<long long>(v)), m4 = _mm_set1_epi8(15);
  const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(b, m4), _mm_and_si128(_mm_srli_epi16(b, 4), m4));
  return _mm512_maskz_cvtepi32_ps(kAll, _mm512_maskz_cvtepu8_epi32(kAll, nib));
}

// 4 activation codes (one 4-k step) in every lane.
QVL_TARGET_AVX512VNNI inline __m512i codes4(const int8_t* x) {
  int32_t v;
  __builtin_memcpy(&v, x, 4);
  return _mm512_set1_epi32(v);
}

// The loops over activation rows, panels and 4-k steps unrolled whole: GCC left the 8 steps of a
// q8 block rolled, kept the dot chains in memory and picked the chain by a branch per step.
#define QVL_UNROLL _Pragma("GCC unroll 16")

// How far ahead in a panel's codes each loaded line prefetches, into L1 and into L2. Without them
// the weights in L2 read faster (q8 M = 1: 133 GB/s against 96) but from DRAM M = 4 lost a quarter
// (q8 11 GB/s against 15, q4 10 against 13); prefetching into L2 alone lost ~7% at q8 M = 4;
// distances of 0.5/4 and 2/16 KiB were within the noise of these (one Sapphire Rapids thread,
// 2 rounds, M = 1 and 4).
// Over a whole 2B decode step on two threads (the 113 matmuls, huge pages, variants interleaved in
// one process, 12 rounds), 4 KiB into L2 beat the 8 KiB chosen above: q4 M = 1 by 3-5% (4 runs),
// M = 2 by 6%, M = 4 by 1%; q8 M = 1 by 6% (2 runs), M = 2 by 2%, M = 4 by 6%. 2, 3 and 6 KiB were
// no better than 4 (q4 M = 1), and q8 M = 1 without the L2 prefetch matched 4 KiB.
// On AMD Zen 5 one activation row reads faster nearer (Near): 0.5 KiB into L1 and 2 KiB into
// L2 (2 threads, from DRAM, builds interleaved in one process, 9-11 rounds): q8 the LM head
// 1.02-1.27x, K = 8960 1.09-1.16x, N = 8960 1.0-1.05x, q4 1.01-1.12x. With 2 rows the LM head lost
// 7-13% and with 4 rows 8-16%, so they keep the longer lead; 0.25 KiB into L1 and 6 KiB into L2
// were slower than 0.5 and 2. As template constants: read from a variable the same distances
// gained only two thirds as much.
template <bool Near>
constexpr uintptr_t kL1Ahead = Near ? 512 : 1024;
template <bool Near>
constexpr uintptr_t kL2Ahead = Near ? 2048 : 4096;

// What the panel kernel reads, resolved once per tile call.
struct PanelArgs {
  const uint8_t* codes;    // panel 0's codes, scales, q4 zero points
  const uint16_t* scales;
  const uint8_t* zeros;
  int64_t code_stride, scale_stride, zero_stride;  // per panel (ld's blocks and groups, not K's)
  int64_t groups, per_group;                        // K's groups, blocks per group
  const int8_t* xq;        // the first activation row's codes, block scales, group sums
  const float* xd;
  const float* gs;
  int64_t xq_stride, xd_stride, gs_stride;  // per activation row
};

// Panels P, P + sp, ..., P + (PN - 1)·sp x MB activation rows: out[m][pn] = the 16 rows' sums
// without bias. Per block the integer dots run in int32 (two chains per row and panel: vpdpbusd's
// latency is 5 cycles), then one convert and one FMA by d_x; per group the zero-point term joins
// and one FMA by the 16 rows' scales. Each output's arithmetic is the same whatever MB, PN and sp
// are (a row decoding alone or batched gets the same bits, and any split of N too).
template <WeightFormat F, int MB, int PN, bool Near>
QVL_TARGET_AVX512VNNI inline void panel_dots(const PanelArgs& a, int64_t P, int64_t sp, __m512 (&out)[MB][PN]) {
  constexpr int64_t kBlockBytes = F == WeightFormat::Q8 ? 512 : 256;  // one 32-block of a panel
  const uint8_t* w[PN];
  const uint16_t* sw[PN];
  const uint8_t* z[PN];
  QVL_UNROLL
  for (int pn = 0; pn < PN; ++pn) {
    w[pn] = a.codes + (P + pn * sp) * a.code_stride, sw[pn] = a.scales + (P + pn * sp) * a.scale_stride;
    z[pn] = F == WeightFormat::Q4 ? a.zeros + (P + pn * sp) * a.zero_stride : nullptr;
  }
  const __m512i lo4 = _mm512_set1_epi8(0x0f), hi4 = _mm512_set1_epi8(static_cast<char>(0xf0));
  __m512 acc[MB][PN];
  QVL_UNROLL
  for (int m = 0; m < MB; ++m)
    QVL_UNROLL
    for (int pn = 0; pn < PN; ++pn) acc[m][pn] = _mm512_setzero_ps();
  int64_t b = 0;
  for (int64_t g = 0; g < a.groups; ++g) {
    // The group's sum starts at its zero-point term: − z · gs (q4), − 128 · gs (q8's bias).
    __m512 gacc[MB][PN];
    QVL_UNROLL
    for (int pn = 0; pn < PN; ++pn) {
      const __m512 zf = F == WeightFormat::Q4 ? zeros16(z[pn] + g * (kQPanelRows / 2)) : _mm512_set1_ps(128.0f);
      QVL_UNROLL
      for (int m = 0; m < MB; ++m) gacc[m][pn] = _mm512_mul_ps(zf, _mm512_set1_ps(-a.gs[m * a.gs_stride + g]));
    }
    for (const int64_t end = b + a.per_group; b < end; ++b) {
      __m512i d0[MB][PN], d1[MB][PN];
      QVL_UNROLL
      for (int m = 0; m < MB; ++m)
        QVL_UNROLL
        for (int pn = 0; pn < PN; ++pn) d0[m][pn] = d1[m][pn] = _mm512_setzero_si512();
      // Per 64-byte line the prefetches (kL1Ahead, kL2Ahead) in integer arithmetic: the addresses
      // may lie past the weight's end (a prefetch never faults).
      // Past its panel's end a stream's prefetch goes on in the panel that stream reads next: the
      // adjacent one when the PN panels come from PN streams (sp apart), PN - 1 panels further when
      // they lie side by side (sp = 1), not into the neighbour read alongside it (q8 M = 2 from
      // DRAM +3-4%, one thread, 3 rounds). Requesting a call's first lines up front did not pay
      // (q4 lost 0-13%).
      const uintptr_t off = static_cast<uintptr_t>(b * kBlockBytes), stride = static_cast<uintptr_t>(a.code_stride);
      constexpr uintptr_t l1 = kL1Ahead<Near>, l2 = kL2Ahead<Near>;
      const uintptr_t jump = sp == 1 ? (PN - 1) * stride : 0;  // to the stream's next panel
      const uintptr_t skip1 = off + l1 >= stride ? jump : 0, skip2 = off + l2 >= stride ? jump : 0;
      QVL_UNROLL
      for (int s = 0; s < kBlockBytes / 64; ++s) {
        __m512i wv[PN];
        QVL_UNROLL
        for (int pn = 0; pn < PN; ++pn) {
          const uintptr_t at = reinterpret_cast<uintptr_t>(w[pn] + b * kBlockBytes + 64 * s);
          _mm_prefetch(reinterpret_cast<const char*>(at + l1 + skip1), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(at + l2 + skip2), _MM_HINT_T1);
          wv[pn] = _mm512_loadu_si512(reinterpret_cast<const void*>(at));
        }
        QVL_UNROLL
        for (int m = 0; m < MB; ++m) {
          const int8_t* x = a.xq + m * a.xq_stride + b * kQuantBlock;
          if constexpr (F == WeightFormat::Q8) {
            // Step s: elements 4s..4s+3; even and odd steps in separate chains.
            const __m512i xv = codes4(x + 4 * s);
            QVL_UNROLL
            for (int pn = 0; pn < PN; ++pn) {
              if (s % 2) d1[m][pn] = _mm512_dpbusd_epi32(d1[m][pn], wv[pn], xv);
              else d0[m][pn] = _mm512_dpbusd_epi32(d0[m][pn], wv[pn], xv);
            }
          } else {
            // Low nibbles: elements 4s..4s+3; high nibbles: 16 × elements 16+4s.., a chain each.
            const __m512i xl = codes4(x + 4 * s), xh = codes4(x + 16 + 4 * s);
            QVL_UNROLL
            for (int pn = 0; pn < PN; ++pn) {
              d0[m][pn] = _mm512_dpbusd_epi32(d0[m][pn], _mm512_and_si512(wv[pn], lo4), xl);
              d1[m][pn] = _mm512_dpbusd_epi32(d1[m][pn], _mm512_and_si512(wv[pn], hi4), xh);
            }
          }
        }
      }
      QVL_UNROLL
      for (int m = 0; m < MB; ++m) {
        const __m512 dx = _mm512_set1_ps(a.xd[m * a.xd_stride + b]);
        QVL_UNROLL
        for (int pn = 0; pn < PN; ++pn) {
          // q4: the high chain is 16 × its dot exactly, so the arithmetic shift divides exactly.
          const __m512i dot = F == WeightFormat::Q8 ? _mm512_add_epi32(d0[m][pn], d1[m][pn])
                                                    : _mm512_add_epi32(d0[m][pn], _mm512_maskz_srai_epi32(kAll, d1[m][pn], 4));
          gacc[m][pn] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAll, dot), dx, gacc[m][pn]);
        }
      }
    }
    QVL_UNROLL
    for (int pn = 0; pn < PN; ++pn) {
      const __m512 sv = scales16(sw[pn] + g * kQPanelRows);
      QVL_UNROLL
      for (int m = 0; m < MB; ++m) acc[m][pn] = _mm512_fmadd_ps(gacc[m][pn], sv, acc[m][pn]);
    }
  }
  QVL_UNROLL
  for (int m = 0; m < MB; ++m)
    QVL_UNROLL
    for (int pn = 0; pn < PN; ++pn) out[m][pn] = acc[m][pn];
}

// Panels per call of panel_dots. Two share each activation broadcast: q8 at M <= 2 (M = 1 from
// DRAM, one Sapphire Rapids thread, 3 rounds: 15.4-16.6 GB/s against 14.3-15.4 one panel at a
// time); 4 rows x 2 panels of chains and group sums would not fit in 32 zmm. q4 at M = 1 too: on
// one thread it read the LM head from DRAM a little slower that way (14.1-14.8 GB/s against
// 14.8-15.5), but in the whole 2B decode step on two threads (real q4 checkpoint, two builds
// alternating, 9 pairs of 3 rounds) the matmuls took 0-5.5% less (median 1.5%) and never more
// than 0.3% longer. q4 at M = 2 stays one panel at a time (+3% from DRAM on one thread).
template <WeightFormat F, int MB>
constexpr int kPanelsAtOnce = (F == WeightFormat::Q8 && MB <= 2) || MB == 1 ? 2 : 1;

// Panels P, P + sp, ... (PN of them) of MB activation rows from m0: y = bias + the sums; outputs
// from n1 on are computed and dropped.
template <WeightFormat F, int MB, int PN, bool Near>
QVL_TARGET_AVX512VNNI inline void run_panels(const ops::MatmulParams& p, const PanelArgs& r, int64_t m0, int64_t P, int64_t n1,
                                             int64_t sp = 1) {
  __m512 v[MB][PN];
  panel_dots<F, MB, PN, Near>(r, P, sp, v);
  for (int pn = 0; pn < PN; ++pn) {
    const int64_t n = (P + pn * sp) * kQPanelRows, left = n1 - n;
    const __mmask16 mk = left >= kQPanelRows ? kAll : static_cast<__mmask16>((1u << left) - 1);
    const __m512 bias = p.bias ? _mm512_maskz_loadu_ps(mk, p.bias + n) : _mm512_setzero_ps();
    for (int m = 0; m < MB; ++m) _mm512_mask_storeu_ps(p.y + (m0 + m) * p.ldy + n, mk, _mm512_add_ps(v[m][pn], bias));
  }
}

// Panels [P, P1) of MB activation rows as PN streams, each a contiguous PN-th of the range
// (row_streams.h), then the panels they leave over one by one. PN side-by-side panels at a time
// made PN streams that restarted every call; split (with the driver's one run per nested call),
// 2B decode on two Zen 5 threads (in-process A/B, medians of 8-10 alternating pairs) ran q4
// 1.08-1.09x faster in two runs, q8 1.00-1.14x in four (the host's bandwidth swung meanwhile).
// Four streams at M = 1 were no faster for q8 than two.
template <WeightFormat F, int MB, bool Near>
QVL_TARGET_AVX512VNNI void run_panel_range(const ops::MatmulParams& p, const PanelArgs& r, int64_t m0, int64_t P,
                                           int64_t P1, int64_t n1) {
  constexpr int PN = kPanelsAtOnce<F, MB>;
  row_streams<PN>(P, P1, [&](int64_t n, int64_t part) { run_panels<F, MB, PN, Near>(p, r, m0, n, n1, part); },
                  [&](int64_t n) { run_panels<F, MB, 1, Near>(p, r, m0, n, n1); });
}

// Outputs [n0, n1) of MB activation rows; n0 starts a panel.
template <WeightFormat F, int MB>
QVL_TARGET_AVX512VNNI void tile_mb(const ops::MatmulParams& p, const QActs& a, int64_t m0, int64_t n0, int64_t n1) {
  PanelArgs r;
  r.codes = q_panel_codes(p.w, 0), r.scales = q_panel_scales(p.w, 0), r.zeros = F == WeightFormat::Q4 ? q_panel_zeros(p.w, 0) : nullptr;
  QuantRowBytes pb;  // ld and group were checked with the weight (ops::check_matmul)
  quant_panel_bytes(F, p.w.ld, p.w.group, &pb);
  r.code_stride = pb.codes, r.scale_stride = pb.scales / 2, r.zero_stride = pb.zeros;
  r.groups = a.groups, r.per_group = a.group / kQuantBlock;
  r.xq = a.q + m0 * a.K, r.xd = a.d + m0 * a.blocks, r.gs = a.gs + m0 * a.groups;
  r.xq_stride = a.K, r.xd_stride = a.blocks, r.gs_stride = a.groups;
  const int64_t P = n0 / kQPanelRows, P1 = q_panel_count(n1);
  if constexpr (MB == 1) {
    static const bool near = cpu_features().amd;
    if (near) return run_panel_range<F, MB, true>(p, r, m0, P, P1, n1);
  }
  run_panel_range<F, MB, false>(p, r, m0, P, P1, n1);
}

template <WeightFormat F>
QVL_TARGET_AVX512VNNI void tile_f(const ops::MatmulParams& p, const QActs& a, int64_t m0, int rows, int64_t n0, int64_t n1) {
  switch (rows) {
    case 1: return tile_mb<F, 1>(p, a, m0, n0, n1);
    case 2: return tile_mb<F, 2>(p, a, m0, n0, n1);
    case 3: return tile_mb<F, 3>(p, a, m0, n0, n1);
    default: return tile_mb<F, 4>(p, a, m0, n0, n1);
  }
}

QVL_TARGET_AVX512VNNI void tile(const ops::MatmulParams& p, const QActs& a, int64_t m0, int rows, int64_t n0, int64_t n1) {
  switch (p.w.format) {
    case WeightFormat::Q8: return tile_f<WeightFormat::Q8>(p, a, m0, rows, n0, n1);
    case WeightFormat::Q4: return tile_f<WeightFormat::Q4>(p, a, m0, rows, n0, n1);
    case WeightFormat::F32:
    case WeightFormat::F16:
    case WeightFormat::BF16:
    case WeightFormat::F8: return;  // the dispatcher sends only the formats the variant lists
  }
}

const QKernels kKernels = {quantize, tile, qgemm_avx512vnni};

}  // namespace

void matmul_q_avx512vnni(const ops::MatmulParams& p, const ExecContext& ctx) { run_qmatmul(p, ctx, kKernels); }

}  // namespace qvl::cpu
