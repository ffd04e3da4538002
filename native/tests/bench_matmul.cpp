// Timed matmul runs for `npm run bench`. The weights rotate through enough copies to spill
// the last-level cache, as a model's layers do, so decode (M = 1) timings measure streaming
// from DRAM rather than replaying a cache-resident matrix.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/exec_context.h"
#include "core/error.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "ops/matmul.h"
#include "tests/bench.h"

namespace qvl::bench {

namespace {

DType parse_dtype(const std::string& s) {
  if (s == "f32" || s == "F32") return DType::F32;
  if (s == "bf16" || s == "BF16") return DType::BF16;
  if (s == "f16" || s == "F16") return DType::F16;
  if (s == "fp8") return DType::F8E4M3;  // the fp8 format: e4m3 bytes and 128-block scales
  fail(ErrorCode::Input, "benchMatmul: wDtype must be f32, bf16, f16 or fp8, got '" + s + "'");
}

}  // namespace

void fill_values(float* out, size_t n, uint64_t seed) {
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    out[i] = static_cast<float>(static_cast<int64_t>(s >> 40) - (int64_t{1} << 23)) * (1.7f / (1 << 23));
  }
}

double matmul_seconds(const MatmulCase& c) {
  constexpr int64_t kMaxDim = int64_t{1} << 20;
  QVL_CHECK(c.M >= 1 && c.K >= 1 && c.N >= 1 && c.M <= kMaxDim && c.K <= kMaxDim && c.N <= kMaxDim, Input,
            "benchMatmul: M, K, N must be in [1, 2^20]");
  QVL_CHECK(c.iters >= 1 && c.iters <= 100000, Input, "benchMatmul: iters must be in [1, 100000]");
  const DType dt = parse_dtype(c.w_dtype);
  QVL_CHECK(c.family == "matmul" || c.family == "matmul_bf16", Input,
            "benchMatmul: family must be matmul or matmul_bf16, got '" + c.family + "'");
  const auto& variant =
      find_variant(c.family == "matmul" ? ops::matmul_family() : ops::matmul_bf16_family(), c.variant, "benchMatmul");
  WeightFormat format = WeightFormat::F8;
  QVL_CHECK(dt == DType::F8E4M3 || weight_format_from_dtype(dt, &format), Input,
            std::string("benchMatmul: ") + dtype_name(dt) + " is no weight format");
  QVL_CHECK(dt != DType::F8E4M3 || c.K % 128 == 0, Input, "benchMatmul: fp8 needs K a multiple of 128");
  QVL_CHECK(variant.reads(format), Unsupported,
            std::string("benchMatmul: ") + variant.name + " does not read " + weight_format_name(format) + " weights");
  const double w_bytes = static_cast<double>(c.N) * c.K * dtype_size(dt);
  const double all_bytes = w_bytes + 4.0 * c.M * (c.K + c.N);
  QVL_CHECK(all_bytes <= 8.0 * (1 << 30), Input, "benchMatmul: problem larger than 8 GiB");

  Tensor x = Tensor::empty(DType::F32, {c.M, c.K});
  Tensor y = Tensor::empty(DType::F32, {c.M, c.N});
  Tensor bias = Tensor::empty(DType::F32, {c.N});
  fill_values(x.data<float>(), static_cast<size_t>(c.M * c.K), 1);
  fill_values(bias.data<float>(), static_cast<size_t>(c.N), 2);

  const int copies = static_cast<int>(std::clamp(256.0 * (1 << 20) / w_bytes, 1.0, 8.0));
  std::vector<Tensor> ws;
  Tensor scales = Tensor::empty(DType::F32, {c.N, dt == DType::F8E4M3 ? c.K / 128 : 0});
  {
    std::vector<float> tmp(static_cast<size_t>(c.N * c.K));
    fill_values(tmp.data(), tmp.size(), 3);
    ws.push_back(Tensor::empty(dt, {c.N, c.K}));
    if (dt == DType::F32) {
      std::memcpy(ws[0].raw(), tmp.data(), ws[0].nbytes());
    } else if (dt == DType::F8E4M3) {
      const WeightFormatTraits& t = weight_format_traits(WeightFormat::F8);
      for (int64_t n = 0; n < c.N; ++n)
        t.quantize_row(tmp.data() + n * c.K, c.K, ws[0].data<uint8_t>() + n * c.K, scales.data<float>() + n * (c.K / 128), nullptr);
    } else {
      uint16_t* w = ws[0].data<uint16_t>();
      for (size_t i = 0; i < tmp.size(); ++i) w[i] = dt == DType::BF16 ? f32_to_bf16(tmp[i]) : f32_to_f16(tmp[i]);
    }
    for (int i = 1; i < copies; ++i) {
      ws.push_back(Tensor::empty(dt, {c.N, c.K}));
      std::memcpy(ws.back().raw(), ws[0].raw(), ws[0].nbytes());
    }
  }

  ops::MatmulParams p;
  p.M = c.M, p.K = c.K, p.N = c.N;
  p.x = x.data<float>(), p.ldx = c.K;
  p.w = dense_weight(format, ws[0].raw(), c.N, c.K, c.K);
  if (dt == DType::F8E4M3) p.w.scales = scales.data<float>(), p.w.group = 128;
  p.bias = bias.data<float>();
  p.y = y.data<float>(), p.ldy = c.N;
  ops::check_matmul(p);

  const std::shared_ptr<ThreadPool> pool = default_pool();
  // A scratch arena, as a model's context has (the bf16 variants take x's bf16 copy from it).
  Arena arena;
  ExecContext ctx(*pool);
  ctx.with_arena(&arena);
  variant.fn(p, ctx);  // warm-up: thread start, panel buffers, page faults
  double best = 1e30;
  for (int i = 0; i < c.iters; ++i) {
    p.w.data = ws[(i + 1) % copies].raw();
    const auto t0 = std::chrono::steady_clock::now();
    variant.fn(p, ctx);
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return best;
}

}  // namespace qvl::bench
