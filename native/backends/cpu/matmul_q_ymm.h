// The Int8Dot matmul body on ymm registers, compiled twice: AVX-VNNI (VEX vpdpbusd) and AVX2
// (vpmaddubsw + vpmaddwd). Include with QVL_Q_TARGET (the function target attribute) and
// QVL_Q_VNNI (1 or 0) defined, inside the including file's own anonymous namespace.
//
// One ymm holds one 32-block in element order (the q4 pair layout gives block 2p as the low
// nibbles of the pair's 32 bytes and block 2p + 1 as the high ones). Without VNNI, q4 codes
// (0..15) go straight into vpmaddubsw (pair sums ≤ 2·15·127, no saturation); q8 bytes are
// turned back into signed codes and multiplied as |w| · sign(x, w) (pair sums ≤ 2·128·127), so
// that variant computes Σ w·x exactly and has no +128 correction term.
// (No includes: the including file includes <immintrin.h>, backends/cpu/matmul_q.h,
// backends/cpu/thread_scratch.h, backends/cpu/vec_math.h and core/weight_quant.h at file scope first.)
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

// Eight packed q4 zero points (4 bytes, groups g..g+7 with g even) as f32.
QVL_Q_TARGET inline __m256 zeros8(const uint8_t* z) {
  int32_t v;
  __builtin_memcpy(&v, z, 4);
  const __m128i b = _mm_cvtsi32_si128(v), m4 = _mm_set1_epi8(15);
  // low nibbles (even groups) interleaved with high nibbles (odd groups): group order
  const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(b, m4), _mm_and_si128(_mm_srli_epi16(b, 4), m4));
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(nib));
}

// n scales widened into s, and each group's zero-point weight into zw: s · z (q4), 128 · s (q8
// with VNNI), 0 (q8 without VNNI: no bias there). Exact in f32 (an f16 times a small integer).
template <WeightFormat F>
QVL_Q_TARGET inline void widen_row(const uint16_t* sw, const uint8_t* z, int64_t n, float* s, float* zw) {
  int64_t g = 0;
  for (; g + 8 <= n; g += 8) {
    const __m256 v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sw + g)));
    _mm256_storeu_ps(s + g, v);
    if constexpr (F == WeightFormat::Q4) _mm256_storeu_ps(zw + g, _mm256_mul_ps(v, zeros8(z + g / 2)));
    else _mm256_storeu_ps(zw + g, _mm256_mul_ps(v, _mm256_set1_ps(QVL_Q_VNNI ? 128.0f : 0.0f)));
  }
  for (; g < n; ++g) {
    s[g] = _cvtsh_ss(sw[g]);
    zw[g] = s[g] * (F == WeightFormat::Q4 ? static_cast<float>(q4_zero(z, g)) : QVL_Q_VNNI ? 128.0f : 0.0f);
  }
}

// Σ_g zw · gs over n groups: an output's zero-point term.
QVL_Q_TARGET inline float zero_dot(const float* zw, const float* gs, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t g = 0;
  for (; g + 8 <= n; g += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(zw + g), _mm256_loadu_ps(gs + g), acc);
  float t = vm::hsum_avx2(acc);
  for (; g < n; ++g) t += zw[g] * gs[g];
  return t;
}

struct TileScaleTag {};

// Codes of block b of a row (32 bytes, element order).
template <WeightFormat F>
QVL_Q_TARGET inline __m256i block_codes(const uint8_t* row, int64_t b, int64_t paired, __m256i low4) {
  if constexpr (F == WeightFormat::Q8) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * 32));
  } else {
    if (b < paired) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b / 2 * 32));
      return _mm256_and_si256(b % 2 ? _mm256_srli_epi16(v, 4) : v, low4);
    }
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + paired / 2 * 32));
    const __m128i m4 = _mm_set1_epi8(15);
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(v, m4)), _mm_and_si128(_mm_srli_epi16(v, 4), m4), 1);
  }
}

// Eight int32 partial sums of codes · x for one block.
template <WeightFormat F>
QVL_Q_TARGET inline __m256i block_dot(__m256i w, __m256i x, __m256i ones16) {
#if QVL_Q_VNNI
  (void)ones16;
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), w, x);
#else
  if constexpr (F == WeightFormat::Q8) {
    const __m256i ws = _mm256_xor_si256(w, _mm256_set1_epi8(static_cast<char>(0x80)));  // signed codes
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(ws), _mm256_sign_epi8(x, ws)), ones16);
  } else {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), ones16);
  }
#endif
}

template <WeightFormat F, int MB, int R>
QVL_Q_TARGET void tile_block(const ops::MatmulParams& p, const QActs& a, int64_t m0, int64_t n) {
  constexpr int64_t kBlockBytes = F == WeightFormat::Q8 ? 32 : 16;
  // Rows from strides: WeightRef's row helpers call out and divide on every use.
  int64_t row_bytes = 0;
  weight_row_bytes(p.w.format, p.w.ld, &row_bytes);
  // The R rows' scales of K widened once per call and their groups' zero-point weights: the block
  // loop reads f32 as it would f32 scales, and each output's zero-point term is one dot product.
  const int64_t gk = (a.K + a.group - 1) / a.group;  // the groups K's blocks read
  auto* sf = static_cast<float*>(thread_scratch<TileScaleTag>(static_cast<size_t>(2 * R * gk) * sizeof(float), "q8/q4 tile scales"));
  const uint8_t* w[R];
  const float* sw[R];
  const float* zw[R];
  for (int j = 0; j < R; ++j) {
    w[j] = static_cast<const uint8_t*>(p.w.row(n)) + j * row_bytes;
    float* s = sf + 2 * j * gk;
    widen_row<F>(q_row_scales(p.w, n) + j * (p.w.ld / p.w.group), F == WeightFormat::Q4 ? q4_row_zeros(p.w, n + j) : nullptr,
                 gk, s, s + gk);
    sw[j] = s, zw[j] = s + gk;
  }
  const int8_t* xq[MB];
  const float* xd[MB];
  for (int i = 0; i < MB; ++i) xq[i] = a.q + (m0 + i) * a.K, xd[i] = a.d + (m0 + i) * a.blocks;
  // q4 blocks pair up over the stored row (ld), which may run past K.
  const int64_t per_group = a.group / kQuantBlock, paired = p.w.ld / kQuantBlock / 2 * 2;
  const __m256i low4 = _mm256_set1_epi8(15), ones16 = _mm256_set1_epi16(1);
  __m256 acc[MB][R];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < R; ++j) acc[i][j] = _mm256_setzero_ps();
  // The group of block b, counted along (a division per block cost more than the block's dots).
  int64_t g = 0, in_group = 0;
  for (int64_t b = 0; b < a.blocks; ++b) {
    if (b * kBlockBytes % 64 == 0) {  // once per cache line of each row
      // Integer arithmetic: the address may lie past the row's end (a prefetch never faults).
      for (int j = 0; j < R; ++j)
        _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(w[j]) + b * kBlockBytes + 1024), _MM_HINT_T0);
    }
    __m256i wv[R];
    __m256 swv[R];
    for (int j = 0; j < R; ++j) {
      wv[j] = block_codes<F>(w[j], b, paired, low4);
      swv[j] = _mm256_set1_ps(sw[j][g]);
    }
    if (++in_group == per_group) in_group = 0, ++g;
    for (int i = 0; i < MB; ++i) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[i] + b * 32));
      const __m256 dv = _mm256_set1_ps(xd[i][b]);
      for (int j = 0; j < R; ++j) {
        acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_dot<F>(wv[j], xv, ones16)), _mm256_mul_ps(dv, swv[j]), acc[i][j]);
      }
    }
  }
  for (int i = 0; i < MB; ++i) {
    for (int j = 0; j < R; ++j) {
      p.y[(m0 + i) * p.ldy + n + j] =
          (p.bias ? p.bias[n + j] : 0.0f) + vm::hsum_avx2(acc[i][j]) - zero_dot(zw[j], a.gs + (m0 + i) * a.groups, a.groups);
    }
  }
}

template <WeightFormat F, int MB>
QVL_Q_TARGET void tile_mb(const ops::MatmulParams& p, const QActs& a, int64_t m0, int64_t n0, int64_t n1) {
  constexpr int R = MB <= 2 ? 4 : 2;  // MB·R accumulators within the 16 ymm registers
  int64_t n = n0;
  for (; n + R <= n1; n += R) tile_block<F, MB, R>(p, a, m0, n);
  for (; n < n1; ++n) tile_block<F, MB, 1>(p, a, m0, n);
}

template <WeightFormat F>
QVL_Q_TARGET void tile_f(const ops::MatmulParams& p, const QActs& a, int64_t m0, int rows, int64_t n0, int64_t n1) {
  switch (rows) {
    case 1: return tile_mb<F, 1>(p, a, m0, n0, n1);
    case 2: return tile_mb<F, 2>(p, a, m0, n0, n1);
    case 3: return tile_mb<F, 3>(p, a, m0, n0, n1);
    default: return tile_mb<F, 4>(p, a, m0, n0, n1);
  }
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
