#include <algorithm>

#include "backends/cpu/call_scratch.h"
#include "backends/cpu/matmul_q.h"
#include "backends/cpu/matmul_q_gemm.h"
#include "backends/cpu/thread_scratch.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

constexpr int kTileRows = 4;

thread_local int gemm_off = 0;  // QGemmOff instances alive on this thread

struct InterleaveTag {};

// Rows of x an output block sweeps at most: each block reads its rows' codes (rows x K bytes)
// again, so past this many rows they no longer stay in cache from one block to the next. Row
// parts of at most 1024, run part by part, took the 2B vision tower with q8 weights under 'fast'
// 5% faster at 1288x980 (6440 rows; in-process A/B on a 2-thread Zen 5); 512 ran the same.
constexpr int64_t kRowPart = 1024;

// fn(n0, m0, m1) for each block of n_step outputs and part of the rows (parts are multiples of
// row_step, at most kRowPart long, and shorter when the output blocks alone cannot keep every
// thread busy), the blocks of one row part one after another. Stops at a set cancel token
// (matmul() throws once the variant returns).
void for_output_blocks(const ops::MatmulParams& p, ThreadPool& pool, int64_t n_step, int64_t row_step,
                       const std::function<void(int64_t n0, int64_t m0, int64_t m1)>& fn) {
  const int64_t nt = pool.size(), n_blocks = ceil_div(p.N, n_step);
  int64_t m_parts = ceil_div(p.M, kRowPart);
  if (nt > 1 && n_blocks < 2 * nt) m_parts = std::max(m_parts, std::min(ceil_div(p.M, row_step), ceil_div(2 * nt, n_blocks)));
  const int64_t m_step = round_up(ceil_div(p.M, m_parts), row_step);
  m_parts = ceil_div(p.M, m_step);
  pool.parallel_for(n_blocks * m_parts, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      if (p.cancel && p.cancel->cancelled()) return;
      const int64_t m0 = t / n_blocks * m_step;
      fn(t % n_blocks * n_step, m0, std::min(m0 + m_step, p.M));
    }
  });
}

}  // namespace

QGemmOff::QGemmOff() { ++gemm_off; }
QGemmOff::~QGemmOff() { --gemm_off; }

void qgemm_schedule(const ops::MatmulParams& p, ThreadPool& pool, int64_t panel_n,
                    const std::function<void(int64_t m0, int rows)>& interleave,
                    const std::function<void(int64_t n0, int64_t m0, int64_t m1)>& panel) {
  constexpr int64_t mb = kQGemmTileRows;
  pool.parallel_for(ceil_div(p.M, mb), 4, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) interleave(t * mb, static_cast<int>(std::min<int64_t>(mb, p.M - t * mb)));
  });
  for_output_blocks(p, pool, panel_n, mb, panel);
}

void interleave_tile_rows(QActs& a, int64_t m0, int rows, uint8_t flip) {
  const int64_t K = a.K, blocks = a.blocks;
  uint8_t* q = reinterpret_cast<uint8_t*>(a.q) + m0 * K;
  float* d = a.d + m0 * blocks;
  auto* tmp = static_cast<uint8_t*>(thread_scratch<InterleaveTag>(static_cast<size_t>(rows * (K + 4 * blocks)), "int8 GEMM row tile"));
  auto* dtmp = reinterpret_cast<float*>(tmp + rows * K);
  std::copy(q, q + rows * K, tmp);
  std::copy(d, d + rows * blocks, dtmp);
  for (int64_t b = 0; b < blocks; ++b)
    for (int i = 0; i < rows; ++i) d[b * rows + i] = dtmp[i * blocks + b];
  const uint32_t flip4 = flip * 0x01010101u;
  for (int64_t s = 0; s < blocks * 8; ++s) {  // s = 8·b + j: one 4-k step
    for (int i = 0; i < rows; ++i) {
      uint32_t v;
      __builtin_memcpy(&v, tmp + i * K + 4 * s, 4);
      v ^= flip4;
      __builtin_memcpy(q + (s * rows + i) * 4, &v, 4);
    }
  }
}

void run_qmatmul(const ops::MatmulParams& p, const ExecContext& ctx, const QKernels& k) {
  if (p.M == 0 || p.N == 0) return;
  if (p.K == 0) {
    for (int64_t m = 0; m < p.M; ++m)
      for (int64_t n = 0; n < p.N; ++n) p.y[m * p.ldy + n] = p.bias ? p.bias[n] : 0.0f;
    return;
  }
  QActs a;
  a.M = p.M, a.K = p.K, a.blocks = p.K / kQuantBlock, a.group = p.w.group, a.groups = p.K / p.w.group;
  ThreadPool& pool = ctx.pool();
  // Buffers of this call: small next to the weights (K + 8·K/32 bytes per row), large next to the
  // caches at vision-tower rows (see CallScratch).
  CallScratch scratch(ctx);
  const bool gemm = k.gemm && p.M >= kQGemmMinRows && gemm_off == 0;
  a.q = scratch.take<int8_t>(static_cast<size_t>(p.M * p.K), "int8 matmul: quantized x");
  a.d = scratch.take<float>(static_cast<size_t>(p.M * a.blocks), "int8 matmul: block scales");
  a.gs = scratch.take<float>(static_cast<size_t>(p.M * a.groups), "int8 matmul: group sums");
  if (gemm) a.xsum = scratch.take<int32_t>(static_cast<size_t>(p.M * a.blocks), "int8 matmul: block sums");
  const int64_t nt = pool.size();
  if (p.M >= 8 && nt > 1) {
    pool.parallel_for(p.M, 4, [&](int64_t b, int64_t e) {
      for (int64_t m = b; m < e; ++m) k.quantize(p.x + m * p.ldx, m, a);
    });
  } else {
    for (int64_t m = 0; m < p.M; ++m) k.quantize(p.x + m * p.ldx, m, a);
  }
  if (gemm) return k.gemm(p, a, pool);
  int64_t row_bytes = 0;
  weight_row_bytes(p.w.format, p.w.ld, &row_bytes);
  if (p.M <= kTileRows) {
    // Decode: memory-bound, every thread streams its own contiguous run of weight rows, two runs
    // per thread. Each run starts cold (the kernels prefetch one tile ahead within the run), so
    // fewer runs pay off at small N: on 2 Sapphire Rapids threads, going from 4 runs per thread to
    // 2 took N = 1536 / 256 (K = 1536) from 20 / 14 GB/s to 22 / 16 (q4) and 25 / 18.5 to 28 / 21
    // (q8), the large shapes unchanged within 1%; 1 run per thread lost up to 6% on q4 (no slack
    // left to balance the threads).
    // Runs of whole 16-row panels (core/weight_quant.h).
    // Called inside another job (matmul_group's pieces of a layer's q/k/v or gate/up) the runs
    // would go one after another on this thread: one run then, whose streams are the longer.
    const int64_t grain = nt == 1 || ThreadPool::in_job()
                              ? p.N
                              : std::max<int64_t>(kQPanelRows, round_up(ceil_div(p.N, nt * 2), kQPanelRows));
    pool.parallel_for(p.N, grain, [&](int64_t b, int64_t e) { k.tile(p, a, 0, static_cast<int>(p.M), b, e); });
    return;
  }
  // Prefill: output blocks whose weights stay in L2 (~1 MiB: half of a Sapphire Rapids core's)
  // while every row of x sweeps them. Each block re-reads all of x's codes (M·K bytes), so the
  // blocks are as large as L2 allows: at 128 KiB a K = 8960 block was 12 rows and x's traffic
  // outweighed the weights' 8 to 1. Rows are split too when the output blocks alone cannot keep
  // every thread busy.
  const int64_t nc = std::clamp<int64_t>((int64_t{1} << 20) / std::max<int64_t>(row_bytes, 1) / kQPanelRows * kQPanelRows,
                                         kQPanelRows, 512);
  for_output_blocks(p, pool, nc, kTileRows, [&](int64_t n0, int64_t m0, int64_t m1) {
    const int64_t n1 = std::min(n0 + nc, p.N);
    for (int64_t m = m0; m < m1; m += kTileRows) k.tile(p, a, m, static_cast<int>(std::min<int64_t>(kTileRows, m1 - m)), n0, n1);
  });
}

}  // namespace qvl::cpu
