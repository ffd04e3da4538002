// attention_bf16 on VDPBF16PS (CPUs with AVX512-BF16 but no AMX: Zen 4/5), the queries across the
// vector lanes: a work item is 64 queries of one head, four vectors of 16, and every score, weight,
// running maximum and output of a query sits in that query's lane. So the softmax needs no
// horizontal step (a lane's maximum and sum are vertical max and add), and neither product pads
// the head dim: S = q·kᵀ broadcasts a key's d-pair against the queries' pairs, O = P·v a value's
// key-pair against the queries' weight pairs, each register tile 6 keys (or 6 dims) x 4 vectors.
//   1. k and v of every (segment, kv head) are rounded to bf16 once: k as one row of d-pairs per
//      key, v as one row per key-pair (its D elements each the two keys' values);
//   2. per (segment, head, 64 queries; their q transposed into lanes), the keys in blocks of
//      kKeys: S (f32) into L1, the weights 2^(s·c − m) (c = scale·log2 e) as bf16 pairs of keys,
//      their rounded values summed per lane (VDPBF16PS against ones), O += P·v; out = O / Σ P,
//      transposed back into rows.
// m is an integer at or above each query's running maximum of s·c (attention_bf16_tiles.cpp
// explains why that reproduces the reference's two-pass softmax). The first block sets it; a later
// block's weights are computed against the current m, and only when some s·c − m is positive
// (rare: m keeps kHeadroom above the maximum) is m raised, O and the sum rescaled by a power of
// two, and the block's weights computed again.
// Against the row-major tiles (attention_bf16_tiles.cpp on the VDPBF16PS block kernel, the variant
// this replaced), 16 heads of 80 on one Zen 5 pair of threads, in one process: 6440 patches (a
// 1288x980 image) 304-310 -> 287-299 ms a layer, 1024 patches 8.8-9.0 -> 8.3 ms; the 2B vision
// tower at 1288x980 under precision 'fast' 20.8 -> 20.35 s; causal prefill at the 2B language
// model's heads (12 of 128, 2 kv heads) 512 tokens 1.58 -> 1.60 ms, 2048 19.2 -> 18.6 ms. In L1
// a 6 x 4 S tile runs at 98% of the VDPBF16PS peak; in the kernel S reaches ~93% and O = P·v
// ~85%. Tried and slower or no faster: the block's weights taken tile by tile (S never leaves L1),
// 64 or 256 keys a block, 32-query items with 12-row tiles, v packed as one panel per dim tile,
// k and v as embedded broadcasts of VDPBF16PS (5-17% slower).
#include <immintrin.h>

// GCC 12 reports the undefined vectors inside its own unmasked AVX-512 intrinsics (reductions,
// unpacks, shuffles) as "(maybe) uninitialized" once inlined; the header's, not this code's.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "backends/cpu/attention_bf16_items.h"
#include "backends/cpu/bf16_vec.h"
#include "backends/cpu/vec_math.h"
#include "core/error.h"
#include "ops/attention.h"

namespace qvl::cpu {

namespace {

constexpr int kQV = 4;              // query vectors per work item
constexpr int64_t kQ = 16 * kQV;    // queries per work item
constexpr int64_t kKeys = 128;      // keys per block
constexpr int kTile = 6;            // keys of an S tile; dims of an O tile
// m is raised to this much above the block's ceil(max s·c): any integer at or above the maximum
// gives the same result (see attention_bf16_ref.cpp; the weights lose nothing to underflow until
// 2^-118 of the largest), and with 16 queries a vector, raising to the maximum itself had some
// lane rise in most blocks, each time a rescale of O and a second pass over the block (6440
// patches: 312 -> 297 ms). 200 fails the parity checks (weights underflow).
constexpr float kHeadroom = 8.0f;

QVL_TARGET_AVX512BF16 inline __m512bh as_bh(__m512i v) { return reinterpret_cast<__m512bh>(v); }
QVL_TARGET_AVX512BF16 inline __m512bh bcast(uint32_t pair) { return as_bh(_mm512_set1_epi32(static_cast<int>(pair))); }

// r[0..15] as 16 x 16 32-bit elements, transposed in place (element j of row i becomes element
// i of row j): queries go into lanes and out of them this way, 64 shuffles where scatters and
// gathers took one access per element.
QVL_TARGET_AVX512BF16 void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // 128-bit block k of r[i + c]: column 4k + c of rows i..i+3
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int h = 0; h < 16; h += 8)
    for (int c = 0; c < 4; ++c) {
      t[h + c] = _mm512_shuffle_i32x4(r[h + c], r[h + 4 + c], 0x88);
      t[h + 4 + c] = _mm512_shuffle_i32x4(r[h + c], r[h + 4 + c], 0xdd);
    }
  for (int c = 0; c < 8; ++c) {
    r[c] = _mm512_shuffle_i32x4(t[c], t[8 + c], 0x88);
    r[8 + c] = _mm512_shuffle_i32x4(t[c], t[8 + c], 0xdd);
  }
}

// Both products, as c rows [0, R) (row r: 64 floats at c + r·kQ) = (Accumulate ? c : 0) +
// Σ_i a[i·step + r·row] · b[i] over n pairs, a's pair broadcast against b[i]'s 64 query pairs
// (kQ u32 a row): S = k·q (a: k rows, step 1, row dpairs; b: q's d-pairs) and O += v·P (a: v,
// step D, row 1; b: the weights' key-pairs).
template <int R, bool Accumulate>
__attribute__((noinline)) QVL_TARGET_AVX512BF16 void lane_tile(const uint32_t* a, int64_t step, int64_t row, const uint32_t* b,
                                                             int64_t n, float* c) {
  __m512 acc[R][kQV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kQV; ++v) acc[r][v] = Accumulate ? _mm512_load_ps(c + r * kQ + 16 * v) : _mm512_setzero_ps();
  for (int64_t i = 0; i < n; ++i) {
    __m512bh x[kQV];
#pragma GCC unroll 4
    for (int v = 0; v < kQV; ++v) x[v] = as_bh(_mm512_load_si512(b + i * kQ + 16 * v));
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh y = bcast(a[i * step + r * row]);
#pragma GCC unroll 4
      for (int v = 0; v < kQV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], y, x[v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kQV; ++v) _mm512_store_ps(c + r * kQ + 16 * v, acc[r][v]);
}

// lane_tile for R rows, 1..kTile (keys for S, dims for O).
template <bool Accumulate>
QVL_TARGET_AVX512BF16 void lane_rows(int64_t R, const uint32_t* a, int64_t step, int64_t row, const uint32_t* b, int64_t n,
                                     float* c) {
  static_assert(kTile == 6, "one case per row count");
  switch (R) {
    case 1: return lane_tile<1, Accumulate>(a, step, row, b, n, c);
    case 2: return lane_tile<2, Accumulate>(a, step, row, b, n, c);
    case 3: return lane_tile<3, Accumulate>(a, step, row, b, n, c);
    case 4: return lane_tile<4, Accumulate>(a, step, row, b, n, c);
    case 5: return lane_tile<5, Accumulate>(a, step, row, b, n, c);
    case 6: return lane_tile<6, Accumulate>(a, step, row, b, n, c);
  }
  fail(ErrorCode::Native, "attention_bf16: a tile of " + std::to_string(R) + " rows");
}

// One query vector's weights for keys [kb, kb + n) of a block: S row i (key kb + i) at s + i·kQ,
// weight pair i stored at p + i·kQ; lane q weighs key j only if j <= lim[q] (Masked false: the
// caller knows every lane weighs every key of the block). The block's rounded weights are summed
// into `sum`. With Check, returns the lanes where some weighed s·c − m is positive (their m must
// rise: the weights stored are then not final).
template <bool Check, bool Masked>
QVL_TARGET_AVX512BF16 __mmask16 weight_pass(const float* s, int64_t n, int64_t kb, __m512i lim, __m512 vc, __m512 m,
                                            __m512i idx, __m512& sum, uint32_t* p) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512bh ones = as_bh(_mm512_set1_epi16(0x3f80));  // bf16 1.0
  __mmask16 above = 0;
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 2) {
    const bool two = i + 1 < n;
    const __mmask16 k0 = Masked ? _mm512_cmpge_epi32_mask(lim, _mm512_set1_epi32(static_cast<int>(kb + i))) : 0xffff;
    const __mmask16 k1 = !two ? 0 : Masked ? _mm512_cmpge_epi32_mask(lim, _mm512_set1_epi32(static_cast<int>(kb + i + 1))) : 0xffff;
    const __m512 y0 = _mm512_fmsub_ps(_mm512_load_ps(s + i * kQ), vc, m);
    const __m512 y1 = two ? _mm512_fmsub_ps(_mm512_load_ps(s + (i + 1) * kQ), vc, m) : zero;
    if (Check) above |= _mm512_mask_cmp_ps_mask(k0, y0, zero, _CMP_GT_OQ) | _mm512_mask_cmp_ps_mask(k1, y1, zero, _CMP_GT_OQ);
    const __m512 e0 = Masked ? _mm512_maskz_mov_ps(k0, vm::exp2_avx512(y0)) : vm::exp2_avx512(y0);
    const __m512 e1 = Masked || !two ? _mm512_maskz_mov_ps(k1, vm::exp2_avx512(y1)) : vm::exp2_avx512(y1);
    const __m512i w = pairs(e0, e1, idx);
    acc = _mm512_dpbf16_ps(acc, as_bh(w), ones);
    _mm512_store_si512(p + (i / 2) * kQ, w);
  }
  sum = acc;
  return above;
}

// Raises m on the lanes in `above` to ceil(max s·c) + kHeadroom over the block's weighed keys, and
// scales those lanes' sum l and outputs o (D rows kQ floats apart) by 2^(old m − new m), exactly.
// max(s·c) is taken as (max s)·c, or (min s)·c for c < 0: rounding is monotonic, so the same float.
QVL_TARGET_AVX512BF16 void raise_reference(const float* s, int64_t n, int64_t kb, __m512i lim, float c, __mmask16 above,
                                           __m512& m, __m512& l, float* o, int64_t D) {
  const bool up = c >= 0.0f;
  const __m512 inf = _mm512_set1_ps(up ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity());
  __m512 ext = inf;
  for (int64_t i = 0; i < n; ++i) {
    const __mmask16 k = _mm512_cmpge_epi32_mask(lim, _mm512_set1_epi32(static_cast<int>(kb + i)));
    const __m512 x = _mm512_mask_mov_ps(inf, k, _mm512_load_ps(s + i * kQ));
    ext = up ? _mm512_max_ps(ext, x) : _mm512_min_ps(ext, x);
  }
  const __m512 top = _mm512_max_ps(
      m, _mm512_add_ps(_mm512_roundscale_ps(_mm512_mul_ps(ext, _mm512_set1_ps(c)), _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC),
                       _mm512_set1_ps(kHeadroom)));
  // scalef takes any exponent: an underflowing factor (or m = −inf: nothing summed yet) gives 0.
  const __m512 f = _mm512_scalef_ps(_mm512_set1_ps(1.0f), _mm512_sub_ps(m, top));
  l = _mm512_mask_mul_ps(l, above, l, f);
  for (int64_t d = 0; d < D; ++d) _mm512_store_ps(o + d * kQ, _mm512_mask_mul_ps(_mm512_load_ps(o + d * kQ), above, _mm512_load_ps(o + d * kQ), f));
  m = _mm512_mask_mov_ps(m, above, top);
}

struct Layout {
  int64_t dpairs;                          // ceil(D / 2)
  std::vector<int64_t> kpairs, base, per;  // per segment: ceil(keys / 2); offset of its packs; u32 per kv head
};

// k rows [0, klen) (stride ldk) as bf16 d-pairs, dpairs a row (the odd D's last pair (k, 0)).
template <class T>
QVL_TARGET_AVX512BF16 void pack_k(const T* k, int64_t ldk, int64_t klen, int64_t D, int64_t dpairs, uint32_t* out) {
  for (int64_t j = 0; j < klen; ++j) {
    const T* row = k + j * ldk;
    for (int64_t d = 0; d < D; d += 32) {
      // A d-pair is two neighbours: the 32 values converted in order are 16 pairs.
      const __m512 lo = load_v16(row + d, lanes16(D - d)), hi = load_v16(row + d + 16, lanes16(D - d - 16));
      _mm512_mask_storeu_epi32(out + j * dpairs + d / 2, lanes16(dpairs - d / 2),
                               bf16x32(lo, hi));
    }
  }
}

// v rows [0, klen) as kpairs rows of D key-pairs: row i, dim d = (v[2i][d], v[2i+1][d]), a
// missing last key 0.
template <class T>
QVL_TARGET_AVX512BF16 void pack_v(const T* v, int64_t ldv, int64_t klen, int64_t D, int64_t kpairs, uint32_t* out) {
  const __m512i idx = pair_index();
  for (int64_t i = 0; i < kpairs; ++i) {
    const T* a = v + 2 * i * ldv;
    const bool two = 2 * i + 1 < klen;
    for (int64_t d = 0; d < D; d += 16) {
      const __mmask16 k = lanes16(D - d);
      const __m512 x = load_v16(a + d, k), y = two ? load_v16(a + ldv + d, k) : _mm512_setzero_ps();
      _mm512_mask_storeu_epi32(out + i * D + d, k, pairs(x, y, idx));
    }
  }
}

// Query rows [r0, r0 + rows) of head h as dpairs rows of 64 query pairs (zeros past `rows`).
QVL_TARGET_AVX512BF16 void pack_q(const ops::AttentionParams& p, int64_t r0, int64_t rows, int64_t h, int64_t dpairs,
                                  uint32_t* qp) {
  __m512i x[16];
  for (int64_t v = 0; v < kQV; ++v) {
    for (int64_t d = 0; d < 2 * dpairs; d += 32) {
      for (int64_t t = 0; t < 16; ++t) {
        const int64_t r = 16 * v + t, left = r < rows ? p.D - d : 0;
        const float* src = r < rows ? p.q + (r0 + r) * p.ldq + h * p.D + d : p.q;  // past `rows`: nothing read
        const __m512 lo = _mm512_maskz_loadu_ps(lanes16(left), src), hi = _mm512_maskz_loadu_ps(lanes16(left - 16), src + 16);
        x[t] = bf16x32(lo, hi);  // 16 d-pairs
      }
      transpose16(x);
      const int64_t n = std::min<int64_t>(16, dpairs - d / 2);
      for (int64_t j = 0; j < n; ++j) _mm512_store_si512(qp + (d / 2 + j) * kQ + 16 * v, x[j]);
    }
  }
}

// out rows [r0, r0 + rows) of head h = O (D rows of 64 queries) scaled per query by inv.
QVL_TARGET_AVX512BF16 void store_out(const ops::AttentionParams& p, int64_t r0, int64_t rows, int64_t h, const float* O,
                                     const float* inv) {
  const int64_t D = p.D;
  __m512i x[16];
  for (int64_t v = 0; v < kQV && 16 * v < rows; ++v) {
    const __m512 scale = _mm512_load_ps(inv + 16 * v);
    for (int64_t d = 0; d < D; d += 16) {
      for (int64_t t = 0; t < 16; ++t)
        x[t] = d + t < D ? _mm512_castps_si512(_mm512_mul_ps(_mm512_load_ps(O + (d + t) * kQ + 16 * v), scale)) : _mm512_setzero_si512();
      transpose16(x);
      const int64_t n = std::min<int64_t>(16, rows - 16 * v);
      for (int64_t t = 0; t < n; ++t)
        _mm512_mask_storeu_ps(p.out + (r0 + 16 * v + t) * p.ldo + h * D + d, lanes16(D - d), _mm512_castsi512_ps(x[t]));
    }
  }
}

QVL_TARGET_AVX512BF16 void work_item(const ops::AttentionParams& p, const Layout& L, const uint32_t* packs, int64_t s,
                                     int64_t h, int64_t r0) {
  const ops::AttentionSegment& g = p.segments[s];
  const int64_t klen = g.k_end - g.k_start, rows = std::min(kQ, g.q_end - r0);
  const int64_t D = p.D, dpairs = L.dpairs, hk = h / (p.Hq / p.Hkv);
  // Keys query r sees: all, or under causal those up to its own position (ops/attention.h); lanes
  // past `rows` are held to the last row.
  const int64_t first = r0 - g.q_start, shift = klen - (g.q_end - g.q_start);
  alignas(64) int32_t lim[kQ];
  for (int64_t r = 0; r < kQ; ++r) {
    const int64_t seen = p.causal ? std::min(klen, first + std::min(r, rows - 1) + shift + 1) : klen;
    lim[r] = static_cast<int32_t>(std::max<int64_t>(seen, 0) - 1);
  }
  const int64_t kspan = static_cast<int64_t>(lim[kQ - 1]) + 1;
  if (kspan <= 0) {  // no keys (an empty segment, or causal rows before the segment's first key)
    for (int64_t r = 0; r < rows; ++r) std::fill_n(p.out + (r0 + r) * p.ldo + h * D, D, 0.0f);
    return;
  }
  const uint32_t* kpk = packs + L.base[s] + hk * L.per[s];
  const uint32_t* vpk = kpk + klen * dpairs;
  uint32_t* qp = static_cast<uint32_t*>(attention_scratch<0>(static_cast<size_t>(dpairs * kQ * 4)));
  float* S = static_cast<float*>(attention_scratch<1>(static_cast<size_t>(kKeys * kQ * 4)));
  uint32_t* P = static_cast<uint32_t*>(attention_scratch<2>(static_cast<size_t>(kKeys / 2 * kQ * 4)));
  float* O = static_cast<float*>(attention_scratch<3>(static_cast<size_t>(D * kQ * 4)));
  std::fill_n(O, D * kQ, 0.0f);
  pack_q(p, r0, rows, h, dpairs, qp);
  const float c = p.scale * vm::kLog2e;
  const __m512 vc = _mm512_set1_ps(c);
  const __m512i idx = pair_index();
  __m512 m[kQV], l[kQV];
  __m512i lims[kQV];
  for (int v = 0; v < kQV; ++v) {
    m[v] = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    l[v] = _mm512_setzero_ps();
    lims[v] = _mm512_load_si512(lim + 16 * v);
  }
  // O's dims in tiles of at most kTile, as even as they come (80: 10 of 6, 4 of 5).
  const int64_t groups = (D + kTile - 1) / kTile, small = D / groups, big = D % groups;
  for (int64_t kb = 0; kb < kspan; kb += kKeys) {
    const int64_t n = std::min(kKeys, kspan - kb);
    bool every[kQV];  // every lane of the vector weighs every key of the block
    for (int v = 0; v < kQV; ++v) every[v] = _mm512_reduce_min_epi32(lims[v]) >= kb + n - 1;
    for (int64_t t = 0; t < n; t += kTile) lane_rows<false>(std::min<int64_t>(kTile, n - t), kpk + (kb + t) * dpairs, 1, dpairs, qp, dpairs, S + t * kQ);
    for (int v = 0; v < kQV; ++v) {
      // Vectors wholly past `rows` keep whatever weights P held: their lanes of O are never read.
      if (16 * v >= rows) break;
      // The first block sets every lane's m (a lane weighs key 0 if it weighs any): no optimistic
      // pass there.
      __m512 sum = _mm512_setzero_ps();
      const __mmask16 above = kb == 0 ? _mm512_cmpge_epi32_mask(lims[v], _mm512_setzero_si512())
                              : every[v] ? weight_pass<true, false>(S + 16 * v, n, kb, lims[v], vc, m[v], idx, sum, P + 16 * v)
                                         : weight_pass<true, true>(S + 16 * v, n, kb, lims[v], vc, m[v], idx, sum, P + 16 * v);
      if (kb == 0 || above) {
        if (above) raise_reference(S + 16 * v, n, kb, lims[v], c, above, m[v], l[v], O + 16 * v, D);
        weight_pass<false, true>(S + 16 * v, n, kb, lims[v], vc, m[v], idx, sum, P + 16 * v);
      }
      l[v] = _mm512_add_ps(l[v], sum);
    }
    const int64_t npairs = (n + 1) / 2;
    for (int64_t gi = 0, d0 = 0; gi < groups; ++gi) {
      const int64_t R = small + (gi < big ? 1 : 0);
      lane_rows<true>(R, vpk + (kb / 2) * D + d0, D, 1, P, npairs, O + d0 * kQ);
      d0 += R;
    }
  }
  alignas(64) float inv[kQ];
  for (int v = 0; v < kQV; ++v) {
    // A lane with no key weighed has l = 0 and O = 0: its output is 0.
    const __mmask16 some = _mm512_cmp_ps_mask(l[v], _mm512_setzero_ps(), _CMP_GT_OQ);
    _mm512_store_ps(inv + 16 * v, _mm512_maskz_div_ps(some, _mm512_set1_ps(1.0f), l[v]));
  }
  store_out(p, r0, rows, h, O, inv);
}

}  // namespace

void attention_bf16_avx512bf16(const ops::AttentionParams& p, const ExecContext& ctx) {
  if (p.n_segments == 0) return;
  Layout L;
  L.dpairs = (p.D + 1) / 2;
  int64_t total = 0;
  for (int64_t s = 0; s < p.n_segments; ++s) {
    const int64_t klen = p.segments[s].k_end - p.segments[s].k_start;
    // Key indices and the lanes' limits are 32-bit in the kernels.
    QVL_CHECK(klen < (int64_t{1} << 30), Input, "attention_bf16: a segment of " + std::to_string(klen) + " keys (at most 2^30)");
    L.kpairs.push_back((klen + 1) / 2);
    L.base.push_back(total);
    L.per.push_back(klen * L.dpairs + p.D * L.kpairs.back());
    total += p.Hkv * L.per.back();
  }
  const PackedKv buffer(ctx, static_cast<size_t>(std::max<int64_t>(total, 16)) * 4);
  uint32_t* packs = static_cast<uint32_t*>(buffer.data());
  for_each_kv_head(p, ctx, [&](int64_t s, int64_t hk) {
    const ops::AttentionSegment& g = p.segments[s];
    const int64_t klen = g.k_end - g.k_start;
    if (klen == 0) return;
    uint32_t* kpk = packs + L.base[s] + hk * L.per[s];
    ops::visit_kv_type(p.kv_dtype, [&](auto x) {
      using T = decltype(x);
      pack_k(ops::segment_keys<T>(p, g) + hk * p.D, p.ldk, klen, p.D, L.dpairs, kpk);
      pack_v(ops::segment_values<T>(p, g) + hk * p.D, p.ldv, klen, p.D, L.kpairs[s], kpk + klen * L.dpairs);
    });
  });
  for_each_query_block(p, ctx, kQ, [&](int64_t s, int64_t h, int64_t r0) { work_item(p, L, packs, s, h, r0); });
}

}  // namespace qvl::cpu
