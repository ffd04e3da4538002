// The Int8Dot matmul body on ymm registers, compiled twice: AVX-VNNI (VEX vpdpbusd) and AVX2
// (vpmaddubsw + vpmaddwd). Include with QVL_Q_TARGET (the function target attribute) and
// QVL_Q_VNNI (1 or 0) defined, inside the including file's own anonymous namespace.
//
// The weights are read in place from their 16-row panels (core/weight_quant.h): each half of a
// 64-byte line holds 4 consecutive k of 8 rows, so one ymm of weights against the activation
// row's 4 codes at those k (broadcast) adds to 8 int32 lanes, one per output row. A 32-block of
// an 8-row half is 8 such steps (q4: 4 loads, each giving 4 k from the block's first and 4 from
// its second 16 elements), then one convert and one FMA scale it for 8 outputs at once: no
// horizontal sums, and the f32 work per block is an eighth of a row-at-a-time kernel's.
//
// The integer block dots are exact in both ISAs:
//  - AVX-VNNI: vpdpbusd takes the stored bytes as they are (unsigned: q8 biased by +128, q4
//    codes) against the signed activation codes. q4's high nibbles are multiplied in place
//    (masked with 0xf0: 16 times the code) into a dot of their own, shifted right by 4 at the
//    block's end: exact, since each of its terms is a multiple of 16 and the sum fits in int32
//    (32 · 240 · 127). The +128 and the zero point are the f32 term Σ_g s·z·gs of matmul_q.h.
//  - AVX2: vpmaddubsw adds pairs of u8 × s8 products in int16 with saturation. Activation codes
//    lie within ±127 (ops/quant_act.h: |x| / (amax / 127) rounds to at most 127). q8: the bytes
//    are made signed again (w = byte − 128, −128..127) and multiplied as |w| (as u8, at most 128)
//    times sign(x, w) = ±x: a pair sum is at most 2·128·127 = 32512 < 32767, widened by vpmaddwd
//    after every step: Σ w·x exactly, so this variant has no q8 bias term. q4: both nibbles
//    shifted down to 0..15, a pair sum at most 2·15·127 = 3810, so the 8 vpmaddubsw of a block
//    (its 32 products) add up in int16 to at most 8·3810 = 30480 < 32767 before one vpmaddwd;
//    the zero point as with VNNI.
// (No includes: the including file includes <immintrin.h>, <algorithm>, backends/cpu/matmul_q.h,
// backends/cpu/thread_scratch.h, backends/cpu/vec_math.h and core/weight_quant.h first.)
#ifndef QVL_Q_TARGET
#error "define QVL_Q_TARGET and QVL_Q_VNNI before including matmul_q_ymm.h"
#endif

QVL_Q_TARGET inline int32_t hsum8i(__m256i v) {
  alignas(32) int32_t t[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), v);
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}

// Bytes identical to ops::quantize_act_block (see matmul_q_avx512vnni.cpp).
QVL_Q_TARGET void quantize(const float* x, int64_t m, QActs& a) {
  int8_t* q = a.q + m * a.K;
  float* d = a.d + m * a.blocks;
  float* gs = a.gs + m * a.groups;
  const int64_t per_group = a.group / kQuantBlock;
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t g = 0; g < a.groups; ++g) {
    float s = 0.0f;
    for (int64_t b = g * per_group; b < (g + 1) * per_group; ++b) {
      const float* xb = x + b * kQuantBlock;
      __m256 v[4];
      for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(xb + 8 * i);
      const __m256 mx = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                                      _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)));
      alignas(32) float t[8];
      _mm256_store_ps(t, mx);
      float amax = 0.0f;
      for (int i = 0; i < 8; ++i) amax = amax > t[i] ? amax : t[i];
      const float db = amax / 127.0f, inv = db != 0.0f ? 1.0f / db : 0.0f;
      const __m256 iv = _mm256_set1_ps(inv);
      __m256i c[4];
      for (int i = 0; i < 4; ++i) c[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], iv));
      const __m256i packed = _mm256_permutevar8x32_epi32(
          _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3])), order);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * kQuantBlock), packed);
      const int32_t sum = hsum8i(_mm256_add_epi32(_mm256_add_epi32(c[0], c[1]), _mm256_add_epi32(c[2], c[3])));
      d[b] = db;
      s += db * static_cast<float>(sum);
    }
    gs[g] = s;
  }
}

// Bytes of one 32-block of a panel (16 rows).
constexpr int64_t panel_block_bytes(WeightFormat f) { return f == WeightFormat::Q8 ? 512 : 256; }
// Whether the integer dots leave a zero-point term to the f32 sums (see above).
constexpr bool has_zero_term(WeightFormat f) { return f == WeightFormat::Q4 || QVL_Q_VNNI; }

// The 4 activation codes at p in every dword lane.
QVL_Q_TARGET inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// lanes (≤ 8) floats at p (the rest 0) / stored to p.
QVL_Q_TARGET inline __m256i lane_mask(int64_t lanes) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(lanes)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
QVL_Q_TARGET inline __m256 load_part(const float* p, int64_t lanes) {
  return lanes >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lane_mask(lanes));
}
QVL_Q_TARGET inline void store_part(float* p, __m256 v, int64_t lanes) {
  if (lanes >= 8) _mm256_storeu_ps(p, v);
  else _mm256_maskstore_ps(p, lane_mask(lanes), v);
}

// The scales of rows 8h..8h+7 of a panel for group g.
QVL_Q_TARGET inline __m256 half_scales(const uint16_t* sc, int64_t g, int h) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + g * kQPanelRows + 8 * h)));
}

// The q4 zero points of the rows of half h for group g, one per lane, from the panel's zs.
QVL_Q_TARGET inline __m256i half_zeros(const uint8_t* zs, int64_t g, int h) {
  int32_t v;
  __builtin_memcpy(&v, zs + g * (kQPanelRows / 2) + 4 * h, 4);
  const __m128i b = _mm_cvtsi32_si128(v), m4 = _mm_set1_epi8(15);
  // low nibbles (even rows) interleaved with high nibbles (odd rows): row order
  return _mm256_cvtepu8_epi32(_mm_unpacklo_epi8(_mm_and_si128(b, m4), _mm_and_si128(_mm_srli_epi16(b, 4), m4)));
}

// s·z of the rows of half h for group g, their scales s (z: q4's zero point from the panel's
// zero points zs, q8's 128). Exact in f32: an f16 times a 4-bit or power-of-two integer.
template <WeightFormat F>
QVL_Q_TARGET inline __m256 zero_weights(__m256 s, const uint8_t* zs, int64_t g, int h) {
  if constexpr (F == WeightFormat::Q4) {
    return _mm256_mul_ps(s, _mm256_cvtepi32_ps(half_zeros(zs, g, h)));
  } else {
    (void)zs, (void)g, (void)h;
    return _mm256_mul_ps(s, _mm256_set1_ps(128.0f));
  }
}

// Holds v in a register at this point. Without it GCC regroups a block's chain of integer adds
// (associative, unlike vpdpbusd) into a tree whose 32 live terms spill to the stack.
QVL_Q_TARGET inline __m256i pinned(__m256i v) {
  __asm__("" : "+x"(v));
  return v;
}

// dot[i] (lane r) += Σ over one 32-block of code(row r, k) · x(i, k) for the 8 rows of one panel
// half: w is the block's first byte in the panel (+ 32 for rows 8..15); the codes of activation
// row i's 4-k step j (k = 4j..4j+3) lie at x[i] + j·XS.
template <WeightFormat F, int MB, int XS>
QVL_Q_TARGET inline void half_block_dot(const uint8_t* w, const int8_t* const* x, __m256i* dot) {
  constexpr int64_t xs = XS;
#if QVL_Q_VNNI
  if constexpr (F == WeightFormat::Q8) {
    for (int j = 0; j < 8; ++j) {
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * j));
      for (int i = 0; i < MB; ++i) dot[i] = _mm256_dpbusd_avx_epi32(dot[i], wv, bcast4(x[i] + j * xs));
    }
  } else {
    const __m256i lo_mask = _mm256_set1_epi8(0x0f), hi_mask = _mm256_set1_epi8(static_cast<char>(0xf0));
    __m256i hi[MB];
    for (int i = 0; i < MB; ++i) hi[i] = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * c));
      const __m256i lo = _mm256_and_si256(wv, lo_mask), h = _mm256_and_si256(wv, hi_mask);
      for (int i = 0; i < MB; ++i) {
        dot[i] = _mm256_dpbusd_avx_epi32(dot[i], lo, bcast4(x[i] + c * xs));
        hi[i] = _mm256_dpbusd_avx_epi32(hi[i], h, bcast4(x[i] + (4 + c) * xs));
      }
    }
    for (int i = 0; i < MB; ++i) dot[i] = _mm256_add_epi32(dot[i], _mm256_srai_epi32(hi[i], 4));
  }
#else
  const __m256i ones16 = _mm256_set1_epi16(1);
  if constexpr (F == WeightFormat::Q8) {
    const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int j = 0; j < 8; ++j) {
      const __m256i ws = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * j)), bias);
      const __m256i aw = _mm256_abs_epi8(ws);
      for (int i = 0; i < MB; ++i) {
        const __m256i xs8 = _mm256_sign_epi8(bcast4(x[i] + j * xs), ws);
        dot[i] = pinned(_mm256_add_epi32(dot[i], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, xs8), ones16)));
      }
    }
  } else {
    const __m256i low4 = _mm256_set1_epi8(15);
    __m256i pairs[MB];
    for (int i = 0; i < MB; ++i) pairs[i] = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * c));
      const __m256i lo = _mm256_and_si256(wv, low4), h = _mm256_and_si256(_mm256_srli_epi16(wv, 4), low4);
      for (int i = 0; i < MB; ++i) {
        pairs[i] = pinned(_mm256_add_epi16(pairs[i], _mm256_maddubs_epi16(lo, bcast4(x[i] + c * xs))));
        pairs[i] = pinned(_mm256_add_epi16(pairs[i], _mm256_maddubs_epi16(h, bcast4(x[i] + (4 + c) * xs))));
      }
    }
    for (int i = 0; i < MB; ++i) dot[i] = _mm256_add_epi32(dot[i], _mm256_madd_epi16(pairs[i], ones16));
  }
#endif
}

// MB activation rows from row m as a kernel reads them: as quantized, row after row, or (Tiled)
// as interleave_tile_rows leaves a tile of MB rows (the strides then compile to constants).
template <int MB, bool Tiled>
struct ActRows {
  const int8_t* x0;
  const float *d0, *gs0;
  int64_t K, blocks, groups;
  static constexpr int kStep = Tiled ? 4 * MB : 4;  // bytes between a row's 4-k steps
  ActRows(const QActs& a, int64_t m)
      : x0(a.q + m * a.K), d0(a.d + m * a.blocks), gs0(a.gs + m * a.groups), K(a.K), blocks(a.blocks), groups(a.groups) {}
  const int8_t* x(int i, int64_t b) const { return Tiled ? x0 + b * kQuantBlock * MB + 4 * i : x0 + i * K + b * kQuantBlock; }
  float d(int i, int64_t b) const { return Tiled ? d0[b * MB + i] : d0[i * blocks + b]; }
  float gs(int i, int64_t g) const { return gs0[i * groups + g]; }
};

// acc[i] += d·s·dot[i], block b's dots of the 8 rows with scales s.
template <int MB, bool Tiled>
QVL_Q_TARGET inline void scale_add(const ActRows<MB, Tiled>& r, const __m256i* dot, __m256 s, int64_t b, __m256* acc) {
  for (int i = 0; i < MB; ++i)
    acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[i]), _mm256_mul_ps(s, _mm256_set1_ps(r.d(i, b))), acc[i]);
}

// acc[i] += d·s·dot of block b for the 8 rows of half h of a panel (codes; s their scales for
// b's group): one convert and one FMA per row.
template <WeightFormat F, int MB, bool Tiled>
QVL_Q_TARGET inline void half_block(const ActRows<MB, Tiled>& r, const uint8_t* codes, __m256 s, int h, int64_t b, __m256* acc) {
  const int8_t* x[MB];
  __m256i dot[MB];
  for (int i = 0; i < MB; ++i) x[i] = r.x(i, b), dot[i] = _mm256_setzero_si256();
  half_block_dot<F, MB, ActRows<MB, Tiled>::kStep>(codes + b * panel_block_bytes(F) + 32 * h, x, dot);
  scale_add(r, dot, s, b, acc);
}

// acc[i] −= zw·gs of group g: the group's zero-point term (matmul_q.h), zw its s·z. Taken in the
// block loop, at the group's first block, rather than summed apart: one more FMA per group on
// the chain that is there anyway, not a chain of its own.
template <int MB, bool Tiled>
QVL_Q_TARGET inline void zero_step(const ActRows<MB, Tiled>& r, __m256 zw, int64_t g, __m256* acc) {
  for (int i = 0; i < MB; ++i) acc[i] = _mm256_fnmadd_ps(zw, _mm256_set1_ps(r.gs(i, g)), acc[i]);
}

// y rows [m0, m0 + MB) × the outputs below n1 of panel P, all K. Up to 2 rows, both halves in
// one sweep of the blocks (the panel's lines read once, in order: decode streams them from
// memory); from 3 rows one half per sweep, the second from cache: 2·MB f32 sums, MB dots (and
// q4's MB high dots) and the operands would not fit the 16 registers (one thread, weights
// cached: 1.04-1.2x at M = 3, 4).
template <WeightFormat F, int MB>
QVL_Q_TARGET void tile_panel(const ops::MatmulParams& p, const QActs& a, int64_t m0, int64_t P, int64_t n1) {
  constexpr int kHalves = MB <= 2 ? 2 : 1;  // per sweep
  const uint8_t* codes = q_panel_codes(p.w, P);
  const uint16_t* sc = q_panel_scales(p.w, P);
  const uint8_t* zs = F == WeightFormat::Q4 ? q_panel_zeros(p.w, P) : nullptr;
  const int64_t per_group = a.group / kQuantBlock, n0 = P * kQPanelRows;
  const ActRows<MB, false> r(a, m0);
  for (int h0 = 0; h0 < 2 && n1 - n0 - 8 * h0 > 0; h0 += kHalves) {
    __m256 acc[kHalves][MB];
    for (int h = 0; h < kHalves; ++h)
      for (int i = 0; i < MB; ++i) acc[h][i] = _mm256_setzero_ps();
    for (int64_t g = 0, b = 0; g < a.groups; ++g) {
      __m256 s[kHalves];
      for (int h = 0; h < kHalves; ++h) {
        s[h] = half_scales(sc, g, h0 + h);
        if constexpr (has_zero_term(F)) zero_step(r, zero_weights<F>(s[h], zs, g, h0 + h), g, acc[h]);
      }
      for (const int64_t end = b + per_group; b < end; ++b) {
        // 2 KiB ahead, on the first sweep: decode streams the panels from memory, one run per
        // thread (1 thread, 151936 x 1536: q8 +8%, q4 +15% over the hardware prefetchers alone;
        // 1, 4 or 8 KiB no better). Integer arithmetic: the address may lie past the weights (a
        // prefetch never faults).
        if (h0 == 0) {
          for (int64_t l = 0; l < panel_block_bytes(F); l += 64)
            _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(codes) + b * panel_block_bytes(F) + l + 2048), _MM_HINT_T0);
        }
        for (int h = 0; h < kHalves; ++h) half_block<F, MB>(r, codes, s[h], h0 + h, b, acc[h]);
      }
    }
    for (int h = 0; h < kHalves; ++h) {
      const int64_t lanes = std::min<int64_t>(8, n1 - n0 - 8 * (h0 + h));
      if (lanes <= 0) break;
      const __m256 bias = p.bias ? load_part(p.bias + n0 + 8 * (h0 + h), lanes) : _mm256_setzero_ps();
      for (int i = 0; i < MB; ++i) store_part(p.y + (m0 + i) * p.ldy + n0 + 8 * (h0 + h), _mm256_add_ps(bias, acc[h][i]), lanes);
    }
  }
}

template <WeightFormat F, int MB>
QVL_Q_TARGET void tile_mb(const ops::MatmulParams& p, const QActs& a, int64_t m0, int64_t n0, int64_t n1) {
  for (int64_t P = n0 / kQPanelRows; P * kQPanelRows < n1; ++P) tile_panel<F, MB>(p, a, m0, P, n1);
}

template <WeightFormat F>
QVL_Q_TARGET void tile_f(const ops::MatmulParams& p, const QActs& a, int64_t m0, int rows, int64_t n0, int64_t n1) {
  if (rows == 1) return tile_mb<F, 1>(p, a, m0, n0, n1);
  if (rows == 2) return tile_mb<F, 2>(p, a, m0, n0, n1);
  if (rows == 3) return tile_mb<F, 3>(p, a, m0, n0, n1);
  tile_mb<F, 4>(p, a, m0, n0, n1);  // rows ≤ 4 (QKernels::tile)
}

QVL_Q_TARGET void tile(const ops::MatmulParams& p, const QActs& a, int64_t m0, int rows, int64_t n0, int64_t n1) {
  switch (p.w.format) {
    case WeightFormat::Q8: return tile_f<WeightFormat::Q8>(p, a, m0, rows, n0, n1);
    case WeightFormat::Q4: return tile_f<WeightFormat::Q4>(p, a, m0, rows, n0, n1);
    case WeightFormat::F32:
    case WeightFormat::F16:
    case WeightFormat::BF16:
    case WeightFormat::F8: return;  // the dispatcher sends only the formats the variant lists
  }
}
