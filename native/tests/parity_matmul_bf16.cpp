// matmul_bf16 parity: every bf16 variant (AMX, AVX512-BF16) against the reference that rounds x
// and w to bf16 exactly as the hardware does and sums the (exact) products in double.
//
// Tolerance. With the rounding shared, a kernel differs from the reference only by its f32
// accumulation order, so the dense matmul's bound applies: errors relative to max(|ref|, sqrt(K))
// (inputs N(0,1), outputs ~sqrt(K)), 2e-5. A kernel that skipped the rounding of x (or of w) would
// be off by ~2^-9 of each product, ~2e-3 of sqrt(K): a hundred times the bound.
//
// Shapes cover the driver's seams: 32-row blocks and 16/32-output tiles (M, N not multiples),
// 32-k steps (K odd, K < 32), the weight blocks of at most 1280 k (K = 2100, 2700: accumulating
// blocks, equal or with a shorter last one), 1024-row and 128-output tasks (M = 1025, N = 300),
// row and output strides, bias or none.
// q8, q4 (groups 32 and 128) and f8 weights: the reference dequantizes whole rows through the
// format's dequantize_row and rounds them like f32 rows; the kernels dequantize per packed panel
// (f8 in whole 128-blocks), so the same bound holds. K is a whole number of the format's blocks:
// across the 1024-k seam (1152, 1280, 2176), odd 32-block counts (q4's trailing half pair).
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
#include "core/weight_quant.h"
#include "ops/matmul.h"
#include "tests/amx_emulated.h"
#include "tests/parity.h"
#include "tests/parity_matmul_cases.h"

namespace qvl::parity {

namespace {

using ops::MatmulParams;

using Shape = MatmulShape;

const Shape kShapes[] = {
    {1, 1, 1},     {1, 33, 17},    {17, 31, 5},    {17, 64, 32},   {32, 7, 16},    {33, 129, 63},  {100, 1, 300},
    {100, 1025, 65}, {100, 96, 129}, {513, 33, 17},  {513, 1025, 129}, {64, 2100, 40}, {2, 257, 300}, {0, 33, 17},
    {5, 0, 7},     {5, 16, 0},     {1025, 65, 33},  // past a task's rows (kTaskRows)
    {40, 2700, 33},  // three k blocks, the last shorter (928, 928, 864)
};

// Shapes for the block formats (K a multiple of 128, so f8 runs them too, or of 32 for q8/q4).
const Shape kQuantShapes[] = {
    {1, 32, 1},     {17, 96, 33},    {33, 128, 17},  {100, 1152, 65}, {513, 1280, 129},
    {64, 2176, 40}, {40, 384, 300},  {70, 1120, 50}, {0, 128, 5},     {5, 128, 0},     {1040, 160, 20},
};

bool is_block_format(WeightFormat f) { return weight_format_traits(f).kernel != WeightKernel::DenseF32; }

// pr's weights replaced by q8/q4 rows quantized with `group` (rows one group longer when strided,
// shifted positive on every third row so q4 zero points leave the middle).
void regroup(MatmulProblem& pr, WeightFormat f, int64_t group, bool strided, Rng& rng) {
  ops::MatmulParams& p = pr.p;
  const int64_t ld = (p.K + group - 1) / group * group + (strided ? group : 0);
  QuantRowBytes rb;
  if (!quant_row_bytes(f, ld, group, &rb)) fail(ErrorCode::Native, "parity regroup: row size");
  const int64_t groups = ld / group;
  pr.w.assign(static_cast<size_t>((p.N * rb.codes + 7) / 8), 0);
  pr.scales.assign(static_cast<size_t>((p.N * rb.scales + 7) / 8), 0);
  pr.zeros.assign(static_cast<size_t>(p.N * rb.zeros), 0);
  uint8_t* w = reinterpret_cast<uint8_t*>(pr.w.data());
  uint16_t* sc = reinterpret_cast<uint16_t*>(pr.scales.data());
  std::vector<float> row(static_cast<size_t>(ld));
  for (int64_t n = 0; n < p.N; ++n) {
    const float shift = n % 3 == 0 ? 0.8f : 0.0f;
    for (auto& v : row) v = rng.normal() + shift;
    const int64_t bad = f == WeightFormat::Q8 ? q8_quantize(row.data(), ld, group, w + n * rb.codes, sc + n * groups)
                                              : q4_quantize(row.data(), ld, group, w + n * rb.codes, sc + n * groups,
                                                            &pr.zeros[n * rb.zeros]);
    if (bad >= 0) fail(ErrorCode::Native, "parity regroup: a scale overflowed");
  }
  to_panels(f, p.N, ld, group, pr.w, pr.scales, pr.zeros);
  p.w.data = pr.w.empty() ? nullptr : pr.w.data();
  p.w.ld = ld;
  p.w.scales = pr.scales.empty() ? nullptr : pr.scales.data();
  p.w.zeros = pr.zeros.empty() ? nullptr : pr.zeros.data();
  p.w.group = group;
  pr.desc += " g=" + std::to_string(group);
}

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

// q8 and q4 with group 128 (reference_cases quantizes with group == block, 32): every variant
// against the reference, 2e-5 of max(|ref|, sqrt(K)), guards and row padding intact.
std::vector<Result> group128_cases(const ops::OpFamily<ops::MatmulFn>& family, Rng& rng, ThreadPool& dflt,
                                   ThreadPool& three) {
  std::vector<Result> results;
  const Shape shapes[] = {{33, 128, 17}, {100, 1152, 65}, {70, 1120, 50}, {513, 384, 129}};
  int ci = 0;
  for (const Shape& s : shapes) {
    for (const WeightFormat f : {WeightFormat::Q8, WeightFormat::Q4}) {
      const bool with_bias = ci % 2 == 0, strided = ci % 3 != 0;
      ThreadPool& pool = ci++ % 2 ? three : dflt;
      MatmulProblem pr = make_matmul_problem(s, f, with_bias, strided, rng);
      regroup(pr, f, 128, strided, rng);
      ops::MatmulParams p = pr.p;
      const size_t ext = y_extent(p);
      Guarded<float> ref(ext);
      fill_unwritten(ref);
      p.y = ext ? ref.data() : nullptr;
      ops::check_matmul(p);
      family.reference().fn(p, ExecContext(dflt));
      const std::vector<float> want = compact(p, ref);
      for (const auto& v : family.runnable()) {
        if (v.fn == family.reference().fn || !v.reads(f)) continue;
        Guarded<float> y(ext);
        fill_unwritten(y);
        p.y = ext ? y.data() : nullptr;
        Result r = variant_case("matmul_bf16", v, f, pr.desc + " threads=" + std::to_string(pool.size()));
        run_case(r, [&] {
          v.fn(p, ExecContext(pool));
          const std::vector<float> got = compact(p, y);
          compare(got.data(), want.data(), got.size(), 2e-5, std::sqrt(static_cast<double>(s.K)), &r);
          r.guards_ok = y.intact() && padding_intact(p, y);
          if (!padding_intact(p, y)) r.note = "wrote into the row padding of y";
        });
        results.push_back(std::move(r));
      }
    }
  }
  return results;
}

// matmul() picks the family from the context's precision and the row count, for dense and block
// weights alike (q8/q4 only on AMX: under QWENVL_MAX_ISA=avx512bf16 their Fast cases expect exact).
std::vector<Result> dispatch_cases(ThreadPool& pool, Rng& rng) {
  std::vector<Result> out;
  for (const WeightFormat f : {WeightFormat::BF16, WeightFormat::Q8, WeightFormat::Q4, WeightFormat::F8}) {
    const ops::Variant<ops::MatmulFn>* fast = ops::matmul_bf16_variant(Device::Host, f);
    const int64_t min_rows = fast ? ops::matmul_bf16_min_rows(fast->isa) : 8;
    const int64_t K = f == WeightFormat::BF16 ? 70 : 128;
    for (const int64_t M : {min_rows - 1, min_rows}) {
      MatmulProblem pr = make_matmul_problem({M, K, 40}, f, true, false, rng);
      const bool wants_fast = fast && M >= min_rows;
      const std::string what = std::string(weight_format_name(f)) + ": Precision::Fast at M=" + std::to_string(M) +
                               " runs " +
                               (wants_fast ? std::string("matmul_bf16 ") + fast->name : std::string("the exact matmul"));
      out.push_back(expect_accepted("matmul_bf16", what, [&] {
        ExecContext ctx(pool);
        ctx.with_precision(Precision::Fast);
        const auto got = run_into(pr.p, [&](const MatmulParams& p) { ops::matmul(p, ctx); });
        const auto want = run_into(pr.p, [&](const MatmulParams& p) {
          (wants_fast ? *fast : ops::matmul_variant(Device::Host, f)).fn(p, ExecContext(pool));
        });
        if (!same_bits(got, want)) fail(ErrorCode::Native, "matmul() ran another kernel");
        const auto exact = run_into(pr.p, [&](const MatmulParams& p) { ops::matmul(p, ExecContext(pool)); });
        if (wants_fast && same_bits(got, exact)) fail(ErrorCode::Native, "Fast gave the exact result: bf16 rounding missing");
      }));
    }
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

// After an AMX matmul (`run`: on the tiles, or on the emulator), neither the calling thread nor any
// pool worker holds a tile configuration (`released`: STTILECFG's view, the hardware's or the
// emulator's).
Result tiles_released_case(const std::string& variant, ops::MatmulFn run, bool (*released)(), ThreadPool& pool, Rng& rng) {
  return expect_accepted("matmul_bf16", variant + ": tiles released on the caller and every worker", [&] {
    MatmulProblem pr = make_matmul_problem({100, 64, 256}, WeightFormat::BF16, false, false, rng);
    run_into(pr.p, [&](const MatmulParams& p) { run(p, ExecContext(pool)); });
    if (!released()) fail(ErrorCode::Native, "the calling thread kept its tile configuration");
    std::vector<int> held(static_cast<size_t>(pool.size() * 4), 0);
    pool.parallel_for(static_cast<int64_t>(held.size()), 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) held[static_cast<size_t>(i)] = released() ? 0 : 1;
    });
    for (int h : held)
      if (h) fail(ErrorCode::Native, "a pool worker kept its tile configuration");
  });
}

// The dense and block-format shapes through `family`'s variants.
std::vector<Result> shape_cases(const ops::OpFamily<ops::MatmulFn>& family, Rng& rng, ThreadPool& dflt, ThreadPool& three) {
  std::vector<Result> results = reference_cases(
      "matmul_bf16", family, kShapes, std::size(kShapes),
      [](const Shape&, WeightFormat f) { return weight_format_traits(f).kernel == WeightKernel::DenseF32; }, rng, dflt,
      three);
  for (Result& r : reference_cases(
           "matmul_bf16", family, kQuantShapes, std::size(kQuantShapes),
           [](const Shape& s, WeightFormat f) { return is_block_format(f) && s.K % weight_format_traits(f).block == 0; },
           rng, dflt, three))
    results.push_back(std::move(r));
  return results;
}

}  // namespace

std::vector<Result> parity_matmul_bf16(uint64_t seed) {
  Rng rng(seed);
  const auto& family = ops::matmul_bf16_family();
  const std::shared_ptr<ThreadPool> dflt = default_pool();
  ThreadPool three(3);
  std::vector<Result> results = shape_cases(family, rng, *dflt, three);
  for (Result& r : group128_cases(family, rng, *dflt, three)) results.push_back(std::move(r));
  for (Result& r : streamed_cases("matmul_bf16", family, WeightFormat::BF16, rng, *dflt)) results.push_back(std::move(r));
  for (Result& r : dispatch_cases(three, rng)) results.push_back(std::move(r));
  for (Result& r : cancel_cases(three)) results.push_back(std::move(r));
  if (isa_available(Isa::Amx) && ops::OpFamilyBase::allowed(Device::Host, Isa::Amx)) {
    results.push_back(tiles_released_case("amx", cpu::matmul_bf16_amx, cpu::amx_tiles_released, three, rng));
  }
  // The AMX kernel's source on the emulator, where the CPU has no tiles (and beside them where it has).
  if (amx_emulation_runs()) {
    const ops::Variant<ops::MatmulFn> emulated = matmul_bf16_amx_emulated();
    for (Result& r : shape_cases(ops::OpFamily<ops::MatmulFn>("matmul_bf16", {family.reference(), emulated}), rng, *dflt, three))
      results.push_back(std::move(r));
    results.push_back(tiles_released_case(emulated.name, emulated.fn, amx_emulated_tiles_released, three, rng));
  }
  return results;
}

}  // namespace qvl::parity
