// Int8Dot matmul with AVX512-VNNI: one zmm holds a pair of 32-blocks (the q4 layout stores a pair
// in 32 bytes: one broadcast, one variable shift and one mask give the 64 codes in element order;
// q8 is a plain 64-byte load), vpdpbusd multiplies the unsigned codes with the signed activation
// codes into 16 int32 lanes (8 per block), and each pair adds cvt(dot) · (d_x · s_w) to an f32
// accumulator, per block. Up to 4 activation rows share each unpacked weight vector (batched
// decode, prefill tiles), 4 weight rows share each activation vector.
#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/matmul_q.h"
#include "backends/cpu/matmul_q_gemm.h"
#include "backends/cpu/thread_scratch.h"
#include "backends/cpu/vec_math.h"
#include "core/cpu.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

namespace {

constexpr __mmask16 kAll = static_cast<__mmask16>(0xffff);
constexpr __mmask64 kLow32 = 0xffffffffull;  // the low 32 bytes of a zmm

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

// The scales of up to 16 groups (mask mk) as f32; 0 in the masked-off lanes.
QVL_TARGET_AVX512VNNI inline __m512 scales16(const uint16_t* sw, __mmask16 mk) {
  return _mm512_maskz_cvtph_ps(kAll, _mm256_maskz_loadu_epi16(mk, sw));
}

// The zero points of up to 16 groups (g..g+15, g even; mask mk) from a row's packed zero points
// at z + g / 2, as f32: one load of the bytes covering them, the nibbles interleaved into group
// order. Lanes past the mask read 0 or the 0 nibble after an odd group count (their scales are 0).
QVL_TARGET_AVX512VNNI inline __m512 zeros16(const uint8_t* z, int64_t count) {
  const __mmask16 bytes = static_cast<__mmask16>((1u << ((count + 1) / 2)) - 1);
  const __m128i b = _mm_maskz_loadu_epi8(bytes, z), m4 = _mm_set1_epi8(15);
  const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(b, m4), _mm_and_si128(_mm_srli_epi16(b, 4), m4));
  return _mm512_maskz_cvtepi32_ps(kAll, _mm512_maskz_cvtepu8_epi32(kAll, nib));
}

// n scales widened into dst, 16 at a time.
QVL_TARGET_AVX512VNNI inline void widen_scales(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t g = 0; g < n; g += 16) {
    const __mmask16 mk = n - g >= 16 ? kAll : static_cast<__mmask16>((1u << (n - g)) - 1);
    _mm512_mask_storeu_ps(dst + g, mk, scales16(src + g, mk));
  }
}

struct TileScaleTag {};

// Each group's zero-point weight from its widened scale: s · z (q4, z from the packed zero points)
// or 128 · s (q8's bias), n groups. Exact in f32 (an f16 times a 4-bit or power-of-two integer).
template <WeightFormat F>
QVL_TARGET_AVX512VNNI inline void zero_weights(const float* s, const uint8_t* z, int64_t n, float* out) {
  for (int64_t g = 0; g < n; g += 16) {
    const int64_t cnt = n - g >= 16 ? 16 : n - g;
    const __mmask16 mk = cnt == 16 ? kAll : static_cast<__mmask16>((1u << cnt) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(mk, s + g);
    if constexpr (F == WeightFormat::Q4) {
      _mm512_mask_storeu_ps(out + g, mk, _mm512_mul_ps(v, zeros16(z + g / 2, cnt)));
    } else {
      _mm512_mask_storeu_ps(out + g, mk, _mm512_mul_ps(v, _mm512_set1_ps(128.0f)));
    }
  }
}

// Σ_g zw · gs over n groups: an output's zero-point term.
QVL_TARGET_AVX512VNNI inline float zero_dot(const float* zw, const float* gs, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t g = 0; g < n; g += 16) {
    const __mmask16 mk = n - g >= 16 ? kAll : static_cast<__mmask16>((1u << (n - g)) - 1);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, zw + g), _mm512_maskz_loadu_ps(mk, gs + g), acc);
  }
  return vm::hsum_avx512(acc);
}

// The 64 codes of pair `pr` of a stored row (element order: block 2pr in bytes 0..31).
template <WeightFormat F>
QVL_TARGET_AVX512VNNI inline __m512i pair_codes(const uint8_t* row, int64_t pr, __m512i shifts, __m512i low4) {
  if constexpr (F == WeightFormat::Q8) {
    return _mm512_loadu_si512(row + pr * 64);
  } else {
    const __m512i v = _mm512_maskz_broadcast_i64x4(static_cast<__mmask8>(0xff), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + pr * 32)));
    return _mm512_and_si512(_mm512_srlv_epi16(v, shifts), low4);
  }
}

// The codes of block b (the last of K, an even index) in the low 32 bytes, zeros above. For q4 it
// is the first half of a full pair when the stored row (ld) continues past K, else a half pair.
template <WeightFormat F>
QVL_TARGET_AVX512VNNI inline __m512i last_codes(const uint8_t* row, int64_t b, int64_t paired_ld) {
  if constexpr (F == WeightFormat::Q8) {
    return _mm512_maskz_loadu_epi8(kLow32, row + b * 32);
  } else {
    if (b < paired_ld) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b / 2 * 32));
      return _mm512_maskz_inserti64x4(static_cast<__mmask8>(0xff), _mm512_setzero_si512(),
                                      _mm256_and_si256(v, _mm256_set1_epi8(15)), 0);
    }
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + b / 2 * 32));
    const __m128i m4 = _mm_set1_epi8(15);
    const __m256i c = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(v, m4)),
                                              _mm_and_si128(_mm_srli_epi16(v, 4), m4), 1);
    return _mm512_maskz_inserti64x4(static_cast<__mmask8>(0xff), _mm512_setzero_si512(), c, 0);
  }
}

// [lo × 8, hi × 8]
QVL_TARGET_AVX512VNNI inline __m512 halves(float lo, float hi) {
  return _mm512_mask_blend_ps(static_cast<__mmask16>(0xff00), _mm512_set1_ps(lo), _mm512_set1_ps(hi));
}

// MB activation rows x R weight rows for groups decode_block cannot take (a group of 3, 5, ...
// blocks, or more than 16): the scales looked up per pair.
template <WeightFormat F, int MB, int R>
QVL_TARGET_AVX512VNNI void tile_block(const ops::MatmulParams& p, const QActs& a, int64_t m0, int64_t n) {
  constexpr int64_t kPairBytes = F == WeightFormat::Q8 ? 64 : 32;
  // Rows from strides: WeightRef's row helpers call out and divide on every use.
  int64_t row_bytes = 0;
  weight_row_bytes(p.w.format, p.w.ld, &row_bytes);
  // The R rows' scales of K widened once per call, and their groups' zero-point weights: the pair
  // loop then reads f32 as it would f32 scales, and each of the MB·R outputs' zero-point terms is
  // one dot product (converting per pair and unpacking per output cost the M = 2..4 tiles ~10%).
  const int64_t gk = (a.K + a.group - 1) / a.group;  // the groups K's blocks read
  auto* sf = static_cast<float*>(thread_scratch<TileScaleTag>(static_cast<size_t>(2 * R * gk) * sizeof(float), "q8/q4 tile scales"));
  const uint8_t* w[R];
  const float* sw[R];
  const float* zw[R];
  for (int j = 0; j < R; ++j) {
    w[j] = static_cast<const uint8_t*>(p.w.row(n)) + j * row_bytes;
    float* s = sf + 2 * j * gk;
    widen_scales(q_row_scales(p.w, n) + j * (p.w.ld / p.w.group), gk, s);
    zero_weights<F>(s, F == WeightFormat::Q4 ? q4_row_zeros(p.w, n + j) : nullptr, gk, s + gk);
    sw[j] = s, zw[j] = s + gk;
  }
  // R rows on: the next tile (rows are contiguous), and how far ahead L1 prefetches (see below).
  const uintptr_t ahead = static_cast<uintptr_t>(R * row_bytes), l1_ahead = ahead <= 8192 ? ahead : 1024;
  const int8_t* xq[MB];
  const float* xd[MB];
  for (int i = 0; i < MB; ++i) xq[i] = a.q + (m0 + i) * a.K, xd[i] = a.d + (m0 + i) * a.blocks;
  const int64_t pairs = a.blocks / 2, per_group = a.group / kQuantBlock;
  const __m512i shifts = _mm512_maskz_set1_epi16(static_cast<__mmask32>(0xffff0000u), 4);  // 0 low half, 4 high
  const __m512i low4 = _mm512_set1_epi8(15);
  __m512 acc[MB][R];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < R; ++j) acc[i][j] = _mm512_setzero_ps();
  // The groups of the pair's blocks, counted along (two divisions per pair cost more than its dots).
  int64_t g = 0, in_group = 0;
  for (int64_t pr = 0; pr < pairs; ++pr) {
    const int64_t b0 = 2 * pr, ga = g;
    if (++in_group == per_group) in_group = 0, ++g;
    const int64_t gb = g;
    if (++in_group == per_group) in_group = 0, ++g;
    if (pr * kPairBytes % 64 == 0) {
      // As decode_block: the next tile's lines (the same position R rows on) into L1 and the tile
      // after it into L2, to keep more lines in flight than the L1 fill buffers alone allow. When
      // the next tile is far (K = 8960: 35 KiB at q8), lines fetched that early into L1 would be
      // evicted before use, so L1 gets the line 1 KiB on in the row instead. One KiB ahead in the
      // row was all this loop did before; on 1 Sapphire Rapids thread (shared machine, modes
      // interleaved, 3 rounds) that took M = 2, 4 from 7-13 GB/s to 8-14 (+6-45%: q4 and K = 1536
      // gained most), and next-tile L1 prefetch at K = 8960 was 3-5% behind the in-row one.
      // Integer arithmetic: the addresses may lie past the weight's end (a prefetch never faults).
      for (int j = 0; j < R; ++j) {
        const uintptr_t at = reinterpret_cast<uintptr_t>(w[j]) + static_cast<uintptr_t>(pr * kPairBytes);
        _mm_prefetch(reinterpret_cast<const char*>(at + l1_ahead), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(at + 2 * ahead), _MM_HINT_T1);
      }
    }
    __m512i wv[R];
    __m512 swv[R];
    for (int j = 0; j < R; ++j) {
      wv[j] = pair_codes<F>(w[j], pr, shifts, low4);
      swv[j] = ga == gb ? _mm512_set1_ps(sw[j][ga]) : halves(sw[j][ga], sw[j][gb]);
    }
    for (int i = 0; i < MB; ++i) {
      const __m512i xv = _mm512_loadu_si512(xq[i] + pr * 64);
      const __m512 dv = halves(xd[i][b0], xd[i][b0 + 1]);
      for (int j = 0; j < R; ++j) {
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[j], xv);
        acc[i][j] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAll, dot), _mm512_mul_ps(dv, swv[j]), acc[i][j]);
      }
    }
  }
  if (a.blocks % 2) {  // the trailing unpaired block: upper 32 bytes of codes are zero
    const int64_t b = a.blocks - 1;
    for (int j = 0; j < R; ++j) {
      const __m512i wvj = last_codes<F>(w[j], b, p.w.ld / kQuantBlock / 2 * 2);
      const float s = sw[j][b / per_group];
      for (int i = 0; i < MB; ++i) {
        const __m512i xv = _mm512_maskz_loadu_epi8(kLow32, xq[i] + b * 32);
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wvj, xv);
        acc[i][j] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAll, dot), _mm512_set1_ps(xd[i][b] * s), acc[i][j]);
      }
    }
  }
  for (int i = 0; i < MB; ++i) {
    for (int j = 0; j < R; ++j) {
      p.y[(m0 + i) * p.ldy + n + j] =
          (p.bias ? p.bias[n + j] : 0.0f) + vm::hsum_avx512(acc[i][j]) - zero_dot(zw[j], a.gs + (m0 + i) * a.groups, a.groups);
    }
  }
}

// Decode and batched decode (1 to 4 activation rows): the same sums as tile_block with less work
// per pair of blocks. Per 16 blocks, one multiply per activation row and weight row forms the 16
// scale products d_x · s_w; per pair, one vpermps spreads the pair's two products over their 8
// lanes each (tile_block: two broadcasts, a blend, a multiply per row pair). q4 codes take one
// mask instead of a shift and a mask: the high nibbles stay in place (16 · code) and the 16 is
// divided out of the odd blocks' scale products (exactly: a power of two). Each unpacked weight
// vector serves all the activation rows. The zero-point term joins the vector accumulator before
// the one final reduction. Against tile_block at M = 2, 4 (2 Sapphire Rapids threads, one process,
// modes interleaved, 4 rounds, quiet machine): M = 2 q8 +2-11%, q4 +15-29%; M = 4 q4 +3-27%, q8
// +4-8% at K = 8960 but 0.91-1.02x at K = 1536 (q8 reloads its weight vectors per activation
// row there: 16 accumulators leave no registers for them).
// Scales per 16 blocks need the group to hold 1, 2, 4, 8 or 16 blocks (tile_block does the rest).
bool decode_group_ok(int64_t group) {
  const int64_t per = group / kQuantBlock;
  return per == 1 || per == 2 || per == 4 || per == 8 || per == 16;
}

// Row sums of 4 accumulators in lanes 0..3.
QVL_TARGET_AVX512VNNI inline __m128 hsum4(const __m512 v[4]) {
  const __m512 s01 = _mm512_add_ps(_mm512_maskz_unpacklo_ps(kAll, v[0], v[1]), _mm512_maskz_unpackhi_ps(kAll, v[0], v[1]));
  const __m512 s23 = _mm512_add_ps(_mm512_maskz_unpacklo_ps(kAll, v[2], v[3]), _mm512_maskz_unpackhi_ps(kAll, v[2], v[3]));
  // per 128-bit lane: [v0 v1 v0 v1] and [v2 v3 v2 v3] partial sums -> [v0 v1 v2 v3]
  const __m512 s = _mm512_add_ps(_mm512_shuffle_ps(s01, s23, 0x44), _mm512_shuffle_ps(s01, s23, 0xEE));
  const __m256 h = _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xff, s, 0), _mm512_maskz_extractf32x8_ps(0xff, s, 1));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// What decode_block reads, resolved once per tile: row addresses come from strides (WeightRef's
// row helpers divide and call out per row, which cost as much as a short row's dot products).
struct DecodeRows {
  const uint8_t* w;     // first row's codes
  const uint16_t* sw;   // first row's scales
  const uint8_t* z;     // first row's packed zero points (q4)
  int64_t row_bytes, sw_stride, z_stride;  // per stored row (ld elements): bytes of codes, scales (f16s), zero bytes
  int64_t groups, blocks, per_group, paired_ld;  // groups and blocks of K
  int shift;            // log2(per_group)
  const int8_t* xq;     // the first activation row's codes, block scales, group sums
  const float* xd;
  const float* gs;
  int64_t xq_stride, xd_stride, gs_stride, y_stride;  // per activation row
  const float* bias;    // at the first output, or null
  float* y;             // at the first row's first output
};

// Pair pr of MB activation rows x R weight rows: acc[i][j] += cvt(dot) · (the pair's two scale
// products from s[i][j], lanes `idx`). Each weight row's codes are loaded (q4: masked) once.
template <WeightFormat F, int MB, int R>
QVL_TARGET_AVX512VNNI inline void decode_pair(const uint8_t* const* w, const int8_t* const* xq, int64_t pr, int64_t ahead,
                                              int64_t l1_ahead, __m512i idx, const __m512 (*s)[R], __m512 (*acc)[R]) {
  constexpr int64_t kPairBytes = F == WeightFormat::Q8 ? 64 : 32;
  if (pr * kPairBytes % 64 == 0) {
    // The next tile's lines into L1, and the tile after it into L2: an L1 prefetch holds one of
    // the core's few fill buffers until its line arrives, so one tile ahead alone kept too few
    // lines in flight, and a q4 tile's compute ran mostly after its weights instead of under them
    // (2 Sapphire Rapids threads, K = 1536: q4 +12-16%, q8 +2-9%; K = 8960 unchanged).
    for (int j = 0; j < R; ++j) {
      const uintptr_t at = reinterpret_cast<uintptr_t>(w[j]) + static_cast<uintptr_t>(pr * kPairBytes);
      _mm_prefetch(reinterpret_cast<const char*>(at + static_cast<uintptr_t>(l1_ahead)), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(at + static_cast<uintptr_t>(2 * ahead)), _MM_HINT_T1);
    }
  }
  // q4: the pair's 32 bytes in both halves; low nibbles (block 2pr) below, high nibbles (16 · the
  // codes of block 2pr + 1) above.
  const __m512i nibbles = _mm512_mask_blend_epi64(static_cast<__mmask8>(0xf0), _mm512_set1_epi8(0x0f), _mm512_set1_epi8(static_cast<char>(0xf0)));
  __m512i wv[R];
  for (int j = 0; j < R; ++j) {
    if constexpr (F == WeightFormat::Q8) {
      wv[j] = _mm512_loadu_si512(w[j] + pr * 64);
    } else {
      wv[j] = _mm512_and_si512(_mm512_maskz_broadcast_i64x4(static_cast<__mmask8>(0xff), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[j] + pr * 32))), nibbles);
    }
    if constexpr (MB == 1) {
      // One activation row: each weight vector is used at once (all R loaded first, GCC spilled an
      // accumulator of the 1 x 4 tile to the stack every pair: the LM head's q4 decode ran 4% slower).
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[j], _mm512_loadu_si512(xq[0] + pr * 64));
      acc[0][j] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAll, dot), _mm512_maskz_permutexvar_ps(kAll, idx, s[0][j]), acc[0][j]);
    }
  }
  if constexpr (MB == 1) return;
  for (int i = 0; i < MB; ++i) {
    const __m512i xv = _mm512_loadu_si512(xq[i] + pr * 64);
    for (int j = 0; j < R; ++j) {
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[j], xv);
      acc[i][j] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAll, dot), _mm512_maskz_permutexvar_ps(kAll, idx, s[i][j]), acc[i][j]);
    }
  }
}

// Outputs i..i+R-1 of MB activation rows. Every output's arithmetic is the same whatever MB is
// (a row decoding alone or batched gets the same bits), and the same for any split of N.
template <WeightFormat F, int MB, int R>
QVL_TARGET_AVX512VNNI void decode_block(const DecodeRows& r, int64_t i) {
  const int64_t per_group = r.per_group, groups = r.groups, blocks = r.blocks, paired = blocks / 2 * 2;
  const int shift = r.shift;
  const uint8_t* w[R];
  const uint16_t* sw[R];
  for (int j = 0; j < R; ++j) w[j] = r.w + (i + j) * r.row_bytes, sw[j] = r.sw + (i + j) * r.sw_stride;
  const int8_t* xq[MB];
  const float* xd[MB];
  for (int m = 0; m < MB; ++m) xq[m] = r.xq + m * r.xq_stride, xd[m] = r.xd + m * r.xd_stride;
  // The next R rows, same position: one block of rows ahead (rows are contiguous). With several
  // activation rows a pair takes longer, and as in tile_block a far next tile (K = 8960 q8: 35
  // KiB) would leave L1 before use: L1 then gets the line 1 KiB on in the row.
  const int64_t ahead = R * r.row_bytes, l1_ahead = MB == 1 || ahead <= 8192 ? ahead : 1024;
  const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  // Block i of a 16-block chunk takes scale i / per_group (per_group a power of two).
  const __m512i group_of = _mm512_maskz_srlv_epi32(kAll, lane, _mm512_set1_epi32(shift));
  // Pair q of a chunk: lanes 0..7 take product 2q, lanes 8..15 product 2q + 1.
  const __m512i pair_lanes = _mm512_srli_epi32(lane, 3);
  const __m512 odd_scale = F == WeightFormat::Q4 ? _mm512_mask_blend_ps(static_cast<__mmask16>(0xaaaa), _mm512_set1_ps(1.0f), _mm512_set1_ps(1.0f / 16.0f))
                                                 : _mm512_set1_ps(1.0f);
  __m512 acc[MB][R];
  for (int m = 0; m < MB; ++m)
    for (int j = 0; j < R; ++j) acc[m][j] = _mm512_setzero_ps();
  for (int64_t b0 = 0; b0 < paired; b0 += 16) {
    const int64_t nb = paired - b0 < 16 ? paired - b0 : 16;  // even
    const __mmask16 bm = nb == 16 ? kAll : static_cast<__mmask16>((1u << nb) - 1);
    const int64_t g0 = b0 >> shift;
    const __mmask16 gm = static_cast<__mmask16>((1u << ((nb + per_group - 1) >> shift)) - 1);
    // The MB·R products of 16 blocks: one multiply each here, one vpermps per pair below (with
    // MB > 1 the compiler keeps some of them on the stack; vpermps reads them from there).
    __m512 dx[MB], s[MB][R];
    for (int m = 0; m < MB; ++m) dx[m] = _mm512_mul_ps(_mm512_maskz_loadu_ps(bm, xd[m] + b0), odd_scale);
    for (int j = 0; j < R; ++j) {
      _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(sw[j] + g0) + r.sw_stride * 2 * R), _MM_HINT_T0);
      const __m512 sj = _mm512_maskz_permutexvar_ps(kAll, group_of, scales16(sw[j] + g0, gm));
      for (int m = 0; m < MB; ++m) s[m][j] = _mm512_mul_ps(sj, dx[m]);
    }
    for (int q = 0; q < nb / 2; ++q) {
      decode_pair<F, MB, R>(w, xq, b0 / 2 + q, ahead, l1_ahead, _mm512_add_epi32(pair_lanes, _mm512_set1_epi32(2 * q)), s, acc);
    }
  }
  if (blocks % 2) {  // the trailing unpaired block: upper 32 bytes of codes are zero
    const int64_t b = blocks - 1;
    for (int j = 0; j < R; ++j) {
      const __m512i wvj = last_codes<F>(w[j], b, r.paired_ld);
      const float swb = _cvtsh_ss(sw[j][b / per_group]);
      for (int m = 0; m < MB; ++m) {
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wvj, _mm512_maskz_loadu_epi8(kLow32, xq[m] + b * 32));
        acc[m][j] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAll, dot), _mm512_set1_ps(xd[m][b] * swb), acc[m][j]);
      }
    }
  }
  // Zero points: acc -= Σ_g s_w · z · gs (q4), 128 · Σ_g s_w · gs (q8), 16 groups at a time.
  for (int j = 0; j < R; ++j) {
    const uint8_t* z = F == WeightFormat::Q4 ? r.z + (i + j) * r.z_stride : nullptr;
    for (int64_t g = 0; g < groups; g += 16) {
      const int64_t cnt = groups - g >= 16 ? 16 : groups - g;
      const __mmask16 mk = cnt == 16 ? kAll : static_cast<__mmask16>((1u << cnt) - 1);
      const __m512 sg = scales16(sw[j] + g, mk);
      const __m512 zg = F == WeightFormat::Q4 ? zeros16(z + g / 2, cnt) : _mm512_set1_ps(128.0f);
      for (int m = 0; m < MB; ++m) {
        const __m512 t = _mm512_mul_ps(sg, _mm512_maskz_loadu_ps(mk, r.gs + m * r.gs_stride + g));
        acc[m][j] = _mm512_fnmadd_ps(t, zg, acc[m][j]);
      }
    }
  }
  for (int m = 0; m < MB; ++m) {
    float* y = r.y + m * r.y_stride;
    if constexpr (R == 4) {
      __m128 v = hsum4(acc[m]);
      if (r.bias) v = _mm_add_ps(v, _mm_loadu_ps(r.bias + i));
      _mm_storeu_ps(y + i, v);
    } else {
      for (int j = 0; j < R; ++j) y[i + j] = (r.bias ? r.bias[i + j] : 0.0f) + vm::hsum_avx512(acc[m][j]);
    }
  }
}

template <WeightFormat F, int MB>
QVL_TARGET_AVX512VNNI void tile_mb(const ops::MatmulParams& p, const QActs& a, int64_t m0, int64_t n0, int64_t n1) {
  int64_t n = n0;
  if (decode_group_ok(a.group) && n1 > n0) {
    DecodeRows r;
    r.w = static_cast<const uint8_t*>(p.w.row(n0)), r.sw = q_row_scales(p.w, n0);
    r.z = F == WeightFormat::Q4 ? q4_row_zeros(p.w, n0) : nullptr;
    weight_row_bytes(p.w.format, p.w.ld, &r.row_bytes);
    r.sw_stride = p.w.ld / p.w.group, r.z_stride = q4_zero_bytes(r.sw_stride), r.groups = a.groups, r.blocks = a.blocks, r.per_group = a.group / kQuantBlock;
    r.paired_ld = p.w.ld / kQuantBlock / 2 * 2;
    r.shift = 0;
    while ((int64_t{1} << r.shift) < r.per_group) ++r.shift;
    r.xq = a.q + m0 * a.K, r.xd = a.d + m0 * a.blocks, r.gs = a.gs + m0 * a.groups;
    r.xq_stride = a.K, r.xd_stride = a.blocks, r.gs_stride = a.groups, r.y_stride = p.ldy;
    r.bias = p.bias ? p.bias + n0 : nullptr;
    r.y = p.y + m0 * p.ldy + n0;
    int64_t i = 0;
    for (; n0 + i + 4 <= n1; i += 4) decode_block<F, MB, 4>(r, i);
    for (; n0 + i < n1; ++i) decode_block<F, MB, 1>(r, i);
    return;
  }
  for (; n + 4 <= n1; n += 4) tile_block<F, MB, 4>(p, a, m0, n);
  for (; n < n1; ++n) tile_block<F, MB, 1>(p, a, m0, n);
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

void matmul_q_avx512vnni(const ops::MatmulParams& p, const ExecContext& ctx) { run_qmatmul(p, ctx.pool(), kKernels); }

}  // namespace qvl::cpu
