// The Int8Dot GEMM on ymm registers (M >= kQGemmMinRows), compiled twice like matmul_q_ymm.h,
// whose block kernels it runs: include it after that file, with QVL_Q_TARGET and QVL_Q_VNNI still
// defined. The panels are already the layout the block kernels read, so no weight is repacked: a
// task takes kTaskPanels panels and a part of the rows, and sweeps the rows' tiles of kMB over
// one chunk of kChunk blocks of its panels at a time (the chunk, 16 KiB of q8, stays in L1 while
// every row tile reads it), one 8-row half at a time (4 rows × 1 half: 4 int32 dots, 4 f32 sums
// and the operands fit the 16 ymm registers). The activation codes are interleaved per row tile
// (interleave_tile_rows, kept signed), so a tile's broadcasts read one sequential stream. y starts
// as the bias and each chunk adds its sums, the zero-point term at each group's first block: the
// f32 order differs from the row tiles' (only rounding), and a row's bits depend on neither the
// tile it falls in nor the thread count.
// (No includes: the including file also includes backends/cpu/matmul_q_gemm.h.)
#ifndef QVL_Q_TARGET
#error "include matmul_q_ymm.h with QVL_Q_TARGET and QVL_Q_VNNI defined before matmul_q_gemm_ymm.h"
#endif

namespace ymm_gemm {

constexpr int64_t kTaskPanels = 2;
constexpr int64_t kChunk = 16;
constexpr int kMB = kQGemmTileRows;

struct ZeroTag {};

// q8 with VNNI: the +128 of the stored bytes as each block dot's starting sum, −128·Σ codes of
// the activation block (exact int32), instead of an f32 zero-point step per group: that step and
// its broadcast cost ~10% of a block's work at group 32, the starting sum nothing.
constexpr bool bias_starts(WeightFormat f) { return QVL_Q_VNNI && f == WeightFormat::Q8; }
constexpr bool zero_steps(WeightFormat f) { return has_zero_term(f) && !bias_starts(f); }

// c[m·blocks + b·rows + i] = −128·Σ codes of block b of row m + i, for the row tile at m as the
// codes are before interleave_tile_rows (stored in the order it gives the block scales).
QVL_Q_TARGET void block_bias_starts(const QActs& a, int64_t m, int rows, int32_t* c) {
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  for (int i = 0; i < rows; ++i) {
    for (int64_t b = 0; b < a.blocks; ++b) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + (m + i) * a.K + b * kQuantBlock));
      c[m * a.blocks + b * rows + i] = -128 * hsum8i(_mm256_madd_epi16(_mm256_maddubs_epi16(ones8, v), ones16));
    }
  }
}

// Outputs of half h of panel P that exist (≤ 0: none).
inline int64_t half_lanes(const ops::MatmulParams& p, int64_t P, int h) {
  return std::min<int64_t>(8, p.N - P * kQPanelRows - 8 * h);
}

// y rows [m, m + MB) × half h of panel P += blocks [b0, b1); zw: the half's s·z per group.
template <WeightFormat F, int MB>
QVL_Q_TARGET void chunk(const ops::MatmulParams& p, const QActs& a, const int32_t* c, int64_t P, int h, const __m256* zw, int64_t m,
                        int64_t b0, int64_t b1) {
  const ActRows<MB, true> r(a, m, c);
  const uint8_t* codes = q_panel_codes(p.w, P);
  const uint16_t* sc = q_panel_scales(p.w, P);
  const int64_t per_group = a.group / kQuantBlock;
  __m256 acc[MB];
  for (int i = 0; i < MB; ++i) acc[i] = _mm256_setzero_ps();
  // One division per chunk (one per block cost more than the block's dots at group 32).
  for (int64_t g = b0 / per_group, b = b0; b < b1; ++g) {
    const __m256 s = half_scales(sc, g, h);
    if constexpr (zero_steps(F)) {
      if (b == g * per_group) zero_step(r, zw[g], g, acc);
    }
    for (const int64_t end = std::min(b1, (g + 1) * per_group); b < end; ++b) half_block<F, MB, true, bias_starts(F)>(r, codes, s, h, b, acc);
  }
  const int64_t lanes = half_lanes(p, P, h);
  for (int i = 0; i < MB; ++i) {
    float* y = p.y + (m + i) * p.ldy + P * kQPanelRows + 8 * h;
    store_part(y, _mm256_add_ps(load_part(y, lanes), acc[i]), lanes);
  }
}

// Rows [m0, m1) × the panels from the one at output n0.
template <WeightFormat F>
QVL_Q_TARGET void run_task(const ops::MatmulParams& p, const QActs& a, const int32_t* c, int64_t n0, int64_t m0, int64_t m1) {
  const int64_t P0 = n0 / kQPanelRows, panels = std::min(kTaskPanels, q_panel_count(p.N) - P0);
  // The zero-point weights once per task, not per row tile (q4's take a nibble unpack each).
  __m256* zw = nullptr;
  if constexpr (zero_steps(F)) {
    zw = static_cast<__m256*>(thread_scratch<ZeroTag>(static_cast<size_t>(2 * panels * a.groups) * sizeof(__m256), "int8 GEMM zero points"));
    for (int64_t lp = 0; lp < panels; ++lp) {
      const uint16_t* sc = q_panel_scales(p.w, P0 + lp);
      const uint8_t* zs = F == WeightFormat::Q4 ? q_panel_zeros(p.w, P0 + lp) : nullptr;
      for (int h = 0; h < 2; ++h)
        for (int64_t g = 0; g < a.groups; ++g) zw[(2 * lp + h) * a.groups + g] = zero_weights<F>(half_scales(sc, g, h), zs, g, h);
    }
  }
  for (int64_t m = m0; m < m1; ++m) {
    for (int64_t lp = 0; lp < panels; ++lp) {
      for (int h = 0; h < 2; ++h) {
        const int64_t lanes = half_lanes(p, P0 + lp, h), n = (P0 + lp) * kQPanelRows + 8 * h;
        if (lanes > 0) store_part(p.y + m * p.ldy + n, p.bias ? load_part(p.bias + n, lanes) : _mm256_setzero_ps(), lanes);
      }
    }
  }
  for (int64_t b0 = 0; b0 < a.blocks; b0 += kChunk) {
    const int64_t b1 = std::min(b0 + kChunk, a.blocks);
    for (int64_t m = m0; m < m1; m += kMB) {
      const int64_t rows = std::min<int64_t>(kMB, m1 - m);
      for (int64_t lp = 0; lp < panels; ++lp) {
        for (int h = 0; h < 2; ++h) {
          if (half_lanes(p, P0 + lp, h) <= 0) continue;
          const __m256* z = zw ? zw + (2 * lp + h) * a.groups : nullptr;
          if (rows == 4) chunk<F, 4>(p, a, c, P0 + lp, h, z, m, b0, b1);
          else if (rows == 3) chunk<F, 3>(p, a, c, P0 + lp, h, z, m, b0, b1);
          else if (rows == 2) chunk<F, 2>(p, a, c, P0 + lp, h, z, m, b0, b1);
          else chunk<F, 1>(p, a, c, P0 + lp, h, z, m, b0, b1);
        }
      }
    }
  }
}

}  // namespace ymm_gemm

// y = x·Wᵀ (+ bias) for M >= kQGemmMinRows; rewrites a (run_qmatmul drops it).
QVL_Q_TARGET void gemm(const ops::MatmulParams& p, QActs& a, ThreadPool& pool) {
  static_assert(ymm_gemm::kMB == 4, "run_task dispatches tiles of up to 4 rows");
  std::vector<int32_t> starts(ymm_gemm::bias_starts(p.w.format) ? static_cast<size_t>(a.M * a.blocks) : 0);
  int32_t* c = starts.empty() ? nullptr : starts.data();
  qgemm_schedule(
      p, pool, ymm_gemm::kTaskPanels * kQPanelRows,
      [&](int64_t m0, int rows) {
        if (c) ymm_gemm::block_bias_starts(a, m0, rows, c);
        interleave_tile_rows(a, m0, rows, 0x00);
      },
      [&](int64_t n0, int64_t m0, int64_t m1) {
        switch (p.w.format) {
          case WeightFormat::Q8: return ymm_gemm::run_task<WeightFormat::Q8>(p, a, c, n0, m0, m1);
          case WeightFormat::Q4: return ymm_gemm::run_task<WeightFormat::Q4>(p, a, c, n0, m0, m1);
          case WeightFormat::F32:
          case WeightFormat::F16:
          case WeightFormat::BF16:
          case WeightFormat::F8: return;  // the dispatcher sends only the formats the variant lists
        }
      });
}
