// The Int8Dot GEMM on ymm registers (M >= kQGemmMinRows), compiled twice like matmul_q_ymm.h,
// whose helpers it uses: include it after that file, with QVL_Q_TARGET and QVL_Q_VNNI still
// defined. A task takes kTaskPanels panels and a part of the rows. It first unpacks its panels
// (unpack_panel: one byte per code, the 8 4-k steps of a block and 8-row half in 256 contiguous
// bytes), then sweeps the rows' tiles of kMB over one chunk of blocks at a time (kMaxChunk:
// at most 128 KiB of unpacked codes, in L2 while every row tile reads it), one 8-row half at a
// time (4 rows × 1 half: 4 int32 dots, 4 f32 sums and the operands fit the 16 ymm registers). The
// activation codes are interleaved per row tile (interleave_tile_rows), so a tile's broadcasts
// read one sequential stream. The unpack costs a few operations per weight byte and task, which
// the rows amortize: read in place, q4 needs its nibble masks and two dots per block and row
// tile, and the zero-point term one FMA per group and row. Against this GEMM reading the panels
// in place (one thread, weights cached, M = 8-512): q4 1.1-1.4x, q8 0.93-1.08x. Against the row
// tiles (bench qgemm, two threads, quiet machine): AVX-VNNI q4 1.05-1.17x at M = 512, the rest
// 0.8-1.1x: the panel layout already gives the row tiles this GEMM's inner loop.
//
// The unpacked bytes and the operands' signs:
//  - AVX-VNNI: the weights signed (q8: byte − 128; q4: code − zero point, −15..15), the
//    activation codes unsigned (+128: interleave flip 0x80), and the +128 taken back exactly in
//    int32: −128·Σ_k w per row is each block dot's starting sum (stored with the unpacked block).
//    No zero-point term is left.
//  - AVX2: q8 signed (byte − 128) and multiplied as |w| · sign(x, w) as in place (pair sums ≤
//    2·128·127); q4 codes 0..15 and summed in int16 over a block as in place (≤ 8·2·15·127 =
//    30480); activation codes signed; q4's zero point stays the f32 step per group.
// y starts as the bias and each chunk adds its sums: the f32 order differs from the row tiles'
// (only rounding), and a row's bits depend on neither the tile it falls in nor the thread count.
// (No includes: the including file also includes backends/cpu/matmul_q_gemm.h.)
#ifndef QVL_Q_TARGET
#error "include matmul_q_ymm.h with QVL_Q_TARGET and QVL_Q_VNNI defined before matmul_q_gemm_ymm.h"
#endif

namespace ymm_gemm {

constexpr int64_t kTaskPanels = 2;
// Chunks of K as even as can be and at most kMaxChunk blocks (the task's 2 panels unpacked: 128
// KiB, within the 256-512 KiB L2 of the CPUs these variants are for). They were 16 blocks (16
// KiB, L1): on Sapphire Rapids (its 2 MiB L2; these variants forced through benchMatmul, one
// process, both settings alternated, 2 runs each, GOP/s), N = 1536, K = 8960, M = 512: AVX-VNNI
// q8 371-378 → 428-439, q4 386-391 → 438; AVX2 q8 224-226 → 246-247, q4 320-322 → 387-388 (the
// whole of K, 280 blocks: a few % more, not taken for the smaller L2s); whole-K chunks also beat
// 16 blocks at M = 16 (+3-9%) and 64 (+6-20%) and at K = 1536 (48 blocks: one chunk here).
constexpr int64_t kMaxChunk = 128;
constexpr int kMB = kQGemmTileRows;
constexpr int64_t kUnpackedBlock = 512;  // bytes of a panel's block unpacked (2 halves × 256)

// Whether the f32 zero-point step is left to the row tiles (see above).
constexpr bool zero_steps(WeightFormat f) { return f == WeightFormat::Q4 && !QVL_Q_VNNI; }

struct UnpackTag {};
struct ScaleTag {};

// Outputs of half h of panel P that exist (≤ 0: none).
inline int64_t half_lanes(const ops::MatmulParams& p, int64_t P, int h) {
  return std::min<int64_t>(8, p.N - P * kQPanelRows - 8 * h);
}

// Panel P's codes unpacked: block b, half h at dst + b·512 + h·256, byte 32j + 4r + t = element
// 4j + t of row 8h + r (signs above); with VNNI starts[2b + h] = its starting sums.
template <WeightFormat F>
QVL_Q_TARGET void unpack_panel(const ops::MatmulParams& p, int64_t P, int64_t blocks, int64_t per_group, uint8_t* dst, __m256i* starts) {
  const uint8_t* codes = q_panel_codes(p.w, P);
  const uint8_t* zs = F == WeightFormat::Q4 ? q_panel_zeros(p.w, P) : nullptr;
  const __m256i low4 = _mm256_set1_epi8(15), c128 = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t b = 0, g = 0, in_group = 0; b < blocks; ++b) {
    for (int h = 0; h < 2; ++h) {
      __m256i w[8];
      if constexpr (F == WeightFormat::Q8) {
        for (int j = 0; j < 8; ++j)
          w[j] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + b * 512 + 64 * j + 32 * h)), c128);
      } else {
        for (int c = 0; c < 4; ++c) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + b * 256 + 64 * c + 32 * h));
          w[c] = _mm256_and_si256(v, low4), w[4 + c] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
        }
      }
#if QVL_Q_VNNI
      if constexpr (F == WeightFormat::Q4) {
        // the zero point in each byte of its row's lane
        const __m256i z = _mm256_mullo_epi32(half_zeros(zs, g, h), _mm256_set1_epi32(0x01010101));
        for (int j = 0; j < 8; ++j) w[j] = _mm256_sub_epi8(w[j], z);
      }
      __m256i sum = _mm256_setzero_si256();
      for (int j = 0; j < 8; ++j) sum = _mm256_dpbusd_avx_epi32(sum, c128, w[j]);
      _mm256_store_si256(starts + 2 * b + h, _mm256_sub_epi32(_mm256_setzero_si256(), sum));
#else
      (void)zs, (void)g, (void)starts;
#endif
      for (int j = 0; j < 8; ++j) _mm256_store_si256(reinterpret_cast<__m256i*>(dst + b * kUnpackedBlock + 256 * h + 32 * j), w[j]);
    }
    if (++in_group == per_group) in_group = 0, ++g;  // b's group, counted along
  }
}

// dot[i] = the block dots of one unpacked block half w (256 bytes; start: its starting sums with
// VNNI) with MB rows, row i's codes of step j at x[i] + j·XS.
template <WeightFormat F, int MB, int XS>
QVL_Q_TARGET inline void unpacked_dot(const uint8_t* w, const int8_t* const* x, const __m256i* start, __m256i* dot) {
#if QVL_Q_VNNI
  for (int i = 0; i < MB; ++i) dot[i] = _mm256_load_si256(start);
  for (int j = 0; j < 8; ++j) {
    const __m256i wv = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 32 * j));
    for (int i = 0; i < MB; ++i) dot[i] = _mm256_dpbusd_avx_epi32(dot[i], bcast4(x[i] + j * XS), wv);
  }
#else
  (void)start;
  const __m256i ones16 = _mm256_set1_epi16(1);
  if constexpr (F == WeightFormat::Q8) {
    for (int i = 0; i < MB; ++i) dot[i] = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      const __m256i ws = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 32 * j)), aw = _mm256_abs_epi8(ws);
      for (int i = 0; i < MB; ++i) {
        dot[i] = pinned(_mm256_add_epi32(dot[i], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(bcast4(x[i] + j * XS), ws)), ones16)));
      }
    }
  } else {
    __m256i pairs[MB];
    for (int i = 0; i < MB; ++i) pairs[i] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      const __m256i wv = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 32 * j));
#pragma GCC unroll 4
      for (int i = 0; i < MB; ++i) {
        pairs[i] = pinned(_mm256_add_epi16(pairs[i], _mm256_maddubs_epi16(wv, bcast4(x[i] + j * XS))));
      }
    }
    for (int i = 0; i < MB; ++i) dot[i] = _mm256_madd_epi16(pairs[i], ones16);
  }
#endif
}

// y rows [m, m + MB) × half h of panel P += blocks [b0, b1) of the panel unpacked at un (starts:
// its starting sums); sw, zw: the half's scales and (where zero_steps) s·z per group.
template <WeightFormat F, int MB>
QVL_Q_TARGET void chunk(const ops::MatmulParams& p, const QActs& a, const uint8_t* un, const __m256i* starts, int64_t P, int h,
                        const __m256* sw, const __m256* zw, int64_t m, int64_t b0, int64_t b1) {
  const ActRows<MB, true> r(a, m);
  const int64_t per_group = a.group / kQuantBlock;
  __m256 acc[MB];
  for (int i = 0; i < MB; ++i) acc[i] = _mm256_setzero_ps();
  // One division per chunk (one per block cost more than the block's dots at group 32).
  for (int64_t g = b0 / per_group, b = b0; b < b1; ++g) {
    const __m256 s = sw[g];
    if constexpr (zero_steps(F)) {
      if (b == g * per_group) zero_step(r, zw[g], g, acc);
    }
    for (const int64_t end = std::min(b1, (g + 1) * per_group); b < end; ++b) {
      const int8_t* x[MB];
      for (int i = 0; i < MB; ++i) x[i] = r.x(i, b);
      __m256i dot[MB];
      unpacked_dot<F, MB, ActRows<MB, true>::kStep>(un + b * kUnpackedBlock + 256 * h, x, starts + 2 * b + h, dot);
      scale_add(r, dot, s, b, acc);
    }
  }
  const int64_t lanes = half_lanes(p, P, h);
  for (int i = 0; i < MB; ++i) {
    float* y = p.y + (m + i) * p.ldy + P * kQPanelRows + 8 * h;
    store_part(y, _mm256_add_ps(load_part(y, lanes), acc[i]), lanes);
  }
}

// Rows [m0, m1) × the panels from the one at output n0.
template <WeightFormat F>
QVL_Q_TARGET void run_task(const ops::MatmulParams& p, const QActs& a, int64_t n0, int64_t m0, int64_t m1) {
  const int64_t P0 = n0 / kQPanelRows, panels = std::min(kTaskPanels, q_panel_count(p.N) - P0);
  const int64_t per_group = a.group / kQuantBlock, panel_bytes = a.blocks * kUnpackedBlock;
  auto* un = static_cast<uint8_t*>(
      thread_scratch<UnpackTag>(static_cast<size_t>(panels * (panel_bytes + 2 * a.blocks * 32)), "int8 GEMM unpacked panels"));
  auto* starts = reinterpret_cast<__m256i*>(un + panels * panel_bytes);  // 2 · blocks per panel
  for (int64_t lp = 0; lp < panels; ++lp) unpack_panel<F>(p, P0 + lp, a.blocks, per_group, un + lp * panel_bytes, starts + lp * 2 * a.blocks);
  // The scales (f32) and zero-point weights once per task, not per row tile: a conversion per
  // block and row tile cost ~5% at group 32.
  const int64_t vecs = 2 * panels * a.groups;
  auto* sw = static_cast<__m256*>(thread_scratch<ScaleTag>(static_cast<size_t>(2 * vecs) * sizeof(__m256), "int8 GEMM scales"));
  __m256* zw = zero_steps(F) ? sw + vecs : nullptr;
  for (int64_t lp = 0; lp < panels; ++lp) {
    const uint16_t* sc = q_panel_scales(p.w, P0 + lp);
    const uint8_t* zs = F == WeightFormat::Q4 ? q_panel_zeros(p.w, P0 + lp) : nullptr;
    for (int h = 0; h < 2; ++h) {
      for (int64_t g = 0; g < a.groups; ++g) {
        const int64_t v = (2 * lp + h) * a.groups + g;
        sw[v] = half_scales(sc, g, h);
        if (zw) zw[v] = zero_weights<F>(sw[v], zs, g, h);
      }
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
  const int64_t per_chunk = qgemm_even_chunk(a.blocks, kMaxChunk);
  for (int64_t b0 = 0; b0 < a.blocks; b0 += per_chunk) {
    const int64_t b1 = std::min(b0 + per_chunk, a.blocks);
    for (int64_t m = m0; m < m1; m += kMB) {
      const int64_t rows = std::min<int64_t>(kMB, m1 - m);
      for (int64_t lp = 0; lp < panels; ++lp) {
        for (int h = 0; h < 2; ++h) {
          if (half_lanes(p, P0 + lp, h) <= 0) continue;
          const uint8_t* u = un + lp * panel_bytes;
          const __m256i* st = starts + lp * 2 * a.blocks;
          const __m256* s = sw + (2 * lp + h) * a.groups;
          const __m256* z = zw ? zw + (2 * lp + h) * a.groups : nullptr;
          if (rows == 4) chunk<F, 4>(p, a, u, st, P0 + lp, h, s, z, m, b0, b1);
          else if (rows == 3) chunk<F, 3>(p, a, u, st, P0 + lp, h, s, z, m, b0, b1);
          else if (rows == 2) chunk<F, 2>(p, a, u, st, P0 + lp, h, s, z, m, b0, b1);
          else chunk<F, 1>(p, a, u, st, P0 + lp, h, s, z, m, b0, b1);
        }
      }
    }
  }
}

}  // namespace ymm_gemm

// y = x·Wᵀ (+ bias) for M >= kQGemmMinRows; rewrites a (run_qmatmul drops it).
QVL_Q_TARGET void gemm(const ops::MatmulParams& p, QActs& a, ThreadPool& pool) {
  static_assert(ymm_gemm::kMB == 4, "run_task dispatches tiles of up to 4 rows");
  qgemm_schedule(
      p, pool, ymm_gemm::kTaskPanels * kQPanelRows,
      [&](int64_t m0, int rows) { interleave_tile_rows(a, m0, rows, QVL_Q_VNNI ? 0x80 : 0x00); },
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
