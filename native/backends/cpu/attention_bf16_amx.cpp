// attention_bf16 on AMX tiles (non-causal: the vision tower). k and v may be f32 or bf16. Two phases:
//   1. k and v of every (segment, kv head) packed once into the tile layout of the bf16 block
//      kernel (matmul_bf16_cpu.h): k as "weight rows" (one per key, D as the reduction), v as
//      pairs of keys interleaved per output column (the reduction over keys);
//   2. per (segment, head, 32 query rows): S = q·kᵀ for all the segment's keys (32 x 32 blocks on
//      the tiles, f32), the exact softmax of each row in f32 (AVX-512 exp), the weights as bf16,
//      then O = P·v in 32-column blocks on the tiles, divided by the row sums.
// Each thread loads its tile configuration for its share of phase 2 and releases it after.
#include <immintrin.h>

// GCC 12 reports the _mm512_undefined_ps() inside its own unmasked AVX-512 intrinsics (the
// reductions, exp's rounding) as "maybe uninitialized" once inlined; the header's, not this code's.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <memory>
#include <vector>

#include "backends/cpu/matmul_bf16_cpu.h"
#include "backends/cpu/thread_scratch.h"
#include "backends/cpu/vec_math.h"
#include "core/arena.h"
#include "core/error.h"
#include "ops/attention.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kQ = 32;  // query rows per work item (one block-kernel row block)

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

QVL_TARGET_AVX512BF16 inline __mmask16 lanes16(int64_t n) {
  return n <= 0 ? static_cast<__mmask16>(0) : n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1);
}

QVL_TARGET_AVX512BF16 inline __m512i bf16x32(__m512 lo, __m512 hi) {
  return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
}

// The lanes in m of 16 stored values (f32, or bf16 widened exactly), others 0.
QVL_TARGET_AVX512BF16 inline __m512 load_v16(const float* x, __mmask16 m) { return _mm512_maskz_loadu_ps(m, x); }
QVL_TARGET_AVX512BF16 inline __m512 load_v16(const uint16_t* x, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x)), 16));
}

// v rows [0, klen) (row stride ldv), D columns, into the block kernel's B layout for O = P·v:
// column block jb (32 of D), key step s (32 keys), tile g (16 columns): row r holds, for each
// column, the pair (v[32s + 2r][col], v[32s + 2r + 1][col]). Keys past klen and columns past D
// pack as zero. T: the stored element (a bf16 cache's values re-round to themselves).
template <class T>
QVL_TARGET_AVX512BF16 void pack_v(const T* v, int64_t ldv, int64_t klen, int64_t D, int64_t kp, int64_t dp,
                                  uint16_t* out) {
  const int64_t steps = kp / kBf16Step;
  // Interleaves [a0..a15, b0..b15] into [a0, b0, a1, b1, ...].
  alignas(64) uint16_t idx_v[32];
  for (int i = 0; i < 16; ++i) idx_v[2 * i] = static_cast<uint16_t>(i), idx_v[2 * i + 1] = static_cast<uint16_t>(16 + i);
  const __m512i idx = _mm512_load_si512(idx_v);
  for (int64_t jb = 0; jb < dp / kBf16Block; ++jb) {
    for (int64_t s = 0; s < steps; ++s) {
      for (int g = 0; g < 2; ++g) {
        const int64_t d0 = jb * kBf16Block + g * 16, cols = std::min<int64_t>(16, D - d0);
        uint16_t* tile = out + (jb * steps + s) * kBf16StepElems + g * 512;
        for (int r = 0; r < 16; ++r) {
          const int64_t key = s * kBf16Step + 2 * r;
          const __m512 a = key < klen ? load_v16(v + key * ldv + d0, lanes16(cols)) : _mm512_setzero_ps();
          const __m512 b = key + 1 < klen ? load_v16(v + (key + 1) * ldv + d0, lanes16(cols)) : _mm512_setzero_ps();
          _mm512_store_si512(tile + r * 32, _mm512_permutexvar_epi16(idx, bf16x32(a, b)));
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

// Row r of S (klen scores) -> P row (bf16 weights, zero from klen to kp); returns 1 / sum.
QVL_TARGET_AVX512BF16 float softmax_row(const float* s, int64_t klen, int64_t kp, float scale, uint16_t* prow) {
  __m512 mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const __m512 sc = _mm512_set1_ps(scale);
  for (int64_t j = 0; j < klen; j += 16) {
    const __mmask16 m = lanes16(klen - j);
    mx = _mm512_mask_max_ps(mx, m, mx, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + j), sc));
  }
  const __m512 vmax = _mm512_set1_ps(hmax(mx));
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < kp; j += 32) {
    const __mmask16 m0 = lanes16(klen - j), m1 = lanes16(klen - j - 16);
    const __m512 a = _mm512_maskz_mov_ps(m0, vm::exp_avx512(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), sc, vmax), _mm512_setzero_ps()));
    const __m512 b = _mm512_maskz_mov_ps(m1, vm::exp_avx512(_mm512_fmsub_ps(_mm512_loadu_ps(s + j + 16), sc, vmax), _mm512_setzero_ps()));
    sum = _mm512_add_ps(sum, _mm512_add_ps(a, b));
    _mm512_storeu_si512(prow + j, bf16x32(a, b));
  }
  return 1.0f / hsum(sum);
}

// Per-thread scratch, kept between calls, one per Slot.
template <int Slot>
struct AttentionScratch {};
template <int Slot>
void* scratch(size_t bytes) {
  return thread_scratch<AttentionScratch<Slot>>(bytes, "attention_bf16: scratch");
}

struct Layout {
  int64_t dp;                      // D rounded up to 32
  std::vector<int64_t> kp, base;   // per segment: keys rounded up to 32; offset of its packs (u16)
};

QVL_TARGET_AVX512BF16 void work_item(const ops::AttentionParams& p, const Layout& L, const uint16_t* packs, int64_t s,
                                     int64_t h, int64_t r0) {
  const ops::AttentionSegment& g = p.segments[s];
  const int64_t klen = g.k_end - g.k_start, rows = std::min(kQ, g.q_end - r0);
  const int64_t D = p.D, dp = L.dp, kp = L.kp[s], hk = h / (p.Hq / p.Hkv);
  if (klen == 0) {
    for (int64_t r = 0; r < rows; ++r) std::fill_n(p.out + (r0 + r) * p.ldo + h * D, D, 0.0f);
    return;
  }
  const int64_t per_head = kp * dp;  // u16 of one packed k (and of one packed v)
  const uint16_t* kpk = packs + L.base[s] + hk * 2 * per_head;
  const uint16_t* vpk = kpk + per_head;
  uint16_t* qb = static_cast<uint16_t*>(scratch<0>(static_cast<size_t>(kQ * dp * 2)));
  float* S = static_cast<float*>(scratch<1>(static_cast<size_t>(kQ * kp * 4)));
  uint16_t* P = static_cast<uint16_t*>(scratch<2>(static_cast<size_t>(kQ * kp * 2)));
  float* O = static_cast<float*>(scratch<3>(static_cast<size_t>(kQ * kBf16Block * 4)));
  float inv[kQ];
  const Bf16Kernels& k = amx_bf16_kernels();
  load_q(p, r0, rows, h, dp, qb);
  const int64_t dsteps = dp / kBf16Step, ksteps = kp / kBf16Step;
  for (int64_t kb = 0; kb < kp; kb += kBf16Block) k.block(qb, dp, kpk + (kb / kBf16Block) * dsteps * kBf16StepElems, dsteps, S + kb, kp, false);
  for (int64_t r = 0; r < kQ; ++r) {
    if (r < rows) inv[r] = softmax_row(S + r * kp, klen, kp, p.scale, P + r * kp);
    else std::fill_n(P + r * kp, kp, uint16_t{0});
  }
  for (int64_t jb = 0; jb < dp; jb += kBf16Block) {
    k.block(P, kp, vpk + (jb / kBf16Block) * ksteps * kBf16StepElems, ksteps, O, kBf16Block, false);
    const int64_t cols = std::min<int64_t>(kBf16Block, D - jb);
    for (int64_t r = 0; r < rows; ++r) {
      float* o = p.out + (r0 + r) * p.ldo + h * D + jb;
      const __m512 sc = _mm512_set1_ps(inv[r]);
      _mm512_mask_storeu_ps(o, lanes16(cols), _mm512_mul_ps(_mm512_loadu_ps(O + r * kBf16Block), sc));
      if (cols > 16) _mm512_mask_storeu_ps(o + 16, lanes16(cols - 16), _mm512_mul_ps(_mm512_loadu_ps(O + r * kBf16Block + 16), sc));
    }
  }
}

struct TileScope {
  const Bf16Kernels& k;
  explicit TileScope(const Bf16Kernels& kk) : k(kk) { if (k.begin) k.begin(); }
  ~TileScope() { if (k.end) k.end(); }
};

}  // namespace

void attention_bf16_amx(const ops::AttentionParams& p, const ExecContext& ctx) {
  QVL_CHECK(!p.causal, Unsupported, "attention_bf16: causal attention is not supported");
  ThreadPool& pool = ctx.pool();
  Layout L;
  L.dp = round_up(p.D, kBf16Step);
  int64_t total = 0;
  for (int64_t s = 0; s < p.n_segments; ++s) {
    const int64_t kp = round_up(p.segments[s].k_end - p.segments[s].k_start, kBf16Step);
    L.kp.push_back(kp);
    L.base.push_back(total);
    total += p.Hkv * 2 * kp * L.dp;
  }
  if (total == 0 && p.n_segments == 0) return;
  // The packed k and v: from the context's arena when it has one (given back on return).
  ArenaScope arena_scope(ctx.arena());
  std::unique_ptr<void, void (*)(void*)> owned(nullptr, std::free);
  uint16_t* packs = nullptr;
  const size_t bytes = static_cast<size_t>(std::max<int64_t>(total, 32)) * 2;
  if (ctx.arena()) {
    packs = static_cast<uint16_t*>(ctx.arena()->allocate(bytes));
  } else {
    owned.reset(std::aligned_alloc(64, static_cast<size_t>(round_up(static_cast<int64_t>(bytes), 64))));
    QVL_CHECK(owned != nullptr, Native, "attention_bf16: out of memory for the packed keys and values");
    packs = static_cast<uint16_t*>(owned.get());
  }
  pool.parallel_for(p.n_segments * p.Hkv, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t s = t / p.Hkv, hk = t % p.Hkv;
      const ops::AttentionSegment& g = p.segments[s];
      const int64_t klen = g.k_end - g.k_start, kp = L.kp[s];
      if (kp == 0) continue;
      uint16_t* kpk = packs + L.base[s] + hk * 2 * kp * L.dp;
      ops::visit_kv_type(p.kv_dtype, [&](auto t) {
        using T = decltype(t);
        pack_bf16_panels({ops::segment_keys<T>(p, g) + hk * p.D, p.ldk, p.D, p.kv_dtype}, 0, klen, 0, L.dp, kpk);
        pack_v(ops::segment_values<T>(p, g) + hk * p.D, p.ldv, klen, p.D, kp, L.dp, kpk + kp * L.dp);
      });
    }
  });
  // Work items: (segment, head, 32-row query block).
  std::vector<int64_t> first(static_cast<size_t>(p.n_segments + 1), 0);
  for (int64_t s = 0; s < p.n_segments; ++s) {
    const int64_t qlen = p.segments[s].q_end - p.segments[s].q_start;
    first[s + 1] = first[s] + p.Hq * ((qlen + kQ - 1) / kQ);
  }
  const int64_t items = first[p.n_segments];
  pool.parallel_for(items, 1, [&](int64_t b, int64_t e) {
    TileScope tiles(amx_bf16_kernels());
    int64_t s = 0;
    for (int64_t t = b; t < e; ++t) {
      if (p.cancel && p.cancel->cancelled()) return;  // attention() throws once the variant returns
      while (first[s + 1] <= t) ++s;
      const int64_t local = t - first[s];
      const int64_t blocks = (p.segments[s].q_end - p.segments[s].q_start + kQ - 1) / kQ;
      const int64_t h = local / blocks, qb = local % blocks;
      work_item(p, L, packs, s, h, p.segments[s].q_start + qb * kQ);
    }
  });
}

}  // namespace qvl::cpu
