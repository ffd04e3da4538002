// The bf16 matmul driver: x rounded to bf16 once per call (rows padded to 32, k to 32, with
// zeros), then tasks of up to kTaskCols outputs x kTaskRows rows. A task packs its weights one
// k block at a time (f32/f16/bf16 rows, or q8/q4/f8 rows dequantized to f32, rounded to bf16
// and regrouped into k-pair tiles, 16 x 16 dwords transposed in registers) and sweeps its rows
// over them in 32 x 32 blocks, accumulating in an f32 buffer. y (plus bias; a large y with
// non-temporal stores) is written by the block kernel's last steps where the variant has such a
// kernel (block_out), else from the buffer at the end of the task. Weights are read as stored: no
// second copy of the model lives in memory for this path.
#include <immintrin.h>

#include <algorithm>
#include <string>

#include "backends/cpu/bf16_vec.h"
#include "backends/cpu/call_scratch.h"
#include "backends/cpu/matmul_bf16_cpu.h"
#include "backends/cpu/matmul_cpu.h"
#include "backends/cpu/thread_scratch.h"
#include "core/error.h"

namespace qvl::cpu {

namespace {

// A task's packed weights (kTaskCols x a k block of at most kKBlock bf16, 320 KiB) stay in L2
// while its rows sweep them; each 32 rows' accumulators (16 KiB of the kTaskRows x kTaskCols f32)
// are touched only while those rows run. The weights are packed once per task's rows: 1024 rather
// than 512 halved the packing (reads of the weights from memory: 4% of the vision tower at
// 448x448, where it now packs each weight once) and ran the 2B tower 2-4% faster at 448x448 and
// 1-3% at 1288x980 on a 2-thread Zen 5. K splits into equal blocks (no short last one): at most
// 1280 rather than 1024 takes a ViT's 1280 in one pass over the accumulators and its 5120 in four,
// and ran the same tower 2.4% faster at 448x448 (in-process A/B).
constexpr int64_t kTaskCols = 128, kTaskRows = 1024, kKBlock = 1280;
// Steps of 32 k per block-kernel call: x's 32 rows and one column block's weights for them
// (16 KiB each) fit L1 together, where a tile load keeps up with TDPBF16PS.
constexpr int64_t kInnerSteps = 8;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Per-thread buffers kept between calls (a task would otherwise allocate 768 KiB), one per Slot.
template <int Slot>
struct TaskScratch {};
template <class T, int Slot>
T* thread_buffer(size_t n) {
  return static_cast<T*>(thread_scratch<TaskScratch<Slot>>(n * sizeof(T), "matmul_bf16: task"));
}

// GCC 12 warns (-Wmaybe-uninitialized) about the undefined pass-through operand inside these plain
// AVX-512 intrinsics; their zero-masked forms with a full mask are the same instructions.
constexpr __mmask16 kAll16 = static_cast<__mmask16>(0xffff);
constexpr __mmask8 kAll8 = static_cast<__mmask8>(0xff);
QVL_TARGET_AVX512BF16 inline __m512i unpacklo32(__m512i a, __m512i b) { return _mm512_maskz_unpacklo_epi32(kAll16, a, b); }
QVL_TARGET_AVX512BF16 inline __m512i unpackhi32(__m512i a, __m512i b) { return _mm512_maskz_unpackhi_epi32(kAll16, a, b); }
QVL_TARGET_AVX512BF16 inline __m512i unpacklo64(__m512i a, __m512i b) { return _mm512_maskz_unpacklo_epi64(kAll8, a, b); }
QVL_TARGET_AVX512BF16 inline __m512i unpackhi64(__m512i a, __m512i b) { return _mm512_maskz_unpackhi_epi64(kAll8, a, b); }
template <int Imm>
QVL_TARGET_AVX512BF16 inline __m512i shuffle128(__m512i a, __m512i b) { return _mm512_maskz_shuffle_i32x4(kAll16, a, b, Imm); }
QVL_TARGET_AVX512BF16 inline __m512 widen_f16(__m256i h) { return _mm512_maskz_cvtph_ps(kAll16, h); }

// Row r's 32 values from k (n valid, the rest zero) as bf16.
template <DType DT>
QVL_TARGET_AVX512BF16 inline __m512i load32(const void* row, int64_t k, int64_t n) {
  if constexpr (DT == DType::BF16) {
    return load_bf16x32(static_cast<const uint16_t*>(row) + k, n);
  } else if constexpr (DT == DType::F16) {
    const uint16_t* r = static_cast<const uint16_t*>(row) + k;
    const __m512 lo = widen_f16(_mm256_maskz_loadu_epi16(lanes16(n), r));
    const __m512 hi = widen_f16(_mm256_maskz_loadu_epi16(lanes16(n - 16), r + 16));
    return bf16x32(lo, hi);
  } else {
    return load_bf16x32(static_cast<const float*>(row) + k, n);
  }
}

// In-register transpose of a 16 x 16 matrix of dwords (r[i] = row i).
QVL_TARGET_AVX512BF16 inline void transpose16x16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = unpacklo32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = unpackhi32(r[2 * i], r[2 * i + 1]);
  }
  // Now, within 128-bit lane L, r[4i+q] holds column 4L+q of rows 4i..4i+3.
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = unpacklo64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = unpackhi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = unpacklo64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = unpackhi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int q = 0; q < 4; ++q) {
    const __m512i v0 = shuffle128<0x44>(r[q], r[4 + q]), v1 = shuffle128<0xEE>(r[q], r[4 + q]);
    const __m512i v2 = shuffle128<0x44>(r[8 + q], r[12 + q]);
    const __m512i v3 = shuffle128<0xEE>(r[8 + q], r[12 + q]);
    t[q] = shuffle128<0x88>(v0, v2);
    t[4 + q] = shuffle128<0xDD>(v0, v2);
    t[8 + q] = shuffle128<0x88>(v1, v3);
    t[12 + q] = shuffle128<0xDD>(v1, v3);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

// Bytes of one stored element of a row the packer reads (F32, or BF16/F16).
template <DType DT>
constexpr int64_t kElemBytes = DT == DType::F32 ? 4 : 2;

// Steps ahead the packer asks for each row's weights (rows read from memory): sixteen rows a
// step are more streams than the hardware prefetchers follow, and the packing waited on the
// loads. 4 ran the 2B vision tower under 'fast' 3% faster at 448x448 and at 1288x980 (in-process
// A/B, 2-thread Zen 5); 8 about the same, 16 less.
constexpr int64_t kPackAhead = 4;

// One 16-output group of a packed panel: rows[j] (valid[j]; invalid rows pack as zero) read as DT
// from element kb + 32 s for step s, `len` elements valid past kb (the rest zero), into the 16
// columns at dst of each of `steps` packed steps. `from_memory`: prefetch kPackAhead steps ahead.
template <DType DT>
QVL_TARGET_AVX512BF16 void pack_group16(const void* const rows[16], const bool valid[16], int64_t kb, int64_t len,
                                        int64_t steps, uint16_t* dst, bool from_memory) {
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t k = kb + s * kBf16Step, left = len - s * kBf16Step;
    if (from_memory && s + kPackAhead < steps) {
      for (int j = 0; j < 16; ++j)
        if (valid[j]) _mm_prefetch(static_cast<const char*>(rows[j]) + (k + kPackAhead * kBf16Step) * kElemBytes<DT>, _MM_HINT_T0);
    }
    __m512i r[16];
    for (int j = 0; j < 16; ++j) r[j] = valid[j] && left > 0 ? load32<DT>(rows[j], k, left) : _mm512_setzero_si512();
    transpose16x16(r);
    uint16_t* tile = dst + s * kBf16StepElems;
    for (int i = 0; i < 16; ++i) _mm512_store_si512(tile + i * 32, r[i]);
  }
}

// Where 16-output group nb (an output index, n0 <= nb < n1) of a task's panel starts in `out`.
inline uint16_t* group_dst(uint16_t* out, int64_t n0, int64_t nb, int64_t steps) {
  const int64_t local = nb - n0;  // 16-column group within the task
  return out + (local / kBf16Block) * steps * kBf16StepElems + (local % kBf16Block) / 16 * 512;
}

// A partial last 32-column block: its second tile may lie wholly past n1.
inline void zero_tail_tile(int64_t n0, int64_t n1, int64_t steps, uint16_t* out) {
  const int64_t cols = n1 - n0;
  if (cols % kBf16Block != 0 && cols % kBf16Block <= 16) {
    uint16_t* dst = out + (cols / kBf16Block) * steps * kBf16StepElems + 512;
    for (int64_t s = 0; s < steps; ++s) std::fill_n(dst + s * kBf16StepElems, 512, uint16_t{0});
  }
}

// Packs outputs [n0, n1) (n1 - n0 <= kTaskCols) x k [k0, k0 + kc) (kc a multiple of 32; k past K
// and outputs past n1 pack as zero) into blocks of 32 outputs, each `kc / 32` packed steps.
template <DType DT>
QVL_TARGET_AVX512BF16 void pack_weights(const Bf16PanelSource& p, int64_t n0, int64_t n1, int64_t k0, int64_t kc,
                                        uint16_t* out) {
  const int64_t steps = kc / kBf16Step;
  const char* base = static_cast<const char*>(p.data);
  for (int64_t nb = n0; nb < n1; nb += 16) {
    const void* rows[16];
    bool valid[16];
    for (int j = 0; j < 16; ++j) {
      valid[j] = nb + j < n1;
      rows[j] = base + (valid[j] ? nb + j : n0) * p.ld * kElemBytes<DT>;
    }
    pack_group16<DT>(rows, valid, k0, p.K - k0, steps, group_dst(out, n0, nb, steps), true);
  }
  zero_tail_tile(n0, n1, steps, out);
}

// The same from q8/q4/f8 rows: each 16-row group's k range, widened to whole blocks of the format
// (dequantize_row reads whole blocks; f8's are 128 wide) and clipped to K, is dequantized to f32
// in a per-thread buffer and packed from there as f32 rows are, so the values rounded to bf16 are
// exactly those the reference rounds.
QVL_TARGET_AVX512BF16 void pack_dequantized(const Bf16PanelSource& p, int64_t n0, int64_t n1, int64_t k0, int64_t kc,
                                            uint16_t* out) {
  const WeightRef& w = *p.quant;
  const WeightFormatTraits& t = weight_format_traits(w.format);
  const int64_t steps = kc / kBf16Step;
  const int64_t kb = k0 / t.block * t.block, ke = std::min(p.K, round_up(k0 + kc, t.block));
  const int64_t span = std::max<int64_t>(ke - kb, 0), offset = k0 - kb, len = std::max<int64_t>(ke - k0, 0);
  float* buf = thread_buffer<float, 2>(static_cast<size_t>(16 * std::max<int64_t>(span, 1)));
  for (int64_t nb = n0; nb < n1; nb += 16) {
    const void* rows[16];
    bool valid[16];
    for (int j = 0; j < 16; ++j) {
      valid[j] = nb + j < n1;
      float* row = buf + j * span;
      rows[j] = row + offset;
      if (valid[j] && span > 0) t.dequantize_row(w, nb + j, kb, span, row);
    }
    pack_group16<DType::F32>(rows, valid, 0, len, steps, group_dst(out, n0, nb, steps), false);
  }
  zero_tail_tile(n0, n1, steps, out);
}

}  // namespace

QVL_TARGET_AVX512BF16 void pack_bf16_panels(const Bf16PanelSource& p, int64_t n0, int64_t n1, int64_t k0, int64_t kc,
                                            uint16_t* out) {
  if (p.quant) return pack_dequantized(p, n0, n1, k0, kc, out);
  switch (p.dtype) {
    case DType::F32: return pack_weights<DType::F32>(p, n0, n1, k0, kc, out);
    case DType::BF16: return pack_weights<DType::BF16>(p, n0, n1, k0, kc, out);
    case DType::F16: return pack_weights<DType::F16>(p, n0, n1, k0, kc, out);
    case DType::I32:
    case DType::I64:
    case DType::U8:
    case DType::F8E4M3: return;  // refused by dense_storage
  }
}

namespace {

// Rows [m0, m1) of x as bf16 into xb (row stride kp), zero from K to kp; rows past M are zero.
QVL_TARGET_AVX512BF16 void convert_rows(const ops::MatmulParams& p, int64_t m0, int64_t m1, int64_t kp, uint16_t* xb) {
  for (int64_t m = m0; m < m1; ++m) {
    uint16_t* dst = xb + m * kp;
    if (m >= p.M) {
      std::fill_n(dst, kp, uint16_t{0});
      continue;
    }
    const float* src = p.x + m * p.ldx;
    for (int64_t k = 0; k < kp; k += 32) _mm512_storeu_si512(dst + k, load_bf16x32(src + k, p.K - k));
  }
}

// An output of at least this many bytes is written past the caches (non-temporal stores): it does
// not stay in them for the op that reads it next anyway, and the stores then skip reading each
// line of y in first. The 2B vision tower at 448x448 (outputs of 5-20 MiB) ran 1-1.5% faster
// streaming those from 8 MiB (qkv, fc1) or all of them; 1288x980 the same either way.
constexpr int64_t kStreamBytes = int64_t{8} << 20;

// Whether y's rows can take aligned 64-byte non-temporal stores (n0, a multiple of 32, keeps them
// aligned) and are worth it.
bool stream_output(const ops::MatmulParams& p) {
  return p.M * p.N * static_cast<int64_t>(sizeof(float)) >= kStreamBytes && reinterpret_cast<uintptr_t>(p.y) % 64 == 0 &&
         p.ldy % 16 == 0;
}

// y rows [m0, m1) x outputs [n0, n1) = acc (row stride ldc) + bias; whole 16-lane pieces streamed
// past the caches when `stream` (then fenced, so the pool's hand-back orders them like any store).
QVL_TARGET_AVX512BF16 void write_out(const ops::MatmulParams& p, const float* acc, int64_t ldc, int64_t m0, int64_t m1,
                                     int64_t n0, int64_t n1, bool stream) {
  for (int64_t m = m0; m < m1; ++m) {
    const float* a = acc + (m - m0) * ldc;
    float* y = p.y + m * p.ldy + n0;
    for (int64_t j = 0; j < n1 - n0; j += 16) {
      const __mmask16 mask = lanes16(n1 - n0 - j);
      __m512 v = _mm512_maskz_loadu_ps(mask, a + j);
      if (p.bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, p.bias + n0 + j));
      if (stream && mask == kAll16) {
        _mm512_stream_ps(y + j, v);
      } else {
        _mm512_mask_storeu_ps(y + j, mask, v);
      }
    }
  }
  if (stream) _mm_sfence();
}

struct TileScope {  // begin/end around a thread's share of the work, also when it throws
  const Bf16Kernels& k;
  explicit TileScope(const Bf16Kernels& kk) : k(kk) { if (k.begin) k.begin(); }
  ~TileScope() { if (k.end) k.end(); }
};

// Outputs [n0, n1) x rows [m0, m1) (m0 a multiple of 32; rows up to round_up(m1, 32) exist in xb).
void task(const ops::MatmulParams& p, const Bf16PanelSource& w, const Bf16Kernels& k, const uint16_t* xb, int64_t kp, int64_t n0,
          int64_t n1, int64_t m0, int64_t m1, bool stream) {
  const int64_t cols = round_up(n1 - n0, kBf16Block), rows = round_up(m1 - m0, kBf16Block);
  float* acc = thread_buffer<float, 0>(static_cast<size_t>(kTaskRows * kTaskCols));
  uint16_t* wp = thread_buffer<uint16_t, 1>(static_cast<size_t>(kTaskCols * kKBlock));
  {
    TileScope tiles(k);
    const int64_t k_len = round_up(ceil_div(kp, ceil_div(kp, kKBlock)), kBf16Step);
    for (int64_t k0 = 0; k0 < kp; k0 += k_len) {
      const int64_t kc = std::min(k_len, kp - k0), steps = kc / kBf16Step;
      pack_bf16_panels(w, n0, n1, k0, kc, wp);
      for (int64_t m = 0; m < rows; m += kBf16Block) {
        // kInnerSteps of k at a time: this 32-row slice of x (16 KiB) stays in L1 while the
        // task's column blocks pass over it, each block's 16 KiB of weights coming from L2.
        for (int64_t s0 = 0; s0 < steps; s0 += kInnerSteps) {
          const int64_t n_steps = std::min(kInnerSteps, steps - s0);
          const uint16_t* a = xb + (m0 + m) * kp + k0 + s0 * kBf16Step;
          const bool last = k.block_out && k0 + kc == kp && s0 + n_steps == steps;
          for (int64_t j = 0; j < cols; j += kBf16Block) {
            const uint16_t* b = wp + ((j / kBf16Block) * steps + s0) * kBf16StepElems;
            float* c = acc + m * cols + j;
            if (last) {
              const Bf16BlockOut out{p.y + (m0 + m) * p.ldy + n0 + j, p.ldy, p.bias ? p.bias + n0 + j : nullptr,
                                     static_cast<int>(std::min(kBf16Block, m1 - m0 - m)),
                                     static_cast<int>(std::min(kBf16Block, n1 - n0 - j)), stream};
              k.block_out(a, kp, b, n_steps, c, cols, k0 > 0 || s0 > 0, out);
            } else {
              k.block(a, kp, b, n_steps, c, cols, k0 > 0 || s0 > 0, kBf16Full);
            }
          }
        }
      }
    }
  }
  if (!k.block_out) {
    write_out(p, acc, cols, m0, m1, n0, n1, stream);
  } else if (stream) {
    _mm_sfence();  // the block kernels' non-temporal stores, ordered before the pool's hand-back
  }
}

// The weights as the packer reads them: dense rows directly, the block formats through their
// dequantize_row.
Bf16PanelSource panel_source(const ops::MatmulParams& p) {
  switch (weight_format_traits(p.w.format).kernel) {
    case WeightKernel::DenseF32: return {p.w.data, p.w.ld, p.K, dense_storage(p.w.format)};
    case WeightKernel::Int8Dot:
    case WeightKernel::Fp8Block: return {p.w.data, p.w.ld, p.K, DType::F32, &p.w};
  }
  fail(ErrorCode::Unsupported, std::string("matmul_bf16: no packer for ") + weight_format_name(p.w.format) + " weights");
}

}  // namespace

void run_matmul_bf16(const ops::MatmulParams& p, const ExecContext& ctx, const Bf16Kernels& k) {
  if (p.M == 0 || p.N == 0) return;
  if (p.K == 0) {
    for (int64_t m = 0; m < p.M; ++m)
      for (int64_t n = 0; n < p.N; ++n) p.y[m * p.ldy + n] = p.bias ? p.bias[n] : 0.0f;
    return;
  }
  const Bf16PanelSource w = panel_source(p);
  ThreadPool& pool = ctx.pool();
  const int64_t kp = round_up(p.K, kBf16Step), mp = round_up(p.M, kBf16Block);
  CallScratch scratch(ctx);
  uint16_t* xb = scratch.take<uint16_t>(static_cast<size_t>(mp * kp), "matmul_bf16: x as bf16");
  pool.parallel_for(mp, 32, [&](int64_t b, int64_t e) { convert_rows(p, b, e, kp, xb); });

  // Tasks: column chunks x row chunks; shrink the column chunk (keeping 32-multiples) when too few
  // tasks would leave threads idle.
  const int64_t nt = pool.size();
  int64_t cols = kTaskCols;
  while (cols > kBf16Block && ceil_div(p.N, cols) * ceil_div(p.M, kTaskRows) < 2 * nt) cols -= kBf16Block;
  const int64_t n_chunks = ceil_div(p.N, cols), m_chunks = ceil_div(p.M, kTaskRows);
  const bool stream = stream_output(p);
  pool.parallel_for(n_chunks * m_chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      if (p.cancel && p.cancel->cancelled()) return;  // matmul() throws once the variant returns
      // Row chunk by row chunk: the tasks of one chunk share its rows of x (in cache), and each
      // packs its own weights from memory. Taken column chunk by column chunk instead, the tasks
      // read all of x from memory once per column chunk (30 times 16 MiB for the qkv of a
      // 1288x980 image), and the 2B vision tower ran 3-4% slower.
      const int64_t n0 = (t % n_chunks) * cols, m0 = (t / n_chunks) * kTaskRows;
      task(p, w, k, xb, kp, n0, std::min(n0 + cols, p.N), m0, std::min(m0 + kTaskRows, p.M), stream);
    }
  });
}

}  // namespace qvl::cpu
