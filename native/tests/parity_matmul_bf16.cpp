// matmul_bf16 parity: every bf16 variant (AMX, AVX512-BF16) against the reference that rounds x
// and w to bf16 exactly as the hardware does and sums the (exact) products in double.
//
// Tolerance. With the rounding shared, a kernel differs from the reference only by its f32
// accumulation order, so the dense matmul's bound applies: errors relative to max(|ref|, sqrt(K))
// (inputs N(0,1), outputs ~sqrt(K)), 2e-5. A kernel that skipped the rounding of x (or of w) would
// be off by ~2^-9 of each product, ~2e-3 of sqrt(K): a hundred times the bound.
//
// Shapes cover the driver's seams: 32-row blocks and 16/32-output tiles (M, N not multiples),
// 32-k steps (K odd, K < 32), the 1024-k weight blocks (K = 1025, 2100: accumulating blocks),
// 512-row and 128-output tasks (M = 513, N = 300), row and output strides, bias or none.
// Also: matmul() under Precision::Fast runs the bf16 kernel from matmul_bf16_min_rows rows and the
// exact one below it, a set cancel token stops the kernels before they write, and no thread
// keeps a tile configuration after an AMX call.
#include <cmath>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/matmul_bf16_cpu.h"
#include "core/cancel.h"
#include "core/cpu.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/matmul.h"
#include "tests/parity.h"
#include "tests/parity_matmul_cases.h"

namespace qvl::parity {

namespace {

using ops::MatmulParams;

using Shape = MatmulShape;

const Shape kShapes[] = {
    {1, 1, 1},     {1, 33, 17},    {17, 31, 5},    {17, 64, 32},   {32, 7, 16},    {33, 129, 63},  {100, 1, 300},
    {100, 1025, 65}, {100, 96, 129}, {513, 33, 17},  {513, 1025, 129}, {64, 2100, 40}, {2, 257, 300}, {0, 33, 17},
    {5, 0, 7},     {5, 16, 0},
};

// Runs fn(p with y) into a fresh guarded output and returns its compact copy.
template <class Fn>
std::vector<float> run_into(MatmulParams p, Fn&& fn) {
  Guarded<float> y(y_extent(p));
  fill_unwritten(y);
  p.y = y.data();
  fn(p);
  return compact(p, y);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// matmul() picks the family from the context's precision and the row count.
std::vector<Result> dispatch_cases(ThreadPool& pool, Rng& rng) {
  std::vector<Result> out;
  const ops::Variant<ops::MatmulFn>* fast = ops::matmul_bf16_variant(Device::Host, WeightFormat::BF16);
  const int64_t min_rows = fast ? ops::matmul_bf16_min_rows(fast->isa) : 8;
  for (const int64_t M : {min_rows - 1, min_rows}) {
    MatmulProblem pr = make_matmul_problem({M, 70, 40}, WeightFormat::BF16, true, false, rng);
    const bool wants_fast = fast && M >= min_rows;
    const std::string what = "Precision::Fast at M=" + std::to_string(M) + " runs " +
                             (wants_fast ? std::string("matmul_bf16 ") + fast->name : std::string("the exact matmul"));
    out.push_back(expect_accepted("matmul_bf16", what, [&] {
      ExecContext ctx(pool);
      ctx.with_precision(Precision::Fast);
      const auto got = run_into(pr.p, [&](const MatmulParams& p) { ops::matmul(p, ctx); });
      const auto want = run_into(pr.p, [&](const MatmulParams& p) {
        (wants_fast ? *fast : ops::matmul_variant(Device::Host, WeightFormat::BF16)).fn(p, ExecContext(pool));
      });
      if (!same_bits(got, want)) fail(ErrorCode::Native, "matmul() ran another kernel");
      const auto exact = run_into(pr.p, [&](const MatmulParams& p) { ops::matmul(p, ExecContext(pool)); });
      if (wants_fast && same_bits(got, exact)) fail(ErrorCode::Native, "Fast gave the exact result: bf16 rounding missing");
    }));
  }
  return out;
}

std::vector<Result> cancel_cases(ThreadPool& pool) {
  std::vector<Result> out;
  const int64_t M = 96, K = 40, N = 300;
  std::vector<float> x(M * K, 0.5f), w(N * K, 0.25f);
  MatmulParams p;
  p.M = M, p.N = N, p.K = K;
  p.x = x.data(), p.ldx = K;
  p.w = dense_weight(WeightFormat::F32, w.data(), N, K, K);
  p.ldy = N;
  CancelToken aborted;
  aborted.cancel(CancelToken::Reason::Aborted);
  const auto& family = ops::matmul_bf16_family();
  for (const auto& v : family.runnable()) {
    if (v.fn == family.reference().fn) continue;
    MatmulParams pv = p;
    pv.cancel = &aborted;
    out.push_back(cancelled_case("matmul_bf16", v, WeightFormat::F32, pv, pool));
  }
  return out;
}

// After an AMX matmul, neither the calling thread nor any pool worker holds a tile configuration.
Result tiles_released_case(ThreadPool& pool, Rng& rng) {
  return expect_accepted("matmul_bf16", "amx: tiles released on the caller and every worker", [&] {
    MatmulProblem pr = make_matmul_problem({100, 64, 256}, WeightFormat::BF16, false, false, rng);
    run_into(pr.p, [&](const MatmulParams& p) { cpu::matmul_bf16_amx(p, ExecContext(pool)); });
    if (!cpu::amx_tiles_released()) fail(ErrorCode::Native, "the calling thread kept its tile configuration");
    std::vector<int> held(static_cast<size_t>(pool.size() * 4), 0);
    pool.parallel_for(static_cast<int64_t>(held.size()), 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) held[static_cast<size_t>(i)] = cpu::amx_tiles_released() ? 0 : 1;
    });
    for (int h : held)
      if (h) fail(ErrorCode::Native, "a pool worker kept its tile configuration");
  });
}

}  // namespace

std::vector<Result> parity_matmul_bf16(uint64_t seed) {
  Rng rng(seed);
  const auto& family = ops::matmul_bf16_family();
  const std::shared_ptr<ThreadPool> dflt = default_pool();
  ThreadPool three(3);
  std::vector<Result> results = reference_cases(
      "matmul_bf16", family, kShapes, std::size(kShapes),
      [](const Shape&, WeightFormat f) { return weight_format_traits(f).kernel == WeightKernel::DenseF32; }, rng, *dflt,
      three);
  for (Result& r : dispatch_cases(three, rng)) results.push_back(std::move(r));
  for (Result& r : cancel_cases(three)) results.push_back(std::move(r));
  if (isa_available(Isa::Amx) && ops::OpFamilyBase::allowed(Device::Host, Isa::Amx)) {
    results.push_back(tiles_released_case(three, rng));
  }
  return results;
}

}  // namespace qvl::parity
