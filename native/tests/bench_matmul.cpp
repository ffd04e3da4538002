// Timed matmul runs for `npm run bench`. The weights rotate through enough copies to spill
// the last-level cache, as a model's layers do, so decode (M = 1) timings measure streaming
// from DRAM rather than replaying a cache-resident matrix.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "backends/cpu/matmul_q.h"
#include "core/arena.h"
#include "core/error.h"
#include "core/exec_context.h"
#include "core/read_stream.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "core/weight_quant.h"
#include "ops/matmul.h"
#include "ops/weight_quant.h"
#include "tests/bench.h"

namespace qvl::bench {

namespace {

WeightFormat parse_format(const std::string& s) {
  for (const WeightFormat f : kWeightFormats) {
    if (s == weight_format_name(f)) return f;
  }
  if (s == "F32") return WeightFormat::F32;
  if (s == "BF16") return WeightFormat::BF16;
  if (s == "F16") return WeightFormat::F16;
  fail(ErrorCode::Input, "benchMatmul: wDtype must be f32, bf16, f16, fp8, q8 or q4, got '" + s + "'");
}

// Elements per scale: for the group-quantized formats the group weights of K inputs get at load
// (core/weight_quant.h, q_load_group), the format's own block otherwise (fp8's 128; the dense
// formats have no scales).
int64_t scale_group(const WeightFormatTraits& t, int64_t K) {
  return t.kernel == WeightKernel::Int8Dot ? q_load_group(t.format, K) : t.block;
}

// Bytes per stored unit of format f with rows of K elements: codes (or elements), scales, zero
// points. The unit is a row, or for q8/q4 a panel of 16 rows (core/weight_quant.h); fp8 keeps one
// f32 per 128-block.
struct Layout {
  int64_t rows = 1;  // rows per unit
  int64_t data = 0, scales = 0, zeros = 0;
};
Layout layout(WeightFormat f, int64_t K) {
  const WeightFormatTraits& t = weight_format_traits(f);
  Layout l;
  QVL_CHECK(weight_row_bytes(f, K, &l.data), Input, std::string("benchMatmul: K must be a multiple of ") +
                                                        std::to_string(t.block) + " for " + t.name);
  QuantRowBytes pb;
  if (t.kernel == WeightKernel::Int8Dot && quant_panel_bytes(f, K, scale_group(t, K), &pb)) {
    l.rows = kQPanelRows, l.data = pb.codes, l.scales = pb.scales, l.zeros = pb.zeros;
    return l;
  }
  l.scales = t.has_scales ? K / scale_group(t, K) * 4 : 0;
  return l;
}

// One copy of the weights in format f: data, scales and zero points, as the model keeps them.
struct WeightCopy {
  std::vector<Tensor> storage;
  WeightRef ref;
};

// N rows made of a repeating 256-row pattern (timings do not depend on the values; generating
// and converting 150k distinct rows would take longer than the benchmark).
WeightCopy make_weights(WeightFormat f, int64_t N, int64_t K, ThreadPool& pool) {
  const WeightFormatTraits& t = weight_format_traits(f);
  const int64_t P = std::min<int64_t>(N, 256);  // whole q panels unless P = N
  std::vector<float> pattern(static_cast<size_t>(P * K));
  fill_values(pattern.data(), pattern.size(), 3);
  const WeightRef src = dense_weight(WeightFormat::F32, pattern.data(), P, K, K);
  const Layout l = layout(f, K);
  const int64_t units = (N + l.rows - 1) / l.rows, pu = (P + l.rows - 1) / l.rows;
  WeightCopy c;
  c.storage.push_back(Tensor::empty(DType::U8, {units, l.data}));
  if (l.scales > 0) c.storage.push_back(Tensor::empty(DType::U8, {units, l.scales}));
  if (l.zeros > 0) c.storage.push_back(Tensor::empty(DType::U8, {units, l.zeros}));
  uint8_t* data = c.storage[0].data<uint8_t>();
  uint8_t* scales = l.scales > 0 ? c.storage[1].data<uint8_t>() : nullptr;
  uint8_t* zeros = l.zeros > 0 ? c.storage[2].data<uint8_t>() : nullptr;
  if (t.kernel == WeightKernel::Int8Dot) {
    QVL_CHECK(ops::quantize_weight(src, f, scale_group(t, K), data, scales, zeros, pool) < 0, Native, "benchMatmul: a scale overflowed");
  } else {
    for (int64_t r = 0; r < P; ++r)
      t.quantize_row(&pattern[r * K], K, data + r * l.data, scales ? scales + r * l.scales : nullptr, nullptr);
  }
  for (int64_t u = pu; u < units; u += pu) {
    const int64_t n = std::min(pu, units - u);
    std::memcpy(data + u * l.data, data, static_cast<size_t>(n * l.data));
    if (scales) std::memcpy(scales + u * l.scales, scales, static_cast<size_t>(n * l.scales));
    if (zeros) std::memcpy(zeros + u * l.zeros, zeros, static_cast<size_t>(n * l.zeros));
  }
  c.ref = dense_weight(f, data, N, K, K);
  c.ref.scales = scales;
  c.ref.zeros = zeros;
  c.ref.group = t.has_scales ? scale_group(t, K) : 0;
  return c;
}

}  // namespace

void fill_values(float* out, size_t n, uint64_t seed) {
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    out[i] = static_cast<float>(static_cast<int64_t>(s >> 40) - (int64_t{1} << 23)) * (1.7f / (1 << 23));
  }
}

double weight_bytes(WeightFormat f, int64_t N, int64_t K) {
  const Layout l = layout(f, K);
  return static_cast<double>(N) / static_cast<double>(l.rows) * static_cast<double>(l.data + l.scales + l.zeros);
}

double matmul_seconds(const MatmulCase& c) {
  constexpr int64_t kMaxDim = int64_t{1} << 20;
  QVL_CHECK(c.M >= 1 && c.K >= 1 && c.N >= 1 && c.M <= kMaxDim && c.K <= kMaxDim && c.N <= kMaxDim, Input,
            "benchMatmul: M, K, N must be in [1, 2^20]");
  QVL_CHECK(c.iters >= 1 && c.iters <= 100000, Input, "benchMatmul: iters must be in [1, 100000]");
  QVL_CHECK(c.family == "matmul" || c.family == "matmul_bf16", Input,
            "benchMatmul: family must be matmul or matmul_bf16, got '" + c.family + "'");
  const WeightFormat format = parse_format(c.w_dtype);
  const auto& variant =
      find_variant(c.family == "matmul" ? ops::matmul_family() : ops::matmul_bf16_family(), c.variant, "benchMatmul");
  QVL_CHECK(variant.reads(format), Unsupported,
            std::string("benchMatmul: ") + variant.name + " does not read " + weight_format_name(format) + " weights");
  QVL_CHECK(!c.row_tiles || (c.family == "matmul" && weight_format_traits(format).kernel == WeightKernel::Int8Dot), Input,
            "benchMatmul: rowTiles applies to q8/q4 weights in family matmul");
  const double w_bytes = weight_bytes(format, c.N, c.K);
  const double all_bytes = w_bytes + 4.0 * c.M * (c.K + c.N);
  QVL_CHECK(all_bytes <= 8.0 * (1 << 30), Input, "benchMatmul: problem larger than 8 GiB");
  const std::shared_ptr<ThreadPool> gen_pool = default_pool();

  Tensor x = Tensor::empty(DType::F32, {c.M, c.K});
  Tensor y = Tensor::empty(DType::F32, {c.M, c.N});
  Tensor bias = Tensor::empty(DType::F32, {c.N});
  fill_values(x.data<float>(), static_cast<size_t>(c.M * c.K), 1);
  fill_values(bias.data<float>(), static_cast<size_t>(c.N), 2);

  QVL_CHECK(c.spill_bytes >= 0 && c.spill_bytes <= (int64_t{4} << 30), Input, "benchMatmul: spillBytes must be in [0, 4 GiB]");
  // Up to 256 copies: at 64 a 7 MB weight (q4 MLP) rotated through 460 MB, which a 480 MiB
  // last-level cache (Granite Rapids class VMs) holds, and decode read it faster than DRAM.
  const int copies = static_cast<int>(std::clamp(static_cast<double>(c.spill_bytes) / w_bytes, 1.0, 256.0));
  std::vector<WeightCopy> ws;
  for (int i = 0; i < copies; ++i) ws.push_back(make_weights(format, c.N, c.K, *gen_pool));

  ops::MatmulParams p;
  p.M = c.M, p.K = c.K, p.N = c.N;
  p.x = x.data<float>(), p.ldx = c.K;
  p.w = ws[0].ref;
  p.bias = bias.data<float>();
  p.y = y.data<float>(), p.ldy = c.N;
  ops::check_matmul(p);

  const std::shared_ptr<ThreadPool> pool = default_pool();
  // A scratch arena, as a model's context has (the bf16 variants take x's bf16 copy from it).
  Arena arena;
  ExecContext ctx(*pool);
  ctx.with_arena(&arena);
  std::optional<cpu::QGemmOff> gemm_off;
  if (c.row_tiles) gemm_off.emplace();
  // Every copy read once first, on the pool's threads: on a 2-vCPU Zen 5 VM the first reads of
  // freshly written copies ran up to 25x slower for a while (1 thread, 3 MB of q8: best of 200
  // calls 1.5 ms against 96 us once every copy had been read). A plain read, not a call per copy:
  // prefill rows would pay up to 256 matmuls for it.
  std::atomic<uint64_t> sink{0};
  for (const WeightCopy& wc : ws) {
    for (const Tensor& t : wc.storage) {
      const auto* bytes = static_cast<const unsigned char*>(t.raw());
      pool->parallel_for(t.nbytes(), int64_t{1} << 20, [&](int64_t b, int64_t e) { sink += read_stream(bytes + b, static_cast<size_t>(e - b)); });
    }
  }
  variant.fn(p, ctx);  // warm-up: thread start, panel buffers (the atomic sink keeps the reads)
  double best = 1e30;
  for (int i = 0; i < c.iters; ++i) {
    p.w = ws[(i + 1) % copies].ref;
    const auto t0 = std::chrono::steady_clock::now();
    variant.fn(p, ctx);
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return best;
}

}  // namespace qvl::bench
