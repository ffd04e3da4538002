// attention_bf16 on the bf16 block kernels of matmul_bf16 (matmul_bf16_cpu.h): AMX tiles. The
// vision tower, and causal prefill (attention() sends it segments of at least kBf16MinQueryRows
// queries). k and v may be f32 or bf16. The same code on the VDPBF16PS block kernel is the variant
// avx512bf16-tiles, which attention() does not choose (attention_bf16_lanes.cpp is faster there)
// but the parity checks run: on CPUs without tiles it tests all of this but the tile
// instructions, and the AMX block kernel itself runs there on the harness's tile emulator
// (tests/amx_emulated.cpp), where the whole tiles are summed, padding included. Two phases:
//   1. k and v of every (segment, kv head) packed once into the tile layout of the bf16 block
//      kernel (matmul_bf16_cpu.h): k as "weight rows" (one per key, D as the reduction), v as
//      pairs of keys interleaved per output column (the reduction over keys);
//   2. per (segment, head, 64 query rows), the keys in blocks of 128: S = q·kᵀ on the tiles (f32),
//      the weights P = 2^(s·c − m) (c = scale·log2 e) as bf16, O += P·v on the tiles; out = O / Σ P
//      (the sum of the rounded weights: the weights applied sum to one, and a row whose weight is
//      all on one key gets that key's v exactly).
//      m is each row's running maximum of s·c rounded up to an integer, so when a later block
//      raises it the sums and O scale by a power of two (exactly), and every weight rounds to bf16
//      exactly as it would against the final m (rounding commutes with scaling by 2^n): the
//      reference's two-pass softmax with an integer reference point (attention_bf16_ref.cpp),
//      without storing a row's scores for all keys. The blocks' scores, weights and the 64 rows'
//      O stay in L1/L2, and k and v stream once per 64 rows. Causal rows stop at their own key.
// Against the AMX kernel this replaced (32 query rows, each row's scores for all keys in memory,
// then its softmax with exp_avx512), 16 heads of 80 on one Sapphire Rapids pair of threads: 6440
// patches (a 1288x980 image) 326-358 -> 194-206 ms a layer, 1024 patches 11.5 -> 6.8-7.7 ms; the
// 2B vision tower at 1288x980 under precision 'fast' 17.0-17.4 -> 12.8 s. Of the gain, exp2 in
// place of exp_avx512 was 326 -> 242-256 ms. 128 query rows were within 3%, 64 or 256 keys a block
// 4-10% slower.
#include <immintrin.h>

// GCC 12 reports the _mm512_undefined_ps() inside its own unmasked AVX-512 intrinsics (the
// reductions, exp's rounding) as "maybe uninitialized" once inlined; the header's, not this code's.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backends/cpu/attention_bf16_items.h"
#include "backends/cpu/attention_bf16_tiles.h"
#include "backends/cpu/bf16_vec.h"
#include "backends/cpu/matmul_bf16_cpu.h"
#include "backends/cpu/vec_math.h"
#include "core/error.h"
#include "ops/attention.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kQ = 64;      // query rows per work item: two block-kernel row blocks
constexpr int64_t kKeys = 128;  // keys per block of phase 2
constexpr int64_t kSBlock = kBf16Block * kBf16Block, kSBlocks = kKeys / kBf16Block;  // S's 32 x 32 blocks

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// v rows [0, klen) (row stride ldv), D columns, into the block kernel's B layout for O = P·v:
// column block jb (32 of D), key step s (32 keys), tile g (16 columns): row r holds, for each
// column, the pair (v[32s + 2r][col], v[32s + 2r + 1][col]). Keys past klen and columns past D
// pack as zero. T: the stored element (a bf16 cache's values re-round to themselves).
template <class T>
QVL_TARGET_AVX512BF16 void pack_v(const T* v, int64_t ldv, int64_t klen, int64_t D, int64_t kp, int64_t dp,
                                  uint16_t* out) {
  const int64_t steps = kp / kBf16Step;
  const __m512i idx = pair_index();
  for (int64_t jb = 0; jb < dp / kBf16Block; ++jb) {
    for (int64_t s = 0; s < steps; ++s) {
      for (int g = 0; g < 2; ++g) {
        const int64_t d0 = jb * kBf16Block + g * 16, cols = std::min<int64_t>(16, D - d0);
        uint16_t* tile = out + (jb * steps + s) * kBf16StepElems + g * 512;
        for (int r = 0; r < 16; ++r) {
          const int64_t key = s * kBf16Step + 2 * r;
          const __m512 a = key < klen ? load_v16(v + key * ldv + d0, lanes16(cols)) : _mm512_setzero_ps();
          const __m512 b = key + 1 < klen ? load_v16(v + (key + 1) * ldv + d0, lanes16(cols)) : _mm512_setzero_ps();
          _mm512_store_si512(tile + r * 32, pairs(a, b, idx));
        }
      }
    }
  }
}

// Query rows [r0, r0 + rows) of head h as bf16, 32 rows x dp (zeros past D and past `rows`).
QVL_TARGET_AVX512BF16 void load_q(const ops::AttentionParams& p, int64_t r0, int64_t rows, int64_t h, int64_t dp,
                                  uint16_t* qb) {
  for (int64_t r = 0; r < kQ; ++r) {
    uint16_t* dst = qb + r * dp;
    const float* src = p.q + (r0 + r) * p.ldq + h * p.D;
    for (int64_t d = 0; d < dp; d += 32) {
      const int64_t left = r < rows ? p.D - d : 0;
      const __m512 lo = left > 0 ? _mm512_maskz_loadu_ps(lanes16(left), src + d) : _mm512_setzero_ps();
      const __m512 hi = left > 16 ? _mm512_maskz_loadu_ps(lanes16(left - 16), src + d + 16) : _mm512_setzero_ps();
      _mm512_storeu_si512(dst + d, bf16x32(lo, hi));
    }
  }
}

QVL_TARGET_AVX512BF16 inline float hmax(__m512 v) { return _mm512_reduce_max_ps(v); }
QVL_TARGET_AVX512BF16 inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

// 32 weights stored as bf16, and their rounded values summed into `sum` (VDPBF16PS against ones:
// exact products, one instruction for the 32).
QVL_TARGET_AVX512BF16 inline void store_weights(__m512 a, __m512 b, uint16_t* prow, __m512& sum) {
  const __m512bh w = _mm512_cvtne2ps_pbh(b, a);
  sum = _mm512_dpbf16_ps(sum, w, reinterpret_cast<__m512bh>(_mm512_set1_epi16(0x3f80)));  // bf16 1.0
  _mm512_storeu_si512(prow, reinterpret_cast<__m512i>(w));
}

// Raises a row's reference m to top = ceil(max s·c) over its first `valid` scores when that is
// above it; the row's sum l and its dp outputs o then scale by 2^(old m − new m), exactly.
// max(s·c) is taken as (max s)·c, or (min s)·c for c < 0: rounding is monotonic, so the same
// float, and the pass needs no multiply. False when m stays.
QVL_TARGET_AVX512BF16 bool raise_reference(const float* s, int64_t stride, int64_t valid, float c, float& m, __m512& l,
                                           float* o, int64_t dp) {
  const bool up = c >= 0.0f;
  const __m512 inf = _mm512_set1_ps(up ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity());
  __m512 ext = inf;
  for (int64_t j = 0; j < valid; j += 16) {
    const __m512 x = _mm512_mask_loadu_ps(inf, lanes16(valid - j), s + j / 32 * stride + j % 32);
    ext = up ? _mm512_max_ps(ext, x) : _mm512_min_ps(ext, x);
  }
  const float top = std::ceil((up ? hmax(ext) : _mm512_reduce_min_ps(ext)) * c);
  if (!(top > m)) return false;
  if (m != -std::numeric_limits<float>::infinity()) {  // else l and o are still zero
    // scalef takes any exponent: an underflowing factor gives 0, never a wrapped integer.
    const __m512 f = _mm512_scalef_ps(_mm512_set1_ps(1.0f), _mm512_set1_ps(m - top));
    l = _mm512_mul_ps(l, f);
    for (int64_t d = 0; d < dp; d += 16) _mm512_storeu_ps(o + d, _mm512_mul_ps(_mm512_loadu_ps(o + d), f));
  }
  m = top;
  return true;
}

// One query row's weights for a key block of NV x 16 scores (the first `valid` real) in 32-score
// pieces `stride` floats apart: prow gets 2^(s·c − m) as bf16 (zero past `valid`), after m (the
// row's reference, an integer or −inf before the first block) rises to ceil(max s·c) if that is
// above it (raise_reference). The block's rounded weights join l, kept as 16 lanes summed once at
// the end (a horizontal sum per row and block cost a quarter of this function's time).
// m can rise only when some s·c − m is positive (m is an integer, so ceil(x) > m exactly when
// x > m; fused, s·c − m has the sign of the exact difference), and after a row's first blocks
// that is rare: the block's maximum, a pass over the scores and a horizontal reduction, is taken
// only then, and the s·c − m already in registers serve the weights otherwise. The weights are
// the same bits either way.
template <int NV>
QVL_TARGET_AVX512BF16 void block_weights_n(const float* s, int64_t stride, int64_t valid, float c, float& m, __m512& l,
                                           float* o, int64_t dp, uint16_t* prow) {
  const __m512 vc = _mm512_set1_ps(c), zero = _mm512_setzero_ps();
  __m512 y[NV];
  __mmask16 above = 0;
  __m512 ref = _mm512_set1_ps(m);
#pragma GCC unroll 8
  for (int i = 0; i < NV; ++i) {
    y[i] = _mm512_fmsub_ps(_mm512_loadu_ps(s + i / 2 * stride + i % 2 * 16), vc, ref);
    above |= _mm512_mask_cmp_ps_mask(lanes16(valid - 16 * i), y[i], zero, _CMP_GT_OQ);
  }
  if (above && raise_reference(s, stride, valid, c, m, l, o, dp)) {
    ref = _mm512_set1_ps(m);
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) y[i] = _mm512_fmsub_ps(_mm512_loadu_ps(s + i / 2 * stride + i % 2 * 16), vc, ref);
  }
  __m512 sum = l;
#pragma GCC unroll 4
  for (int i = 0; i < NV; i += 2) {
    __m512 a = vm::exp2_avx512(y[i]), b = vm::exp2_avx512(y[i + 1]);
    if (16 * i + 32 > valid) {  // the keys past `valid` weigh nothing
      a = _mm512_maskz_mov_ps(lanes16(valid - 16 * i), a);
      b = _mm512_maskz_mov_ps(lanes16(valid - 16 * i - 16), b);
    }
    store_weights(a, b, prow + 16 * i, sum);
  }
  l = sum;
}

// The same for n scores (a multiple of 32, at most kKeys).
QVL_TARGET_AVX512BF16 void block_weights(const float* s, int64_t stride, int64_t n, int64_t valid, float c, float& m,
                                         __m512& l, float* o, int64_t dp, uint16_t* prow) {
  static_assert(kKeys == 128, "block_weights: one case per 32 keys of a block");
  if (valid <= 0) {  // a causal row's keys ended in an earlier block
    std::fill_n(prow, n, uint16_t{0});
    return;
  }
  switch (n / 32) {
    case 1: return block_weights_n<2>(s, stride, valid, c, m, l, o, dp, prow);
    case 2: return block_weights_n<4>(s, stride, valid, c, m, l, o, dp, prow);
    case 3: return block_weights_n<6>(s, stride, valid, c, m, l, o, dp, prow);
    case 4: return block_weights_n<8>(s, stride, valid, c, m, l, o, dp, prow);
  }
  fail(ErrorCode::Native, "attention_bf16: a key block of " + std::to_string(n) + " scores");
}

struct Layout {
  int64_t dp;                      // D rounded up to 32
  std::vector<int64_t> kp, base;   // per segment: keys rounded up to 32; offset of its packs (u16)
};

QVL_TARGET_AVX512BF16 void work_item(const ops::AttentionParams& p, const Bf16Kernels& k, const Layout& L,
                                     const uint16_t* packs, int64_t s, int64_t h, int64_t r0) {
  const ops::AttentionSegment& g = p.segments[s];
  const int64_t klen = g.k_end - g.k_start, rows = std::min(kQ, g.q_end - r0);
  const int64_t D = p.D, dp = L.dp, kp = L.kp[s], hk = h / (p.Hq / p.Hkv);
  if (klen == 0) {
    for (int64_t r = 0; r < rows; ++r) std::fill_n(p.out + (r0 + r) * p.ldo + h * D, D, 0.0f);
    return;
  }
  // Keys row r sees: all, or under causal those up to its own position (ops/attention.h); the
  // block's last row sees the most, and rows past `rows` are held to it.
  const int64_t first = r0 - g.q_start, shift = klen - (g.q_end - g.q_start);
  auto seen = [&](int64_t r) { return p.causal ? std::min(klen, first + std::min(r, rows - 1) + shift + 1) : klen; };
  const int64_t kspan = std::min(kp, (seen(rows - 1) + kBf16Step - 1) / kBf16Step * kBf16Step);
  const int64_t per_head = kp * dp;  // u16 of one packed k (and of one packed v)
  const uint16_t* kpk = packs + L.base[s] + hk * 2 * per_head;
  const uint16_t* vpk = kpk + per_head;
  uint16_t* qb = static_cast<uint16_t*>(attention_scratch<0>(static_cast<size_t>(kQ * dp * 2)));
  float* S = static_cast<float*>(attention_scratch<1>(static_cast<size_t>(kQ * kKeys * 4)));
  uint16_t* P = static_cast<uint16_t*>(attention_scratch<2>(static_cast<size_t>(kQ * kKeys * 2)));
  float* O = static_cast<float*>(attention_scratch<3>(static_cast<size_t>(kQ * dp * 4)));
  // Rows past `rows` in the last row block run on zero queries: finite, and never written out.
  const int64_t row_blocks = (rows + kBf16Block - 1) / kBf16Block, live = row_blocks * kBf16Block;
  float m[kQ];
  __m512 l[kQ];
  std::fill_n(m, live, -std::numeric_limits<float>::infinity());
  std::fill_n(l, live, _mm512_setzero_ps());
  std::fill_n(O, live * dp, 0.0f);
  load_q(p, r0, rows, h, dp, qb);
  const float c = p.scale * vm::kLog2e;
  const int64_t dsteps = dp / kBf16Step, ksteps = kp / kBf16Step;
  // D pads to a multiple of 32: S = q·kᵀ's last step holds D's last pairs, and O = P·v's last
  // column block D's last columns (a head dim of 80: 8 of 16 pairs, 16 of 32 columns).
  const Bf16BlockShape s_shape{static_cast<int>((D - (dsteps - 1) * kBf16Step + 1) / 2), kBf16Block};
  auto o_shape = [&](int64_t jb) { return Bf16BlockShape{16, D - jb > 16 ? 32 : 16}; };
  for (int64_t kb = 0; kb < kspan; kb += kKeys) {
    const int64_t n = std::min(kKeys, kspan - kb);
    // Each key tile's packed k is read from L2 once and reused from L1 by the second row block.
    // S holds 32 x 32 blocks one after another (rows 128 bytes apart), not rows of the key block:
    // with 512-byte rows the tile stores met in L1 sets and S = q·kᵀ ran at 27 cycles a TDPBF16PS
    // against 16-20.
    for (int64_t kt = 0; kt < n; kt += kBf16Block) {
      const uint16_t* kt_pack = kpk + ((kb + kt) / kBf16Block) * dsteps * kBf16StepElems;
      for (int64_t rb = 0; rb < row_blocks; ++rb)
        k.block(qb + rb * kBf16Block * dp, dp, kt_pack, dsteps, S + (rb * kSBlocks + kt / kBf16Block) * kSBlock, kBf16Block, false,
                s_shape);
    }
    for (int64_t r = 0; r < live; ++r) {
      const float* sr = S + (r / kBf16Block) * kSBlocks * kSBlock + (r % kBf16Block) * kBf16Block;
      block_weights(sr, kSBlock, n, std::min(n, seen(r) - kb), c, m[r], l[r], O + r * dp, dp, P + r * kKeys);
    }
    for (int64_t jb = 0; jb < dp; jb += kBf16Block) {
      const uint16_t* v_pack = vpk + ((jb / kBf16Block) * ksteps + kb / kBf16Step) * kBf16StepElems;
      for (int64_t rb = 0; rb < row_blocks; ++rb)
        k.block(P + rb * kBf16Block * kKeys, kKeys, v_pack, n / kBf16Step, O + rb * kBf16Block * dp + jb, dp, true, o_shape(jb));
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 inv = _mm512_set1_ps(1.0f / hsum(l[r]));
    float* o = p.out + (r0 + r) * p.ldo + h * D;
    for (int64_t d = 0; d < D; d += 16) _mm512_mask_storeu_ps(o + d, lanes16(D - d), _mm512_mul_ps(_mm512_loadu_ps(O + r * dp + d), inv));
  }
}

}  // namespace

void attention_bf16_tiles(const ops::AttentionParams& p, const ExecContext& ctx, const Bf16Kernels& k) {
  if (p.n_segments == 0) return;
  Layout L;
  L.dp = round_up(p.D, kBf16Step);
  int64_t total = 0;
  for (int64_t s = 0; s < p.n_segments; ++s) {
    const int64_t kp = round_up(p.segments[s].k_end - p.segments[s].k_start, kBf16Step);
    L.kp.push_back(kp);
    L.base.push_back(total);
    total += p.Hkv * 2 * kp * L.dp;
  }
  const PackedKv buffer(ctx, static_cast<size_t>(std::max<int64_t>(total, 32)) * 2);
  uint16_t* packs = static_cast<uint16_t*>(buffer.data());
  for_each_kv_head(p, ctx, [&](int64_t s, int64_t hk) {
    const ops::AttentionSegment& g = p.segments[s];
    const int64_t klen = g.k_end - g.k_start, kp = L.kp[s];
    if (kp == 0) return;
    uint16_t* kpk = packs + L.base[s] + hk * 2 * kp * L.dp;
    ops::visit_kv_type(p.kv_dtype, [&](auto t) {
      using T = decltype(t);
      pack_bf16_panels({ops::segment_keys<T>(p, g) + hk * p.D, p.ldk, p.D, p.kv_dtype}, 0, klen, 0, L.dp, kpk);
      pack_v(ops::segment_values<T>(p, g) + hk * p.D, p.ldv, klen, p.D, kp, L.dp, kpk + kp * L.dp);
    });
  });
  // AMX loads its tile configuration before a thread's items and releases the tiles after.
  for_each_query_block(
      p, ctx, kQ, [&](int64_t s, int64_t h, int64_t r0) { work_item(p, k, L, packs, s, h, r0); }, k.begin, k.end);
}

void attention_bf16_amx(const ops::AttentionParams& p, const ExecContext& ctx) { attention_bf16_tiles(p, ctx, amx_bf16_kernels()); }
void attention_bf16_tiles_avx512bf16(const ops::AttentionParams& p, const ExecContext& ctx) {
  attention_bf16_tiles(p, ctx, avx512bf16_bf16_kernels());
}

}  // namespace qvl::cpu
