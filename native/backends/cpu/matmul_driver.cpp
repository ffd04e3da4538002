#include <algorithm>
#include <cstdlib>

#include "backends/cpu/matmul_cpu.h"
#include "backends/cpu/thread_scratch.h"
#include "core/arena.h"
#include "core/error.h"

namespace qvl::cpu {

namespace {

using MatmulParams = DenseMatmul;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// One packed block per thread, kept between calls: reallocating 100+ KiB per task would cost
// more than small problems take.
struct PanelScratch {};
float* panel_buffer(size_t floats) {
  return static_cast<float*>(thread_scratch<PanelScratch>(floats * sizeof(float), "matmul: panel"));
}

// Rows [m, m + rows) (rows <= mr) by k [k0, k0 + kc) of x as xp[k * mr + r], rows past `rows` zero.
void pack_x_strip(const MatmulParams& p, int64_t m, int rows, int mr, int64_t k0, int64_t kc, float* xp) {
  for (int r = 0; r < mr; ++r) {
    if (r >= rows) {
      for (int64_t k = 0; k < kc; ++k) xp[k * mr + r] = 0.0f;
      continue;
    }
    const float* x = p.x + (m + r) * p.ldx + k0;
    for (int64_t k = 0; k < kc; ++k) xp[k * mr + r] = x[k];
  }
}

void fill_bias(const MatmulParams& p) {
  for (int64_t m = 0; m < p.M; ++m) {
    float* y = p.y + m * p.ldy;
    for (int64_t n = 0; n < p.N; ++n) y[n] = p.bias ? p.bias[n] : 0.0f;
  }
}

// x packed for a kernel with packed_x: per k-slice (kc wide, the last one shorter), the rows
// rounded up to mr in strips of mr, each strip kc x mr (pack_x_strip). The offset of the strip of
// rows from m (a multiple of mr) in the k-slice starting at k0; pack_x and the tasks both use it.
int64_t packed_x_offset(const MatmulParams& p, const MatmulKernels& k, int64_t k0, int64_t m) {
  return (k0 / k.kc) * round_up(p.M, k.mr) * k.kc + m * std::min<int64_t>(k.kc, p.K - k0);
}

// Every row of x packed, once per call (per pass) on the pool, then read by every task.
void pack_x(const MatmulParams& p, const MatmulKernels& k, ThreadPool& pool, float* xp) {
  const int64_t strips = ceil_div(p.M, k.mr), slices = ceil_div(p.K, k.kc);
  pool.parallel_for(slices * strips, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t m = (t % strips) * k.mr, k0 = (t / strips) * k.kc;
      pack_x_strip(p, m, static_cast<int>(std::min<int64_t>(k.mr, p.M - m)), k.mr, k0,
                   std::min<int64_t>(k.kc, p.K - k0), xp + packed_x_offset(p, k, k0, m));
    }
  });
}

// Outputs [n0, n1) for rows [m0, m1): pack the weights of that block one k-slice at a time and
// sweep every row of x over it, so each weight is converted once per task however large M is.
// `xp`: x as pack_x leaves it (null: the kernel reads x in place).
void packed_task(const MatmulParams& p, const MatmulKernels& k, int64_t n0, int64_t n1, int64_t m0, int64_t m1,
                 const float* xp) {
  const int64_t panels = ceil_div(n1 - n0, k.nr);
  const int64_t stride = round_up(k.kc, 16) * k.nr;
  float* buf = panel_buffer(static_cast<size_t>(panels * stride));
  for (int64_t k0 = 0; k0 < p.K; k0 += k.kc) {
    const int64_t kc = std::min<int64_t>(k.kc, p.K - k0);
    for (int64_t s = 0; s < panels; ++s) {
      const int64_t ns = n0 + s * k.nr;
      k.pack(p, ns, std::min<int64_t>(k.nr, n1 - ns), k0, kc, buf + s * stride);
    }
    for (int64_t mb = m0; mb < m1; mb += k.mc) {
      const int64_t me = std::min<int64_t>(mb + k.mc, m1);
      for (int64_t s = 0; s < panels; ++s) {
        const int64_t ns = n0 + s * k.nr;
        const int64_t nvalid = std::min<int64_t>(k.nr, n1 - ns);
        const float* bias = p.bias ? p.bias + ns : nullptr;
        for (int64_t m = mb; m < me; m += k.mr) {
          const int rows = static_cast<int>(std::min<int64_t>(k.mr, me - m));
          const float* x = xp ? xp + packed_x_offset(p, k, k0, m) : p.x + m * p.ldx + k0;
          k.tile(rows, kc, x, p.ldx, buf + s * stride, p.y + m * p.ldy + ns, p.ldy, nvalid, bias, k0 == 0);
        }
      }
    }
  }
}

}  // namespace

DType dense_storage(WeightFormat f) {
  const WeightFormatTraits& t = weight_format_traits(f);
  QVL_CHECK(t.kernel == WeightKernel::DenseF32 && t.block == 1, Unsupported,
            std::string("matmul: ") + t.name + " weights are not read by the dense kernels");
  switch (t.storage) {
    case DType::F32:
    case DType::BF16:
    case DType::F16: return t.storage;
    case DType::I32:
    case DType::I64:
    case DType::F8E4M3:
    case DType::U8: break;
  }
  fail(ErrorCode::Unsupported, std::string("matmul: the dense kernels do not widen ") + dtype_name(t.storage));
}

namespace {

// Scratch for packed x: 16 MiB (a 448x448 image's vision MLP, 1024 x 5120, takes two passes).
constexpr int64_t kPackedXBytes = int64_t{16} << 20;

// The packed path over rows [0, p.M) of p (one pass).
void run_packed(const MatmulParams& p, const MatmulKernels& k, ThreadPool& pool, float* xp) {
  // Split over output blocks; when there are too few to keep every thread busy, split rows too
  // (each row split re-packs its block, which is cheap next to the rows it serves).
  const int64_t nt = pool.size(), nc = k.nc;
  const int64_t n_chunks = ceil_div(p.N, nc);
  int64_t m_chunks = 1;
  if (nt > 1 && n_chunks < 2 * nt) m_chunks = std::min(ceil_div(p.M, k.mr), ceil_div(2 * nt, n_chunks));
  const int64_t m_step = round_up(ceil_div(p.M, m_chunks), k.mr);
  m_chunks = ceil_div(p.M, m_step);
  if (xp) pack_x(p, k, pool, xp);
  pool.parallel_for(n_chunks * m_chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      if (p.cancel && p.cancel->cancelled()) return;  // matmul() throws once the variant returns
      const int64_t n0 = (t / m_chunks) * nc, m0 = (t % m_chunks) * m_step;
      packed_task(p, k, n0, std::min(n0 + nc, p.N), m0, std::min(m0 + m_step, p.M), xp);
    }
  });
}

}  // namespace

void run_matmul(const ops::MatmulParams& params, const ExecContext& ctx, const MatmulKernels& k) {
  DenseMatmul p;
  static_cast<ops::MatmulParams&>(p) = params;
  p.dense = dense_storage(params.w.format);
  if (p.M == 0 || p.N == 0) return;
  if (p.K == 0) {
    fill_bias(p);
    return;
  }
  ThreadPool& pool = ctx.pool();
  const int64_t nt = pool.size();
  if (p.M <= k.small_m) {
    // Memory-bound: every thread streams its own contiguous run of weight rows.
    const int64_t grain = nt == 1 ? p.N : std::max<int64_t>(16, round_up(ceil_div(p.N, nt * 4), 4));
    const int rows = static_cast<int>(p.M);
    pool.parallel_for(p.N, grain, [&](int64_t b, int64_t e) { k.rows(p, 0, rows, b, e); });
    return;
  }
  if (!k.packed_x) return run_packed(p, k, pool, nullptr);
  // packed_task finds a row block's strips by its first row: blocks must start on a strip.
  QVL_CHECK(k.mc % k.mr == 0, Native, "matmul: packed x needs mc to be a multiple of mr");
  // Packed x costs M x K floats of scratch: rows go in passes of at most kPackedXBytes, each
  // re-packing the weights (once per pass, cheap next to the rows it serves).
  const int64_t slices = ceil_div(p.K, k.kc);
  const int64_t passes = ceil_div(round_up(p.M, k.mr) * slices * k.kc * int64_t{sizeof(float)}, kPackedXBytes);
  const int64_t rows = round_up(ceil_div(p.M, passes), k.mr);
  ArenaScope scope(ctx.arena());
  Tensor xp = ctx.temp(DType::F32, {rows * slices * k.kc});
  for (int64_t m0 = 0; m0 < p.M; m0 += rows) {
    DenseMatmul part = p;
    part.M = std::min(rows, p.M - m0);
    part.x = p.x + m0 * p.ldx;
    part.y = p.y + m0 * p.ldy;
    run_packed(part, k, pool, xp.data<float>());
  }
}

}  // namespace qvl::cpu
