// attention_bf16_decode on VDPBF16PS: attention_bf16's arithmetic (ops/attention.h) for decode
// steps, a few query rows per kv head against a long KV cache, where the other attention_bf16
// kernels would pack every key and value for one row (attention_bf16_lanes.cpp holds 64 queries a
// work item). The shape of the exact decode path (attention_tiled.h): a segment's keys in chunks
// of kDecodeChunk over every kv head, consecutive chunks a thread, the chunks' partial results
// merged in chunk order by the thread that finishes the last one, so the bits do not depend on the
// thread count; head dims along the lanes, each key loaded once for all the query heads that share
// its kv head (rows in groups of up to kRowMax).
//   S = q·k: q rounded to bf16 once, each key's stored bf16 pairs (or its f32 values rounded) fed
//     to VDPBF16PS against every row; 16 keys' sums leave as one vector a row (vm::hsum16_avx512).
//   weights: y = s·c (c = scale·log2 e), per row an integer M at or above every y seen so far,
//     weight 2^(y − M) rounded to bf16, the rounded weights summed in f32. A later tile with a
//     larger maximum raises M and scales O and the sum by 2^(old − new), exactly.
//   O += P·v on pairs of keys: two keys' value vectors interleaved (unpacklo/hi_epi16) are
//     VDPBF16PS's operand against the rows' weight pairs, so O's lanes hold each 32-dim block's
//     dims in the unpack order (8i..8i+3 in the low vector, 8i+4..8i+7 in the high one) until
//     they are written.
// Chunks merge by powers of two as well (their M are integers), so the result is the reference's
// single pass up to f32 summation order (attention_bf16_ref.cpp).
// Against the exact AVX-512 decode kernel over the same bf16 cache, the 2B model's shape (28 layers,
// 12 heads on 2 kv heads of 128) on 2 Zen 5 threads: 512 cached tokens 0.83 -> 0.47 ms a step,
// 4096 6.5 -> 5.4 ms (npm run bench -- decode, the host's bandwidth at half its usual); in the
// 2B model under 'fast' with q4 weights at 2789 tokens 4.1-4.4 -> 2.9 ms of a step's attention.
// Per key and kv head (cache in L2, one thread) S takes ~7 ns, the weights ~2.5, O ~3: S runs
// at half VDPBF16PS's rate. Tried and slower: 4 keys a block at 6 rows (1.6x the time), keys
// across the lanes (16 keys' d-pairs transposed in registers against broadcast q pairs: 1.1x).
#include <immintrin.h>

// GCC 12 reports the undefined vectors inside its own unmasked AVX-512 intrinsics (reductions,
// unpacks, shuffles) as "(maybe) uninitialized" once inlined; the header's, not this code's.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/attention_tiled.h"
#include "backends/cpu/bf16_vec.h"
#include "backends/cpu/thread_scratch.h"
#include "backends/cpu/vec_math.h"
#include "core/error.h"
#include "ops/attention.h"

namespace qvl::cpu {

namespace {

constexpr int kRowMax = 8;                     // rows of a group: the registers of qk_tile and pv_tile
constexpr int kTileKeys = attn::kKeyTile;      // keys per tile (S and the weights stay in L1)
constexpr int kRowPad = kTileKeys + 16;        // S and weight rows: a 16-key block may run past nk
constexpr int64_t kChunk = attn::kDecodeChunk;  // keys per work item

QVL_TARGET_AVX512BF16 inline __m512bh as_bh(__m512i v) { return reinterpret_cast<__m512bh>(v); }

// One group of rows of one kv head (row r = query r / G of the segment, head hk·G + r % G) through
// one chunk's keys. Q and O rows are DP (D rounded up to 32) long; O in the unpack order.
struct Group {
  int R = 0;
  int32_t reach = 0;  // keys the group's last row sees (its rows see no more)
  uint16_t* Q = nullptr;
  float* O = nullptr;
  float* S = nullptr;
  uint16_t* W = nullptr;
  float M[kRowMax], l[kRowMax], alpha[kRowMax];
  int32_t lim[kRowMax];
};

// S[r][j] = q_r · k_j for R rows and keys [0, nk) (a 16-key block past nk repeats the last key;
// those sums are never weighed). KB keys at a time keep R·KB sums in registers; NV: D / 32 when
// fixed at compile time (D = 64, 128: no tail masks), 0 when read from DP.
template <int R, int NV, class T>
QVL_TARGET_AVX512BF16 void qk_tile(const uint16_t* Q, int DP, int D, const T* k, int64_t ldk, int nk, float* S) {
  constexpr int KB = R <= 2 ? 8 : R <= 4 ? 4 : 2;
  const int nv = NV > 0 ? NV : DP / 32;
  alignas(64) __m512 sums[16 * R];
  const T* kp[16];
  for (int j0 = 0; j0 < nk; j0 += 16) {
    for (int j = 0; j < 16; ++j) {
      kp[j] = k + std::min(j0 + j, nk - 1) * ldk;
      if (j0 + j < nk) attn::prefetch_next_tile(kp[j], ldk, D * static_cast<int>(sizeof(T)));
    }
    for (int jb = 0; jb < 16; jb += KB) {
      __m512 acc[R * KB];
#pragma GCC unroll 16
      for (int i = 0; i < R * KB; ++i) acc[i] = _mm512_setzero_ps();
#pragma GCC unroll 4
      for (int w = 0; w < nv; ++w) {
        __m512bh kv[KB];
#pragma GCC unroll 8
        for (int j = 0; j < KB; ++j) kv[j] = as_bh(load_bf16x32(kp[jb + j] + 32 * w, NV > 0 ? 32 : D - 32 * w));
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const __m512bh q = as_bh(_mm512_load_si512(Q + static_cast<size_t>(r) * DP + 32 * w));
#pragma GCC unroll 8
          for (int j = 0; j < KB; ++j) acc[r * KB + j] = _mm512_dpbf16_ps(acc[r * KB + j], q, kv[j]);
        }
      }
#pragma GCC unroll 16
      for (int i = 0; i < R * KB; ++i) sums[(i / KB) * 16 + jb + i % KB] = acc[i];
    }
    for (int r = 0; r < R; ++r) _mm512_storeu_ps(S + static_cast<size_t>(r) * kRowPad + j0, vm::hsum16_avx512(sums + 16 * r));
  }
}

// The weights of keys [kt, kt + nk) for each row (0 past the row's limit and past nk, so the odd
// key of a last pair weighs nothing), M raised where the tile's largest y passes it, and alpha the
// factor O and l take for that.
QVL_TARGET_AVX512BF16 void weigh(Group& g, int nk, int32_t kt, float c) {
  const __m512 vc = _mm512_set1_ps(c), floor = _mm512_set1_ps(-200.0f);
  for (int r = 0; r < g.R; ++r) {
    const float* s = g.S + static_cast<size_t>(r) * kRowPad;
    uint16_t* w = g.W + static_cast<size_t>(r) * kRowPad;
    const int valid = std::max(0, std::min(nk, g.lim[r] - kt));
    g.alpha[r] = 1.0f;
    if (valid == 0) {
      std::fill_n(w, kRowPad, uint16_t{0});
      continue;
    }
    __m512 mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    for (int j = 0; j < valid; j += 16) mx = _mm512_mask_max_ps(mx, lanes16(valid - j), mx, _mm512_mul_ps(_mm512_loadu_ps(s + j), vc));
    const float top = std::max(g.M[r], std::ceil(_mm512_reduce_max_ps(mx)));
    // Both integers (or M = −inf before the first key: O and l are still 0).
    if (g.M[r] != -std::numeric_limits<float>::infinity()) g.alpha[r] = std::exp2(g.M[r] - top);
    g.M[r] = top;
    const __m512 neg = _mm512_set1_ps(-top);
    __m512 sum = _mm512_setzero_ps();
    for (int j = 0; j < nk; j += 16) {
      // exp2 of −∞ or NaN would be NaN: below −200 the weight is 0 in bf16 anyway.
      const __m512 y = _mm512_max_ps(_mm512_fmadd_ps(_mm512_loadu_ps(s + j), vc, neg), floor);
      const __m256i wb = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_maskz_mov_ps(lanes16(valid - j), vm::exp2_avx512(y))));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(w + j), wb);
      sum = _mm512_add_ps(sum, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(wb), 16)));
    }
    g.l[r] = g.l[r] * g.alpha[r] + _mm512_reduce_add_ps(sum);
  }
}

// One pair of keys (va, vb = va + ldv; `two` false: vb is past the tile and counts as 0) into the
// sums of the 32-dim blocks [b0, b0 + W): the blocks' interleaved values first, then each row's
// weight pair broadcast once for all of them.
template <int R, int W, bool Full, class T>
QVL_TARGET_AVX512BF16 inline void pv_pair(const Group& g, const T* va, int64_t ldv, bool two, int i, int D, int b0,
                                          __m512 (&acc)[R * 2 * W]) {
  __m512bh x[2 * W];
#pragma GCC unroll 4
  for (int c = 0; c < W; ++c) {
    const int d = 32 * (b0 + c);
    attn::prefetch_next_tile(va + d, ldv, 32 * static_cast<int>(sizeof(T)));
    if (two) attn::prefetch_next_tile(va + ldv + d, ldv, 32 * static_cast<int>(sizeof(T)));
    const __m512i a = load_bf16x32(va + d, Full ? 32 : D - d);
    const __m512i b = two ? load_bf16x32(va + ldv + d, Full ? 32 : D - d) : _mm512_setzero_si512();
    x[2 * c] = as_bh(_mm512_unpacklo_epi16(a, b));
    x[2 * c + 1] = as_bh(_mm512_unpackhi_epi16(a, b));
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    int32_t pair;
    __builtin_memcpy(&pair, g.W + static_cast<size_t>(r) * kRowPad + 2 * i, 4);
    const __m512bh wp = as_bh(_mm512_set1_epi32(pair));
#pragma GCC unroll 8
    for (int c = 0; c < 2 * W; ++c) acc[r * 2 * W + c] = _mm512_dpbf16_ps(acc[r * 2 * W + c], x[c], wp);
  }
}

// O[r] = alpha[r]·O[r] + Σ_j w[r][j]·v_j over the 32-dim blocks [b0, b0 + W), a pair of keys at a
// time: R·2W sums in registers, each pair's interleaved values fed to every row. Full: D is a
// multiple of 32 (no tail masks).
template <int R, int W, bool Full, class T>
QVL_TARGET_AVX512BF16 void pv_blocks(const Group& g, const T* v, int64_t ldv, int nk, int D, int DP, int b0) {
  __m512 acc[R * 2 * W];
#pragma GCC unroll 32
  for (int i = 0; i < R * 2 * W; ++i) {
    const int r = i / (2 * W), c = i % (2 * W);
    acc[i] = _mm512_mul_ps(_mm512_load_ps(g.O + static_cast<size_t>(r) * DP + 32 * b0 + 16 * c), _mm512_set1_ps(g.alpha[r]));
  }
  int i = 0;
  for (; 2 * i + 1 < nk; ++i) pv_pair<R, W, Full, T>(g, v + 2 * i * ldv, ldv, true, i, D, b0, acc);
  if (2 * i < nk) pv_pair<R, W, Full, T>(g, v + 2 * i * ldv, ldv, false, i, D, b0, acc);
#pragma GCC unroll 32
  for (int i = 0; i < R * 2 * W; ++i) {
    const int r = i / (2 * W), c = i % (2 * W);
    _mm512_store_ps(g.O + static_cast<size_t>(r) * DP + 32 * b0 + 16 * c, acc[i]);
  }
}

// Blocks W at a time (2W sums a row: up to 6 rows two blocks, 7 and 8 rows one), the rest one by one.
template <int R, class T>
QVL_TARGET_AVX512BF16 void pv_tile(const Group& g, const T* v, int64_t ldv, int nk, int D, int DP) {
  constexpr int W = R <= 6 ? 2 : 1;
  const int blocks = DP / 32;
  int b = 0;
  if (D == DP) {
    for (; b + W <= blocks; b += W) pv_blocks<R, W, true, T>(g, v, ldv, nk, D, DP, b);
    for (; b < blocks; ++b) pv_blocks<R, 1, true, T>(g, v, ldv, nk, D, DP, b);
    return;
  }
  for (; b + W <= blocks; b += W) pv_blocks<R, W, false, T>(g, v, ldv, nk, D, DP, b);
  for (; b < blocks; ++b) pv_blocks<R, 1, false, T>(g, v, ldv, nk, D, DP, b);
}

template <int R, class T>
QVL_TARGET_AVX512BF16 void qk_rows(const Group& g, const T* k, int64_t ldk, int nk, int D, int DP) {
  switch (D) {
    case 64: return qk_tile<R, 2, T>(g.Q, DP, D, k, ldk, nk, g.S);
    case 128: return qk_tile<R, 4, T>(g.Q, DP, D, k, ldk, nk, g.S);
    default: return qk_tile<R, 0, T>(g.Q, DP, D, k, ldk, nk, g.S);
  }
}

// One tile of keys [kt, kt + nk) through a group: scores, weights, values.
template <int R, class T>
QVL_TARGET_AVX512BF16 void tile_rows(Group& g, const T* k, const T* v, int64_t ldk, int64_t ldv, int nk, int32_t kt, float c,
                                     int D, int DP) {
  qk_rows<R, T>(g, k, ldk, nk, D, DP);
  weigh(g, nk, kt, c);
  pv_tile<R, T>(g, v, ldv, nk, D, DP);
}

template <class T>
QVL_TARGET_AVX512BF16 void tile(Group& g, const T* k, const T* v, int64_t ldk, int64_t ldv, int nk, int32_t kt, float c, int D,
                                int DP) {
  static_assert(kRowMax == 8, "one case per row count");
  switch (g.R) {
    case 1: return tile_rows<1, T>(g, k, v, ldk, ldv, nk, kt, c, D, DP);
    case 2: return tile_rows<2, T>(g, k, v, ldk, ldv, nk, kt, c, D, DP);
    case 3: return tile_rows<3, T>(g, k, v, ldk, ldv, nk, kt, c, D, DP);
    case 4: return tile_rows<4, T>(g, k, v, ldk, ldv, nk, kt, c, D, DP);
    case 5: return tile_rows<5, T>(g, k, v, ldk, ldv, nk, kt, c, D, DP);
    case 6: return tile_rows<6, T>(g, k, v, ldk, ldv, nk, kt, c, D, DP);
    case 7: return tile_rows<7, T>(g, k, v, ldk, ldv, nk, kt, c, D, DP);
    case 8: return tile_rows<8, T>(g, k, v, ldk, ldv, nk, kt, c, D, DP);
  }
  fail(ErrorCode::Native, "attention_bf16_decode: a group of " + std::to_string(g.R) + " rows");
}

// The lane of O's unpack order each output dim of a 32-dim block's first 16 (idx) and last 16
// (idx + 8 in each source) comes from, as VPERMT2PS indices over (low vector, high vector).
QVL_TARGET_AVX512BF16 inline __m512i unpack_order() {
  alignas(64) int32_t v[16];
  for (int d = 0; d < 16; ++d) v[d] = (d % 8 < 4 ? 0 : 16) + 4 * (d / 8) + d % 4;
  return _mm512_load_si512(v);
}

// Row r's O in dim order, times f, into dst (D floats).
QVL_TARGET_AVX512BF16 void write_row(const Group& g, int r, int D, int DP, float f, float* dst) {
  const __m512i i0 = unpack_order(), i1 = _mm512_add_epi32(i0, _mm512_set1_epi32(8));
  const __m512 scale = _mm512_set1_ps(f);
  const float* o = g.O + static_cast<size_t>(r) * DP;
  for (int d = 0; d < D; d += 32) {
    const __m512 lo = _mm512_load_ps(o + d), hi = _mm512_load_ps(o + d + 16);
    _mm512_mask_storeu_ps(dst + d, lanes16(D - d), _mm512_mul_ps(_mm512_permutex2var_ps(lo, i0, hi), scale));
    _mm512_mask_storeu_ps(dst + d + 16, lanes16(D - d - 16), _mm512_mul_ps(_mm512_permutex2var_ps(lo, i1, hi), scale));
  }
}

struct Job {
  int64_t chunks = 0;
  size_t offset = 0, slot = 0;  // floats: the job's partial slots, and one chunk's (Hkv · rows · (2 + D))
};

struct GroupsTag {};

// Rows of every kv head in groups of at most kRowMax, as even as they come (6 rows: one group; 12:
// two of 6).
inline int group_count(int64_t rows) { return static_cast<int>((rows + kRowMax - 1) / kRowMax); }

// One chunk (keys [w.k0, w.k1) of segment w.seg, every kv head): its partial (M, l, O) per row into
// the job's slot, or with a single chunk the output itself; the last chunk to finish merges.
template <class T>
QVL_TARGET_AVX512BF16 void run_chunk(const ops::AttentionParams& p, const attn::WorkItem& w, const Job& job, float* parts,
                                     std::atomic<int64_t>& done) {
  const ops::AttentionSegment& seg = p.segments[w.seg];
  const int64_t qlen = seg.q_end - seg.q_start, klen = seg.k_end - seg.k_start;
  const int G = static_cast<int>(p.Hq / p.Hkv), D = static_cast<int>(p.D), DP = attn::round_up(D, 32);
  const int64_t rows = qlen * G;
  const int ng = group_count(rows);
  const int per = static_cast<int>((rows + ng - 1) / ng);
  const size_t group_bytes = static_cast<size_t>(kRowMax) * (static_cast<size_t>(DP) * 6 + kRowPad * 6);
  char* mem = static_cast<char*>(thread_scratch<GroupsTag>(static_cast<size_t>(p.Hkv * ng) * group_bytes, "attention_bf16_decode: scratch"));
  thread_local std::vector<Group> groups;
  groups.resize(static_cast<size_t>(p.Hkv * ng));
  const float c = p.scale * attn::kLog2e;
  int32_t kend = 0;
  for (int64_t hk = 0; hk < p.Hkv; ++hk) {
    for (int gi = 0; gi < ng; ++gi) {
      Group& g = groups[static_cast<size_t>(hk * ng + gi)];
      const int64_t r0 = static_cast<int64_t>(gi) * per;
      g.R = static_cast<int>(std::min<int64_t>(per, rows - r0));
      char* base = mem + static_cast<size_t>(hk * ng + gi) * group_bytes;
      g.O = reinterpret_cast<float*>(base);
      g.S = g.O + static_cast<size_t>(kRowMax) * DP;
      g.Q = reinterpret_cast<uint16_t*>(g.S + static_cast<size_t>(kRowMax) * kRowPad);
      g.W = g.Q + static_cast<size_t>(kRowMax) * DP;
      std::fill_n(g.O, static_cast<size_t>(g.R) * DP, 0.0f);
      for (int r = 0; r < g.R; ++r) {
        const int64_t qi = (r0 + r) / G, h = hk * G + (r0 + r) % G;
        const float* q = p.q + (seg.q_start + qi) * p.ldq + h * D;
        for (int d = 0; d < DP; d += 32) _mm512_store_si512(g.Q + static_cast<size_t>(r) * DP + d, load_bf16x32(q + d, D - d));
        // Causal: query qi is the segment's key qi + klen − qlen and sees the keys up to it.
        g.lim[r] = static_cast<int32_t>(p.causal ? std::max<int64_t>(0, std::min(klen, qi + klen - qlen + 1)) : klen);
        g.M[r] = -std::numeric_limits<float>::infinity();
        g.l[r] = 0.0f;
      }
      g.reach = g.lim[g.R - 1];
      kend = std::max(kend, g.reach);
    }
  }
  const T* kseg = ops::segment_keys<T>(p, seg);
  const T* vseg = ops::segment_values<T>(p, seg);
  for (int64_t kt = w.k0; kt < std::min<int64_t>(w.k1, kend); kt += kTileKeys) {
    const int nk = static_cast<int>(std::min<int64_t>(kTileKeys, std::min<int64_t>(w.k1, kend) - kt));
    for (int64_t hk = 0; hk < p.Hkv; ++hk) {
      for (int gi = 0; gi < ng; ++gi) {
        Group& g = groups[static_cast<size_t>(hk * ng + gi)];
        if (kt >= g.reach) continue;
        tile<T>(g, kseg + kt * p.ldk + hk * D, vseg + kt * p.ldv + hk * D, p.ldk, p.ldv, nk, static_cast<int32_t>(kt), c, D, DP);
      }
    }
  }
  // The partial slot per kv head as the exact decode path lays it out (attn::emit_row): the rows'
  // M, their l, then their O rows, so that attn::merge_parts merges them.
  const size_t head_slot = static_cast<size_t>(rows) * (2 + static_cast<size_t>(D));
  float* slot = job.chunks > 1 ? parts + job.offset + job.slot * static_cast<size_t>(w.part) : nullptr;
  for (int64_t hk = 0; hk < p.Hkv; ++hk) {
    for (int gi = 0; gi < ng; ++gi) {
      const Group& g = groups[static_cast<size_t>(hk * ng + gi)];
      for (int r = 0; r < g.R; ++r) {
        const int64_t row = static_cast<int64_t>(gi) * per + r;  // within the kv head
        if (slot) {
          float* ps = slot + hk * head_slot;
          ps[row] = g.M[r], ps[rows + row] = g.l[r];
          write_row(g, r, D, DP, 1.0f, ps + 2 * rows + row * D);
        } else {
          float* dst = p.out + (seg.q_start + row / G) * p.ldo + (hk * G + row % G) * D;
          write_row(g, r, D, DP, g.l[r] > 0.0f ? 1.0f / g.l[r] : 0.0f, dst);
        }
      }
    }
  }
  if (!slot || done.fetch_add(1, std::memory_order_acq_rel) != job.chunks - 1) return;
  // Every chunk is written: each row's M is the chunks' largest, each chunk scaled by 2^(M_c − M)
  // (exactly: both integers).
  for (int64_t hk = 0; hk < p.Hkv; ++hk) {
    attn::WorkItem head = w;
    head.hk = hk;
    attn::merge_parts(p, head, static_cast<int>(job.chunks), parts + job.offset + hk * head_slot, job.slot);
  }
}

struct PartsTag {};

template <class T>
void run_kv(const ops::AttentionParams& p, ThreadPool& pool) {
  const int64_t G = p.Hq / p.Hkv;
  std::vector<attn::WorkItem> items;
  std::vector<Job> jobs(static_cast<size_t>(p.n_segments));
  size_t floats = 0;
  for (int64_t s = 0; s < p.n_segments; ++s) {
    const ops::AttentionSegment& g = p.segments[s];
    const int64_t qlen = g.q_end - g.q_start, klen = g.k_end - g.k_start;
    // Key indices and the rows' limits are 32-bit in the kernels.
    QVL_CHECK(klen < (int64_t{1} << 30), Input, "attention_bf16_decode: a segment of " + std::to_string(klen) + " keys (at most 2^30)");
    if (qlen <= 0) continue;
    Job& job = jobs[static_cast<size_t>(s)];
    job.chunks = std::max<int64_t>(1, (klen + kChunk - 1) / kChunk);
    job.slot = static_cast<size_t>(p.Hkv * qlen * G * (2 + p.D));
    job.offset = floats;
    if (job.chunks > 1) floats += job.slot * static_cast<size_t>(job.chunks);
    for (int64_t ch = 0; ch < job.chunks; ++ch) {
      items.push_back({s, -1, 0, qlen, ch * kChunk, std::min(klen, (ch + 1) * kChunk), ch, s});
    }
  }
  if (items.empty()) return;
  // Kept by the calling thread between calls; every slot is written before the merge reads it.
  float* parts = static_cast<float*>(thread_scratch<PartsTag>(std::max<size_t>(floats, 1) * 4, "attention_bf16_decode: partials"));
  std::unique_ptr<std::atomic<int64_t>[]> done(new std::atomic<int64_t>[jobs.size()]);
  for (size_t j = 0; j < jobs.size(); ++j) done[j].store(0, std::memory_order_relaxed);
  const int64_t threads = pool.size();
  const std::vector<int64_t> cuts = attn::decode_runs(items, threads);
  pool.parallel_for(threads, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      for (int64_t i = cuts[static_cast<size_t>(t)]; i < cuts[static_cast<size_t>(t) + 1]; ++i) {
        if (p.cancel && p.cancel->cancelled()) return;  // attention() throws once the kernel returns
        const attn::WorkItem& w = items[static_cast<size_t>(i)];
        run_chunk<T>(p, w, jobs[static_cast<size_t>(w.job)], parts, done[w.job]);
      }
    }
  });
}

}  // namespace

void attention_bf16_decode_avx512bf16(const ops::AttentionParams& p, const ExecContext& ctx) {
  if (p.n_segments == 0) return;
  ops::visit_kv_type(p.kv_dtype, [&](auto t) { run_kv<decltype(t)>(p, ctx.pool()); });
}

}  // namespace qvl::cpu
