// The tiled (flash-style) attention driver shared by the generic, AVX2 and AVX-512 variants.
//
// A work item is (segment, kv head, block of query positions, range of keys). Its rows are the
// block's queries times the query heads that share the kv head (GQA), so decode with a 7:1 ratio
// still has 7 rows to reuse every K and V load. Keys are visited in tiles of kKeyTile with the
// online softmax (running max m, running sum l per row; scores are pre-scaled by log2 e so the
// kernels use exp2).
//
// Two layouts, picked per item by its row count:
//  * Transposed (many rows: prefill, vision): rows along vector lanes — Qt[d][r], St[j][r], Ot[d][r].
//    q·k and p·v are then outer-product updates that broadcast single K and V elements straight from
//    the caller's memory: no packing, any D without tail masks, and the softmax is purely vertical.
//    Kernels: qk, softmax, pv (see below).
//  * Row-major (few rows: decode, the last block of a prefill; only where K::kRowPath): head dims
//    along lanes — Q[r][d], S[r][j], O[r][d] — with real dot products over D, so a decode step does
//    not pay for 16 lanes when it has 2 rows. Kernels: qk_rows, softmax_rows, pv_rows.
//
// Decode-shaped segments (at most kDecodeRows query rows per kv head: one new token per sequence,
// a few with speculative or small chunks) take a flash-decoding path instead: work items are fixed
// chunks of kDecodeChunk keys covering every kv head, so one pass streams whole cache rows and the
// query heads of a GQA group share each K and V load; the chunks' partial (m, l, O) are merged in
// chunk order by the thread that finishes the last chunk (no second dispatch). A call of decode
// segments only gives each thread one run of consecutive chunks (decode_runs). The chunking
// depends only on the segment, so decode results are bitwise the same on any thread count.
// Other segments (prefill, vision): when their blocks cannot keep every thread busy each block's
// keys are split into chunks ("split-K") whose count depends on the thread count, and a second
// pass merges them; those results agree across thread counts only within rounding.
//
// Keys and values stored as bf16 (a bf16 KV cache, T = uint16_t) are read at half the bytes and
// never copied wide as a whole: the row-major kernels are templates over T and widen in registers
// as they load (qk_rows feeds each widened key vector to all the item's rows); the
// transposed kernels, which broadcast single elements, get each key tile's K and V widened once by
// K::widen into a per-thread f32 block (2 · kKeyTile · D floats) first.
//
// Transposed kernels (each an ISA-attributed function in its own translation unit):
//   kLanes, kRowsTarget
//   qk(Qt, D, RP, k, ldk, nk, St)      St[j][r] = Σ_d Qt[d][r]·k[j][d] for j < nk (may also write
//                                       up to kKeyPad rows past nk; their values are never used)
//   softmax(St, RP, nk, kt, lim, masked, m, l, alpha)
//                                       key kt+j is valid for row r iff kt+j < lim[r] (checked only
//                                       when masked); St becomes probabilities (0 where invalid),
//                                       m/l updated, alpha[r] = the factor old Ot rows must take
//   pv(St, RP, nk, v, ldv, D, Ot, alpha) Ot[d][r] = alpha[r]·Ot[d][r] + Σ_j St[j][r]·v[j][d]
//                                       (may also write up to kDimPad rows past D of Ot)
//   widen(src, ld, n, D, dst)           dst[j][d] = src[j·ld + d] as f32 (bf16 bits in), j < n, d < D
// (k, v above are f32 rows: a bf16 tile comes widened.)
// Row-major kernels (R <= kRowMax rows; Q rows zero-padded to ldq, a multiple of 16; k and v of T):
//   qk_rows(Q, ldq, D, R, k, ldk, nk, S, lds)   S[r][j] = Σ_d Q[r][d]·k[j][d], j < nk (+ pad)
//   softmax_rows(S, lds, R, nk, kt, lim, masked, m, l, alpha)   as softmax, per row
//   pv_rows(S, lds, R, nk, v, ldv, D, O, ldo, alpha)   O[r][d] = alpha[r]·O[r][d] + Σ_j S[r][j]·v[j][d]
//                                       (O rows padded to ldo = kRowDimPad multiple; pad lanes scratch)
// The row-major kernels also ask for the rows they read kKeyTile keys ahead (the driver then
// prefetches nothing for the item).
#pragma once
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "backends/cpu/thread_scratch.h"
#include "ops/attention.h"

namespace qvl::cpu::attn {

constexpr int kKeyTile = 64;
constexpr int kKeyPad = 16;  // spare score columns/rows for kernels that finish a key group past nk
constexpr int kDimPad = 8;   // spare Ot rows for kernels that finish a d group past D
constexpr float kLog2e = 1.4426950408889634f;

struct WideTile {};  // thread_scratch tag: a bf16 key tile's K and V widened for the transposed kernels

struct WorkItem {
  int64_t seg, hk, q0, q1;  // q0, q1: query positions within the segment
  int64_t k0, k1;           // key range within the segment (k0 a multiple of kKeyTile)
  int64_t part;             // -1: write out; else the index of this item's partial-result slot
  int64_t job = -1;         // a decode chunk (every kv head): its DecodeJob; part is then the chunk index
};

inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

// Asks for the next tile's K or V rows while this one computes. Rows sit ldk apart (a whole token of
// all heads), so the hardware prefetchers see many short streams and fetch too little ahead;
// decode, which reads each cached element once, would otherwise wait on memory latency.
template <class T>
void prefetch_rows(const T* base, int64_t ld, int64_t n, int64_t D) {
  constexpr int64_t kLine = 64 / sizeof(T);  // elements per cache line
  for (int64_t j = 0; j < n; ++j)
    for (int64_t d = 0; d < D; d += kLine) __builtin_prefetch(base + j * ld + d);
}

// `bytes` of the row kKeyTile rows past `row` (the same key of the next key tile), a line at a
// time, as the row-major kernels read each key. The driver's burst of the whole next tile at once
// (each_key_tile: 1024 lines at the 2B model's decode shape) is more than the miss queues hold;
// spread over the keys the requests keep the stream going. A decode step's attention at that
// shape (28 layers, 12 heads on 2 kv heads of 128, 2 Zen 5 threads, AVX-512, the burst still on,
// both builds alternating in one process, best of 4): bf16 cache 576 keys 0.87 -> 0.65 ms, 2048
// keys 5.1 -> 3.3 ms, 8192 keys 18.5 -> 13.6 ms; f32 cache 576 keys 1.55 -> 0.96 ms, 2048 keys
// 5.75 -> 5.1 ms, 8192 keys the same, 256 keys 1.03-1.14x. Past the segment's end the lines are
// never read (a prefetch does not fault; the address is formed in integers, as it may lie past
// the cache's end).
template <class T>
inline void prefetch_next_tile(const T* row, int64_t ld, int bytes) {
  const uintptr_t p = reinterpret_cast<uintptr_t>(row) + static_cast<uintptr_t>(kKeyTile * ld) * sizeof(T);
  for (int c = 0; c < bytes; c += 64) __builtin_prefetch(reinterpret_cast<const void*>(p + static_cast<uintptr_t>(c)), 0, 3);
}

// Keys [k0, kend) a tile at a time: fold(kt, nk) for each tile, while (where `prefetch`) the next
// tile's K and V rows (`width` elements of each, from kbase / vbase) are prefetched. The row-major
// kernels ask for the next tile themselves, a key at a time as they read each key: the burst on
// top of that cost 12% of a decode step's attention (AVX-512, cache in L2) and gained nothing.
template <class T, class Fold>
void each_key_tile(const ops::AttentionParams& p, const T* kbase, const T* vbase, int64_t width, int64_t k0,
                   int64_t kend, bool prefetch, Fold&& fold) {
  for (int64_t kt = k0; kt < kend; kt += kKeyTile) {
    const int nk = static_cast<int>(std::min<int64_t>(kKeyTile, kend - kt));
    if (prefetch && kt + kKeyTile < kend) {
      const int64_t nn = std::min<int64_t>(kKeyTile, kend - kt - kKeyTile);
      prefetch_rows(kbase + (kt + kKeyTile) * p.ldk, p.ldk, nn, width);
      prefetch_rows(vbase + (kt + kKeyTile) * p.ldv, p.ldv, nn, width);
    }
    fold(kt, nk);
  }
}

// Per-row key limits (segment-relative count of keys row r may see) for rows [0, n); rows past
// `rows` copy the last real row so padding lanes never force the masked path.
inline void key_limits(const ops::AttentionParams& p, const WorkItem& w, int rows, int n, int32_t* lim) {
  const ops::AttentionSegment& g = p.segments[w.seg];
  const int64_t qlen = g.q_end - g.q_start, klen = g.k_end - g.k_start;
  const int G = static_cast<int>(p.Hq / p.Hkv);
  for (int r = 0; r < n; ++r) {
    const int64_t qi = w.q0 + std::min(r, rows - 1) / G;
    lim[r] = static_cast<int32_t>(p.causal ? std::min<int64_t>(klen, qi + (klen - qlen) + 1) : klen);
  }
}

// Writes row r's result: normalised into out, or (m, l, unnormalised O) into the partial slot.
inline void emit_row(const ops::AttentionParams& p, const WorkItem& w, int r, float m, float l, const float* o,
                     int64_t ostride, float* part, int rows) {
  const int G = static_cast<int>(p.Hq / p.Hkv);
  const int D = static_cast<int>(p.D);
  if (part) {
    part[r] = m;
    part[rows + r] = l;
    float* po = part + 2 * rows + static_cast<size_t>(r) * D;
    for (int d = 0; d < D; ++d) po[d] = o[d * ostride];
    return;
  }
  const ops::AttentionSegment& g = p.segments[w.seg];
  float* dst = p.out + (g.q_start + w.q0 + r / G) * p.ldo + (w.hk * G + r % G) * p.D;
  const float inv = l > 0 ? 1.0f / l : 0.0f;
  for (int d = 0; d < D; ++d) dst[d] = o[d * ostride] * inv;
}

// The running state of one work item's rows for one kv head: scaled queries, accumulators and the
// online-softmax statistics, in the layout K's kernels want for that many rows (row-major where K
// has it and the rows are few, else transposed). `mem` holds floats(rows, D) floats, `lim` rows
// (rounded up to K::kLanes) key limits. T: the stored K/V element (float, or uint16_t bf16 bits),
// which K's qk and pv kernels widen as they load it.
template <class K, class T>
struct HeadState {
  bool row_major = false;
  int rows = 0, RP = 0, D = 0, ldq = 0, ldo = 0, lds = 0;
  float *Q = nullptr, *O = nullptr, *S = nullptr, *m = nullptr, *l = nullptr, *alpha = nullptr;
  int32_t* lim = nullptr;
  int32_t min_lim = 0;
  int64_t kend = 0;  // keys this item visits: [w.k0, kend)
  const T *kbase = nullptr, *vbase = nullptr;

  static bool rows_path(int rows) {
    if constexpr (K::kRowPath) return rows <= K::kRowMax;
    return false;
  }
  static int lim_count(int rows) { return rows_path(rows) ? rows : round_up(rows, K::kLanes); }
  static size_t floats(int rows, int D) {
    if constexpr (K::kRowPath) {
      if (rows_path(rows)) {
        return static_cast<size_t>(rows) * (round_up(D, 16) + round_up(D, K::kRowDimPad) + kKeyTile + kKeyPad + 3);
      }
    }
    return static_cast<size_t>(round_up(rows, K::kLanes)) * (static_cast<size_t>(D) * 2 + kDimPad + kKeyTile + kKeyPad + 3);
  }

  void init(const ops::AttentionParams& p, const WorkItem& w, int n_rows, float* mem, int32_t* lim_mem) {
    const ops::AttentionSegment& g = p.segments[w.seg];
    const int G = static_cast<int>(p.Hq / p.Hkv);
    rows = n_rows;
    D = static_cast<int>(p.D);
    row_major = rows_path(rows);
    lim = lim_mem;
    const float c = p.scale * kLog2e;
    auto qrow = [&](int r) { return p.q + (g.q_start + w.q0 + r / G) * p.ldq + (w.hk * G + r % G) * p.D; };
    if (row_major) {
      if constexpr (K::kRowPath) ldo = round_up(D, K::kRowDimPad);
      RP = rows;
      ldq = round_up(D, 16), lds = kKeyTile + kKeyPad;
      Q = mem;
      O = Q + static_cast<size_t>(rows) * ldq;
      S = O + static_cast<size_t>(rows) * ldo;
      m = S + static_cast<size_t>(rows) * lds;
      for (int r = 0; r < rows; ++r) {
        const float* qr = qrow(r);
        float* q = Q + static_cast<size_t>(r) * ldq;
        for (int d = 0; d < ldq; ++d) q[d] = d < D ? qr[d] * c : 0.0f;
      }
      std::fill(O, O + static_cast<size_t>(rows) * ldo, 0.0f);
    } else {
      RP = round_up(rows, K::kLanes);
      Q = mem;
      O = Q + static_cast<size_t>(D) * RP;
      S = O + static_cast<size_t>(D + kDimPad) * RP;
      m = S + static_cast<size_t>(kKeyTile + kKeyPad) * RP;
      for (int r = 0; r < RP; ++r) {
        const float* qr = r < rows ? qrow(r) : nullptr;
        for (int d = 0; d < D; ++d) Q[static_cast<size_t>(d) * RP + r] = qr ? qr[d] * c : 0.0f;
      }
      std::fill(O, O + static_cast<size_t>(D + kDimPad) * RP, 0.0f);
    }
    l = m + RP;
    alpha = l + RP;
    std::fill(m, m + RP, -std::numeric_limits<float>::infinity());
    std::fill(l, l + RP, 0.0f);
    key_limits(p, w, rows, RP, lim);
    min_lim = *std::min_element(lim, lim + RP);
    kend = std::min<int64_t>(w.k1, *std::max_element(lim, lim + RP));
    kbase = ops::segment_keys<T>(p, g) + w.hk * p.D;
    vbase = ops::segment_values<T>(p, g) + w.hk * p.D;
  }

  // Keys [kt, kt + nk) (nk <= kKeyTile) folded into the state.
  void tile(const ops::AttentionParams& p, int64_t kt, int nk) {
    const T* k = kbase + kt * p.ldk;
    const T* v = vbase + kt * p.ldv;
    if constexpr (K::kRowPath) {
      if (row_major) {
        K::qk_rows(Q, ldq, D, rows, k, p.ldk, nk, S, lds);
        K::softmax_rows(S, lds, rows, nk, static_cast<int32_t>(kt), lim, kt + nk > min_lim, m, l, alpha);
        K::pv_rows(S, lds, rows, nk, v, p.ldv, D, O, ldo, alpha);
        return;
      }
    }
    if constexpr (std::is_same_v<T, uint16_t>) {
      float* kw = static_cast<float*>(thread_scratch<WideTile>(static_cast<size_t>(2 * kKeyTile) * D * 4, "attention: widened tile"));
      float* vw = kw + static_cast<size_t>(kKeyTile) * D;
      K::widen(k, p.ldk, nk, D, kw);
      K::widen(v, p.ldv, nk, D, vw);
      transposed(kw, D, vw, D, kt, nk);
    } else {
      transposed(k, p.ldk, v, p.ldv, kt, nk);
    }
  }

  void transposed(const float* k, int64_t ldk, const float* v, int64_t ldv, int64_t kt, int nk) {
    K::qk(Q, D, RP, k, ldk, nk, S);
    K::softmax(S, RP, nk, static_cast<int32_t>(kt), lim, kt + nk > min_lim, m, l, alpha);
    K::pv(S, RP, nk, v, ldv, D, O, alpha);
  }

  void emit(const ops::AttentionParams& p, const WorkItem& w, float* part) const {
    for (int r = 0; r < rows; ++r) {
      if (row_major) emit_row(p, w, r, m[r], l[r], O + static_cast<size_t>(r) * ldo, 1, part, rows);
      else emit_row(p, w, r, m[r], l[r], O + r, RP, part, rows);
    }
  }
};

// One (segment, kv head, query block, key range) item: its rows through every key tile.
template <class K, class T>
void run_item(const ops::AttentionParams& p, const WorkItem& w, std::vector<float>& scratch, std::vector<int32_t>& lim,
              float* part) {
  using State = HeadState<K, T>;
  const int rows = static_cast<int>(w.q1 - w.q0) * static_cast<int>(p.Hq / p.Hkv);
  const size_t need = State::floats(rows, static_cast<int>(p.D));
  if (scratch.size() < need) scratch.resize(need);
  if (lim.size() < static_cast<size_t>(State::lim_count(rows))) lim.resize(static_cast<size_t>(State::lim_count(rows)));
  State st;
  st.init(p, w, rows, scratch.data(), lim.data());
  each_key_tile(p, st.kbase, st.vbase, p.D, w.k0, st.kend, !st.row_major, [&](int64_t kt, int nk) { st.tile(p, kt, nk); });
  st.emit(p, w, part);
}

// Merges the partial (m, l, O) of an item's key chunks into its output rows.
inline void merge_parts(const ops::AttentionParams& p, const WorkItem& w, int nparts, const float* parts,
                        size_t part_size) {
  const int G = static_cast<int>(p.Hq / p.Hkv);
  const int D = static_cast<int>(p.D);
  const int rows = static_cast<int>(w.q1 - w.q0) * G;
  const ops::AttentionSegment& g = p.segments[w.seg];
  for (int r = 0; r < rows; ++r) {
    float M = -std::numeric_limits<float>::infinity();
    for (int s = 0; s < nparts; ++s) M = std::max(M, parts[s * part_size + r]);
    float* dst = p.out + (g.q_start + w.q0 + r / G) * p.ldo + (w.hk * G + r % G) * p.D;
    if (M == -std::numeric_limits<float>::infinity()) {
      std::fill(dst, dst + D, 0.0f);
      continue;
    }
    float L = 0;
    for (int d = 0; d < D; ++d) dst[d] = 0;
    for (int s = 0; s < nparts; ++s) {
      const float* ps = parts + s * part_size;
      if (ps[rows + r] == 0) continue;  // this chunk saw no key for the row
      const float f = std::exp2(ps[r] - M);
      L += ps[rows + r] * f;
      const float* o = ps + 2 * rows + static_cast<size_t>(r) * D;
      for (int d = 0; d < D; ++d) dst[d] += o[d] * f;
    }
    const float inv = 1.0f / L;
    for (int d = 0; d < D; ++d) dst[d] *= inv;
  }
}

// A decode-shaped segment (few query rows per kv head) is cut into key chunks of kDecodeChunk keys,
// each one work item over every kv head: a thread streams whole cache rows (all heads) of its
// chunk once, and every query head sharing a kv head reads that head's K and V together. The
// chunks' partial (m, l, O) are merged in chunk order by whichever thread finishes the last one.
// Chunk boundaries depend only on the segment, never on the thread count, so a decode step gives
// the same bits on 1 or 64 threads.
constexpr int64_t kDecodeChunk = 256;  // keys (4 tiles): 512 KiB of K and V at 2 kv heads of 128
constexpr int64_t kDecodeRows = 16;    // most query rows per kv head for the decode path

struct DecodeJob {
  int64_t seg, chunks;
  size_t offset, slot;  // floats: where the job's partial slots start, and one chunk's slot
};

template <class K>
struct DecodeScratch {};
template <class K>
struct DecodeParts {};

template <class K, class T>
void run_decode(const ops::AttentionParams& p, const WorkItem& w, const DecodeJob& job, float* parts,
                std::atomic<int64_t>& done) {
  using State = HeadState<K, T>;
  const int G = static_cast<int>(p.Hq / p.Hkv), D = static_cast<int>(p.D), H = static_cast<int>(p.Hkv);
  const int rows = static_cast<int>(w.q1 - w.q0) * G;
  const size_t per = State::floats(rows, D);
  const size_t nlim = static_cast<size_t>(State::lim_count(rows));
  char* mem = static_cast<char*>(thread_scratch<DecodeScratch<K>>(H * (per + nlim) * 4, "attention: decode scratch"));
  thread_local std::vector<State> st;
  if (st.size() < static_cast<size_t>(H)) st.resize(static_cast<size_t>(H));
  auto head = [&w](int h) {  // the chunk's item for kv head h
    WorkItem wh = w;
    wh.hk = h;
    return wh;
  };
  for (int h = 0; h < H; ++h) {
    st[h].init(p, head(h), rows, reinterpret_cast<float*>(mem) + h * per,
               reinterpret_cast<int32_t*>(mem + H * per * 4) + h * nlim);
  }
  const ops::AttentionSegment& g = p.segments[w.seg];
  // kend is the same for every head (the limits depend on the query only); the transposed path
  // prefetches whole cache rows (every head).
  each_key_tile(p, ops::segment_keys<T>(p, g), ops::segment_values<T>(p, g), p.Hkv * p.D, w.k0, st[0].kend,
                !st[0].row_major, [&](int64_t kt, int nk) {
                  for (int h = 0; h < H; ++h) st[h].tile(p, kt, nk);
                });
  const size_t head_slot = static_cast<size_t>(rows) * (2 + static_cast<size_t>(D));
  float* slot = job.chunks > 1 ? parts + job.offset + job.slot * static_cast<size_t>(w.part) : nullptr;
  for (int h = 0; h < H; ++h) st[h].emit(p, head(h), slot ? slot + h * head_slot : nullptr);
  if (!slot || done.fetch_add(1, std::memory_order_acq_rel) != job.chunks - 1) return;
  for (int h = 0; h < H; ++h) merge_parts(p, head(h), static_cast<int>(job.chunks), parts + job.offset + h * head_slot, job.slot);
}

// A decode-only call's chunks cut into one run per thread, run t = items [cuts[t], cuts[t + 1]):
// consecutive chunks, so the kernels' prefetch of the next tile, which at a chunk's end reaches
// into the next chunk, asks for what the same thread reads next (chunks handed out one at a time
// began every chunk on demand misses: 8192 cached keys at the 2B shape, 2 Zen 5 threads, 10.0 ->
// 7.0 ms a step). Cuts fall at the chunk boundaries nearest equal shares of the keys.
inline std::vector<int64_t> decode_runs(const std::vector<WorkItem>& items, int64_t threads) {
  std::vector<int64_t> prefix(items.size() + 1, 0);
  for (size_t i = 0; i < items.size(); ++i) prefix[i + 1] = prefix[i] + (items[i].k1 - items[i].k0);
  std::vector<int64_t> cuts(static_cast<size_t>(threads) + 1, static_cast<int64_t>(items.size()));
  cuts[0] = 0;
  size_t i = 0;
  for (int64_t t = 1; t < threads; ++t) {
    const double target = static_cast<double>(prefix.back()) * static_cast<double>(t) / static_cast<double>(threads);
    while (i + 1 < prefix.size() && std::abs(prefix[i + 1] - target) <= std::abs(prefix[i] - target)) ++i;
    cuts[static_cast<size_t>(t)] = static_cast<int64_t>(i);
  }
  return cuts;
}

template <class K, class T>
void run_kv(const ops::AttentionParams& p, ThreadPool& pool) {
  const int64_t G = p.Hq / p.Hkv;
  const int64_t qb = std::max<int64_t>(1, K::kRowsTarget / G);
  std::vector<WorkItem> blocks, decode;
  std::vector<DecodeJob> jobs;
  size_t decode_floats = 0;
  for (int64_t s = 0; s < p.n_segments; ++s) {
    const ops::AttentionSegment& g = p.segments[s];
    const int64_t qlen = g.q_end - g.q_start, klen = g.k_end - g.k_start;
    if (qlen > 0 && qlen * G <= kDecodeRows) {
      const int64_t chunks = std::max<int64_t>(1, (klen + kDecodeChunk - 1) / kDecodeChunk);
      const size_t slot = static_cast<size_t>(p.Hkv * qlen * G * (2 + p.D));
      for (int64_t c = 0; c < chunks; ++c) {
        decode.push_back({s, -1, 0, qlen, c * kDecodeChunk, std::min(klen, (c + 1) * kDecodeChunk), c,
                          static_cast<int64_t>(jobs.size())});
      }
      jobs.push_back({s, chunks, decode_floats, slot});
      if (chunks > 1) decode_floats += slot * static_cast<size_t>(chunks);
      continue;
    }
    // Latest blocks first: under causal they see the most keys, so the long jobs start early.
    for (int64_t q1 = qlen; q1 > 0; q1 -= qb) {
      for (int64_t hk = 0; hk < p.Hkv; ++hk) blocks.push_back({s, hk, std::max<int64_t>(0, q1 - qb), q1, 0, klen, -1});
    }
  }
  if (blocks.empty() && decode.empty()) return;

  // Split-K when the blocks cannot keep every thread busy: chunks of at least 4 key tiles.
  const int64_t threads = pool.size();
  const int64_t want = blocks.empty() ? 1 : (2 * threads + static_cast<int64_t>(blocks.size()) - 1) / static_cast<int64_t>(blocks.size());
  std::vector<WorkItem> items;
  std::vector<std::pair<size_t, int>> merges;  // (first item of a split block, chunk count)
  size_t part_size = 0;
  int64_t nparts = 0;
  for (const WorkItem& b : blocks) {
    const int64_t tiles = (b.k1 + kKeyTile - 1) / kKeyTile;
    const int64_t splits = std::min<int64_t>(want, tiles / 4);
    if (splits <= 1) {
      items.push_back(b);
      continue;
    }
    const int rows = static_cast<int>((b.q1 - b.q0) * G);
    part_size = std::max(part_size, static_cast<size_t>(rows) * (2 + static_cast<size_t>(p.D)));
    const int64_t per = (tiles + splits - 1) / splits;
    merges.emplace_back(items.size(), 0);
    for (int64_t t0 = 0; t0 < tiles; t0 += per) {
      WorkItem c = b;
      c.k0 = t0 * kKeyTile;
      c.k1 = std::min(b.k1, (t0 + per) * kKeyTile);
      c.part = nparts++;
      items.push_back(c);
      merges.back().second++;
    }
  }
  std::vector<float> parts(part_size * static_cast<size_t>(nparts));
  items.insert(items.end(), decode.begin(), decode.end());
  // Kept by the calling thread between calls (a long context's slots would be a fresh mapping
  // every call); every slot is written before the merge reads it.
  float* decode_parts = static_cast<float*>(thread_scratch<DecodeParts<K>>(decode_floats * 4, "attention: decode partials"));
  std::unique_ptr<std::atomic<int64_t>[]> done(new std::atomic<int64_t>[jobs.size()]);
  for (size_t j = 0; j < jobs.size(); ++j) done[j].store(0, std::memory_order_relaxed);

  auto run_items = [&](int64_t begin, int64_t end) {
    std::vector<float> scratch;
    std::vector<int32_t> lim;
    for (int64_t i = begin; i < end; ++i) {
      if (p.cancel && p.cancel->cancelled()) return;  // attention() throws once the variant returns
      const WorkItem& w = items[static_cast<size_t>(i)];
      if (w.job >= 0) {
        run_decode<K, T>(p, w, jobs[static_cast<size_t>(w.job)], decode_parts, done[w.job]);
        continue;
      }
      run_item<K, T>(p, w, scratch, lim, w.part < 0 ? nullptr : parts.data() + part_size * static_cast<size_t>(w.part));
    }
  };
  if (blocks.empty()) {
    const std::vector<int64_t> cuts = decode_runs(items, threads);
    pool.parallel_for(threads, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) run_items(cuts[static_cast<size_t>(t)], cuts[static_cast<size_t>(t) + 1]);
    });
  } else {
    pool.parallel_for(static_cast<int64_t>(items.size()), 1, run_items);
  }
  if (merges.empty() || (p.cancel && p.cancel->cancelled())) return;
  pool.parallel_for(static_cast<int64_t>(merges.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const WorkItem& first = items[merges[static_cast<size_t>(i)].first];
      merge_parts(p, first, merges[static_cast<size_t>(i)].second,
                  parts.data() + part_size * static_cast<size_t>(first.part), part_size);
    }
  });
}

// The tiled attention for K's kernels, reading k and v as p.kv_dtype stores them.
template <class K>
void run(const ops::AttentionParams& p, ThreadPool& pool) {
  ops::visit_kv_type(p.kv_dtype, [&](auto t) { run_kv<K, decltype(t)>(p, pool); });
}

}  // namespace qvl::cpu::attn
