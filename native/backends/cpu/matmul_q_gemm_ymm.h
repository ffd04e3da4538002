// The Int8Dot GEMM (the scheme is in matmul_q_gemm.h) on ymm registers, compiled twice like
// matmul_q_ymm.h, whose block_codes it reads the weights with: include it after that file, with
// QVL_Q_TARGET and QVL_Q_VNNI still defined. One ymm holds 4 consecutive k of 8 outputs; a task
// repacks a panel of kPanelN outputs over all of K into its thread's scratch, then sweeps the
// activation tiles (kQGemmTileRows rows) over it one 8-output vector and kChunk blocks at a time.
//
// The two ISAs differ in the operands' signs, since vpmaddubsw saturates its int16 pair sums:
//  - AVX-VNNI: as the AVX-512 GEMM: weights signed (q8 the stored byte − 128, q4 code − zero
//    point), activation codes unsigned (+128), −128·Σw per (output, block) stored with the panel
//    and loaded as the block's starting sum.
//  - AVX2: activation codes signed, as quantized. q4 weights stay raw codes (0..15): a pair sum is
//    at most 2·15·128, so a block's 8 steps add up in int16 (≤ 30720) before one vpmaddwd, and
//    the zero point is the reference's f32 term Σ_g s·z·gs (subtracted from y at the start). q8
//    weights are made signed and multiplied as |w|·sign(x, w) (pair sums ≤ 2·128·127: activation
//    codes never reach −128), each step widened by vpmaddwd at once; no zero-point term.
// Either way the integer block dots are exact and only f32 rounding differs from the reference.
// (No includes: the including file also includes <algorithm> and backends/cpu/matmul_q_gemm.h.)
#ifndef QVL_Q_TARGET
#error "include matmul_q_ymm.h with QVL_Q_TARGET and QVL_Q_VNNI defined before matmul_q_gemm_ymm.h"
#endif

namespace ymm_gemm {

constexpr int kNV = 4;                         // 8-output vectors per panel
constexpr int64_t kPanelN = 8 * kNV;           // outputs per panel
constexpr int kMB = kQGemmTileRows;            // activation rows per register tile
constexpr int64_t kChunk = 16;                 // 32-blocks per L1 chunk (16 KiB of panel)
constexpr int64_t kVecBytes = 8 * 32 + (QVL_Q_VNNI ? 32 : 0);  // a block of one vector (+ VNNI: its corrections)

struct PanelTag {};

// z[r] = 8 dwords of row r (r < 8) -> z[c] = dword c of every row, row r in lane r.
QVL_Q_TARGET inline void transpose_8x8(__m256i z[8]) {
  __m256i t[8], u[8];
  for (int r = 0; r < 8; r += 2) {
    t[r] = _mm256_unpacklo_epi32(z[r], z[r + 1]);      // dwords 0, 1 | 4, 5 of rows r, r + 1
    t[r + 1] = _mm256_unpackhi_epi32(z[r], z[r + 1]);  // dwords 2, 3 | 6, 7
  }
  for (int r = 0; r < 8; r += 4) {
    u[r] = _mm256_unpacklo_epi64(t[r], t[r + 2]);  // dword 0 | 4 of rows r..r + 3
    u[r + 1] = _mm256_unpackhi_epi64(t[r], t[r + 2]);
    u[r + 2] = _mm256_unpacklo_epi64(t[r + 1], t[r + 3]);
    u[r + 3] = _mm256_unpackhi_epi64(t[r + 1], t[r + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    z[c] = _mm256_permute2x128_si256(u[c], u[c + 4], 0x20);
    z[c + 4] = _mm256_permute2x128_si256(u[c], u[c + 4], 0x31);
  }
}

// Outputs [n0, n0 + kPanelN) of p.w (rows past N are zeros) into `panel` (per vector, blocks ×
// kVecBytes: 8 × 32 bytes, lane i = output i, then with VNNI the 8 int32 corrections), `scales`
// (per vector and group the 8 f32 scales) and, q4 without VNNI, `zws` (the same for s · z).
template <WeightFormat F>
QVL_Q_TARGET void pack_panel(const ops::MatmulParams& p, int64_t blocks, int64_t n0, uint8_t* panel, float* scales, float* zws) {
  const int64_t groups = p.K / p.w.group, per_group = p.w.group / kQuantBlock;
  const int64_t paired = p.w.ld / kQuantBlock / 2 * 2;
  const __m256i low4 = _mm256_set1_epi8(15), c128 = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int v = 0; v < kNV; ++v) {
    const PanelRows<8> pr = panel_rows<F, 8>(p, n0 + 8 * v);
    for (int64_t g = 0; g < groups; ++g) {
      float* s = scales + (v * groups + g) * 8;
      for (int r = 0; r < 8; ++r) s[r] = pr.scales[r] ? _cvtsh_ss(pr.scales[r][g]) : 0.0f;
      if (F == WeightFormat::Q4 && !QVL_Q_VNNI) {
        for (int r = 0; r < 8; ++r) zws[(v * groups + g) * 8 + r] = pr.zeros[r] ? s[r] * static_cast<float>(q4_zero(pr.zeros[r], g)) : 0.0f;
      }
    }
    uint8_t* dst = panel + v * blocks * kVecBytes;
    __m256i zeros = _mm256_setzero_si256();  // VNNI q4: the group's zero point in every byte of lane r
    for (int64_t b = 0, in_group = 0; b < blocks; ++b, dst += kVecBytes) {
      __m256i z[8];
      for (int r = 0; r < 8; ++r) z[r] = pr.codes[r] ? block_codes<F>(pr.codes[r], b, paired, low4) : _mm256_setzero_si256();
      transpose_8x8(z);
      if constexpr (F == WeightFormat::Q8) {
        for (int j = 0; j < 8; ++j) z[j] = _mm256_xor_si256(z[j], c128);
      } else if (QVL_Q_VNNI) {
        if (in_group == 0) {
          alignas(32) int32_t zs[8];
          for (int r = 0; r < 8; ++r) zs[r] = pr.zeros[r] ? q4_zero(pr.zeros[r], b / per_group) * 0x01010101 : 0;
          zeros = _mm256_load_si256(reinterpret_cast<const __m256i*>(zs));
        }
        for (int j = 0; j < 8; ++j) z[j] = _mm256_sub_epi8(z[j], zeros);
      }
      if (++in_group == per_group) in_group = 0;
      for (int j = 0; j < 8; ++j) _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 32 * j), z[j]);
#if QVL_Q_VNNI
      __m256i sum = _mm256_setzero_si256();
      for (int j = 0; j < 8; ++j) sum = _mm256_dpbusd_avx_epi32(sum, c128, z[j]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 256), _mm256_sub_epi32(_mm256_setzero_si256(), sum));
#endif
    }
  }
}

// Holds v in a register at this point. Without it GCC regroups a block's chain of integer adds
// (associative, unlike vpdpbusd) into a tree whose 32 live terms spill to the stack.
QVL_Q_TARGET inline void pin(__m256i& v) { __asm__("" : "+x"(v)); }

// The 8 int32 dots of one block of vector pb (kVecBytes) with MB interleaved activation rows.
template <WeightFormat F, int MB>
QVL_Q_TARGET inline void block_dots(const uint8_t* pb, const uint8_t* xb, __m256i dot[MB]) {
#if QVL_Q_VNNI
  for (int i = 0; i < MB; ++i) dot[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb + 256));
  for (int j = 0; j < 8; ++j) {
    const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb + 32 * j));
    for (int i = 0; i < MB; ++i) {
      int32_t x4;
      __builtin_memcpy(&x4, xb + (j * MB + i) * 4, 4);
      dot[i] = _mm256_dpbusd_avx_epi32(dot[i], _mm256_set1_epi32(x4), w);
    }
  }
#else
  const __m256i ones16 = _mm256_set1_epi16(1);
  if constexpr (F == WeightFormat::Q8) {
    for (int i = 0; i < MB; ++i) dot[i] = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb + 32 * j));
      const __m256i aw = _mm256_abs_epi8(w);
      for (int i = 0; i < MB; ++i) {
        int32_t x4;
        __builtin_memcpy(&x4, xb + (j * MB + i) * 4, 4);
        const __m256i xs = _mm256_sign_epi8(_mm256_set1_epi32(x4), w);
        dot[i] = _mm256_add_epi32(dot[i], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, xs), ones16));
        pin(dot[i]);
      }
    }
  } else {
    __m256i pairs[MB];
    for (int i = 0; i < MB; ++i) pairs[i] = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb + 32 * j));
      for (int i = 0; i < MB; ++i) {
        int32_t x4;
        __builtin_memcpy(&x4, xb + (j * MB + i) * 4, 4);
        pairs[i] = _mm256_add_epi16(pairs[i], _mm256_maddubs_epi16(w, _mm256_set1_epi32(x4)));
        pin(pairs[i]);
      }
    }
    for (int i = 0; i < MB; ++i) dot[i] = _mm256_madd_epi16(pairs[i], ones16);
  }
#endif
}

// y[m0 + i, 8v + lane] += Σ over blocks [b0, b1) for MB rows of one panel vector (mask: its valid lanes).
template <WeightFormat F, int MB>
QVL_Q_TARGET void tile(const QActs& a, const uint8_t* panel_v, const float* scales_v, int64_t m0, int64_t b0, int64_t b1,
                       float* y, int64_t ldy, __m256i mask) {
  const int64_t per_group = a.group / kQuantBlock;
  const uint8_t* xq = reinterpret_cast<const uint8_t*>(a.q) + m0 * a.K;  // as interleave_tile_rows left it
  const float* xd = a.d + m0 * a.blocks;
  __m256 acc[MB];
  for (int i = 0; i < MB; ++i) acc[i] = _mm256_setzero_ps();
  const float* s = scales_v + (b0 / per_group) * 8;
  for (int64_t b = b0, in_group = b0 % per_group; b < b1; ++b) {
    __m256i dot[MB];
    block_dots<F, MB>(panel_v + b * kVecBytes, xq + b * 32 * MB, dot);
    const __m256 sv = _mm256_load_ps(s);
    for (int i = 0; i < MB; ++i)
      acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dot[i]), _mm256_set1_ps(xd[b * MB + i])), sv, acc[i]);
    if (++in_group == per_group) in_group = 0, s += 8;
  }
  for (int i = 0; i < MB; ++i) {
    float* yr = y + (m0 + i) * ldy;
    _mm256_maskstore_ps(yr, mask, _mm256_add_ps(_mm256_maskload_ps(yr, mask), acc[i]));
  }
}

template <WeightFormat F>
QVL_Q_TARGET void tiles(const QActs& a, const uint8_t* panel_v, const float* scales_v, int64_t m, int64_t b0, int64_t b1,
                        float* y, int64_t ldy, __m256i mask, int rows) {
  switch (rows) {
    case 1: return tile<F, 1>(a, panel_v, scales_v, m, b0, b1, y, ldy, mask);
    case 2: return tile<F, 2>(a, panel_v, scales_v, m, b0, b1, y, ldy, mask);
    case 3: return tile<F, 3>(a, panel_v, scales_v, m, b0, b1, y, ldy, mask);
    default: return tile<F, kMB>(a, panel_v, scales_v, m, b0, b1, y, ldy, mask);
  }
}

// Rows [m0, m1) × the panel at n0: repack, y = bias (− the q4 zero-point term without VNNI), then
// the chunks' sums.
template <WeightFormat F>
QVL_Q_TARGET void run_panel(const ops::MatmulParams& p, const QActs& a, int64_t n0, int64_t m0, int64_t m1) {
  const int64_t groups = a.groups, blocks = a.blocks;
  const size_t panel_bytes = static_cast<size_t>(kNV * blocks * kVecBytes), scale_bytes = static_cast<size_t>(kNV * groups * 32);
  auto* panel = static_cast<uint8_t*>(thread_scratch<PanelTag>(panel_bytes + 2 * scale_bytes, "int8 GEMM weight panel"));
  auto* scales = reinterpret_cast<float*>(panel + panel_bytes);
  float* zws = scales + kNV * groups * 8;
  pack_panel<F>(p, blocks, n0, panel, scales, zws);
  const int64_t valid = std::min(kPanelN, p.N - n0);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i mask[kNV];
  for (int v = 0; v < kNV; ++v) mask[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(valid - 8 * v)), lane);
  float* y = p.y + n0;
  for (int64_t m = m0; m < m1; ++m) {
    float* yr = y + m * p.ldy;
    for (int64_t n = 0; n < valid; ++n) yr[n] = p.bias ? p.bias[n0 + n] : 0.0f;
    if (F == WeightFormat::Q4 && !QVL_Q_VNNI) {
      const float* gs = a.gs + m * groups;
      for (int v = 0; v < kNV; ++v) {
        __m256 t = _mm256_setzero_ps();
        for (int64_t g = 0; g < groups; ++g) t = _mm256_fmadd_ps(_mm256_load_ps(zws + (v * groups + g) * 8), _mm256_set1_ps(gs[g]), t);
        _mm256_maskstore_ps(yr + 8 * v, mask[v], _mm256_sub_ps(_mm256_maskload_ps(yr + 8 * v, mask[v]), t));
      }
    }
  }
  const int nv = static_cast<int>((valid + 7) / 8);
  for (int64_t b0 = 0; b0 < blocks; b0 += kChunk) {
    const int64_t b1 = std::min(b0 + kChunk, blocks);
    for (int64_t m = m0; m < m1; m += kMB) {
      const int rows = static_cast<int>(std::min<int64_t>(kMB, m1 - m));
      for (int v = 0; v < nv; ++v)
        tiles<F>(a, panel + v * blocks * kVecBytes, scales + v * groups * 8, m, b0, b1, y + 8 * v, p.ldy, mask[v], rows);
    }
  }
}

}  // namespace ymm_gemm

// y = x·Wᵀ (+ bias) for M >= kQGemmMinRows; rewrites a (run_qmatmul drops it).
QVL_Q_TARGET void gemm(const ops::MatmulParams& p, QActs& a, ThreadPool& pool) {
  qgemm_schedule(
      p, pool, ymm_gemm::kPanelN,
      [&](int64_t m0, int rows) { interleave_tile_rows(a, m0, rows, QVL_Q_VNNI ? 0x80 : 0x00); },
      [&](int64_t n0, int64_t m0, int64_t m1) {
        switch (p.w.format) {
          case WeightFormat::Q8: return ymm_gemm::run_panel<WeightFormat::Q8>(p, a, n0, m0, m1);
          case WeightFormat::Q4: return ymm_gemm::run_panel<WeightFormat::Q4>(p, a, n0, m0, m1);
          case WeightFormat::F32:
          case WeightFormat::F16:
          case WeightFormat::BF16:
          case WeightFormat::F8: return;  // the dispatcher sends only the formats the variant lists
        }
      });
}
