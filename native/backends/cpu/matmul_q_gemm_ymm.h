// The Int8Dot GEMM on ymm registers (M >= kQGemmMinRows), compiled twice like matmul_q_ymm.h,
// whose block kernels it runs: include it after that file, with QVL_Q_TARGET and QVL_Q_VNNI still
// defined. The panels are already the layout the block kernels read, so nothing is repacked: a
// task takes kTaskPanels panels and a part of the rows, and sweeps the rows' tiles of kMB over
// one chunk of kChunk blocks of its panels at a time (the chunk, 16 KiB of q8, stays in L1 while
// every row tile reads it; a tile's activations are its rows' 512-byte runs of the chunk). y
// starts as bias − the zero-point terms and each chunk adds its sums: so the f32 order differs
// from the row tiles' (only rounding), and a row's bits depend on neither the tile it falls in
// nor the thread count.
// (No includes: the including file also includes backends/cpu/matmul_q_gemm.h.)
#ifndef QVL_Q_TARGET
#error "include matmul_q_ymm.h with QVL_Q_TARGET and QVL_Q_VNNI defined before matmul_q_gemm_ymm.h"
#endif

namespace ymm_gemm {

constexpr int64_t kTaskPanels = 2;
constexpr int64_t kChunk = 16;
constexpr int kMB = kQGemmTileRows;

struct ZeroTag {};

// Outputs of half h of panel P that exist (≤ 0: none).
inline int64_t half_lanes(const ops::MatmulParams& p, int64_t P, int h) {
  return std::min<int64_t>(8, p.N - P * kQPanelRows - 8 * h);
}

// y rows [m0, m0 + MB) × the task's outputs = bias − the zero-point terms; zw: s·z per panel
// of the task, half and group.
template <WeightFormat F, int MB>
QVL_Q_TARGET void init_rows(const ops::MatmulParams& p, const QActs& a, const __m256* zw, int64_t P0, int64_t panels, int64_t m0) {
  for (int64_t lp = 0; lp < panels; ++lp) {
    for (int h = 0; h < 2; ++h) {
      const int64_t lanes = half_lanes(p, P0 + lp, h), n = (P0 + lp) * kQPanelRows + 8 * h;
      if (lanes <= 0) continue;
      __m256 zt[MB];
      for (int i = 0; i < MB; ++i) zt[i] = _mm256_setzero_ps();
      if constexpr (has_zero_term(F)) {
        const __m256* w = zw + (2 * lp + h) * a.groups;
        for (int64_t g = 0; g < a.groups; ++g)
          for (int i = 0; i < MB; ++i) zt[i] = _mm256_fmadd_ps(w[g], _mm256_set1_ps(a.gs[(m0 + i) * a.groups + g]), zt[i]);
      }
      const __m256 bias = p.bias ? load_part(p.bias + n, lanes) : _mm256_setzero_ps();
      for (int i = 0; i < MB; ++i) store_part(p.y + (m0 + i) * p.ldy + n, _mm256_sub_ps(bias, zt[i]), lanes);
    }
  }
}

// y rows [m0, m0 + MB) × half h of panel P += the sums of blocks [b0, b1).
template <WeightFormat F, int MB>
QVL_Q_TARGET void chunk(const ops::MatmulParams& p, const QActs& a, int64_t P, int h, int64_t m0, int64_t b0, int64_t b1) {
  const uint8_t* codes = q_panel_codes(p.w, P);
  const uint16_t* sc = q_panel_scales(p.w, P);
  const int64_t per_group = a.group / kQuantBlock;
  __m256 acc[MB];
  for (int i = 0; i < MB; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t b = b0; b < b1;) {
    const int64_t g = b / per_group, end = std::min(b1, (g + 1) * per_group);
    const __m256 s = half_scales(sc, g, h);
    for (; b < end; ++b) half_block<F, MB>(a, codes, s, h, m0, b, acc);
  }
  const int64_t lanes = half_lanes(p, P, h);
  for (int i = 0; i < MB; ++i) {
    float* y = p.y + (m0 + i) * p.ldy + P * kQPanelRows + 8 * h;
    store_part(y, _mm256_add_ps(load_part(y, lanes), acc[i]), lanes);
  }
}

// Rows [m0, m1) × the panels from the one at output n0.
template <WeightFormat F>
QVL_Q_TARGET void run_task(const ops::MatmulParams& p, const QActs& a, int64_t n0, int64_t m0, int64_t m1) {
  const int64_t P0 = n0 / kQPanelRows, panels = std::min(kTaskPanels, q_panel_count(p.N) - P0);
  __m256* zw = nullptr;
  if constexpr (has_zero_term(F)) {
    zw = static_cast<__m256*>(thread_scratch<ZeroTag>(static_cast<size_t>(2 * panels * a.groups) * sizeof(__m256), "int8 GEMM zero points"));
    const uint8_t* zs = nullptr;
    for (int64_t lp = 0; lp < panels; ++lp) {
      if (F == WeightFormat::Q4) zs = q_panel_zeros(p.w, P0 + lp);
      for (int h = 0; h < 2; ++h)
        for (int64_t g = 0; g < a.groups; ++g) zw[(2 * lp + h) * a.groups + g] = zero_weights<F>(q_panel_scales(p.w, P0 + lp), zs, g, h);
    }
  }
  for (int64_t m = m0; m < m1; m += kMB) {
    const int64_t rows = std::min<int64_t>(kMB, m1 - m);
    if (rows == kMB) init_rows<F, kMB>(p, a, zw, P0, panels, m);
    else
      for (int64_t i = 0; i < rows; ++i) init_rows<F, 1>(p, a, zw, P0, panels, m + i);
  }
  for (int64_t b0 = 0; b0 < a.blocks; b0 += kChunk) {
    const int64_t b1 = std::min(b0 + kChunk, a.blocks);
    for (int64_t m = m0; m < m1; m += kMB) {
      const int64_t rows = std::min<int64_t>(kMB, m1 - m);
      for (int64_t lp = 0; lp < panels; ++lp) {
        for (int h = 0; h < 2; ++h) {
          if (half_lanes(p, P0 + lp, h) <= 0) continue;
          if (rows == 4) chunk<F, 4>(p, a, P0 + lp, h, m, b0, b1);
          else if (rows == 3) chunk<F, 3>(p, a, P0 + lp, h, m, b0, b1);
          else if (rows == 2) chunk<F, 2>(p, a, P0 + lp, h, m, b0, b1);
          else chunk<F, 1>(p, a, P0 + lp, h, m, b0, b1);
        }
      }
    }
  }
}

}  // namespace ymm_gemm

// y = x·Wᵀ (+ bias) for M >= kQGemmMinRows, the activations as quantized (row-major: the block
// kernels broadcast each row's codes, so no interleave).
QVL_Q_TARGET void gemm(const ops::MatmulParams& p, QActs& a, ThreadPool& pool) {
  static_assert(ymm_gemm::kMB == 4, "run_task dispatches tiles of up to 4 rows");
  qgemm_schedule(
      p, pool, ymm_gemm::kTaskPanels * kQPanelRows, [](int64_t, int) {},
      [&](int64_t n0, int64_t m0, int64_t m1) {
        switch (p.w.format) {
          case WeightFormat::Q8: return ymm_gemm::run_task<WeightFormat::Q8>(p, a, n0, m0, m1);
          case WeightFormat::Q4: return ymm_gemm::run_task<WeightFormat::Q4>(p, a, n0, m0, m1);
          case WeightFormat::F32:
          case WeightFormat::F16:
          case WeightFormat::BF16:
          case WeightFormat::F8: return;  // the dispatcher sends only the formats the variant lists
        }
      });
}
