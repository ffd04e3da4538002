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

namespace qvl::parity {

namespace {

using ops::MatmulParams;

struct Shape {
  int64_t M, K, N;
};

const Shape kShapes[] = {
    {1, 1, 1},     {1, 33, 17},    {17, 31, 5},    {17, 64, 32},   {32, 7, 16},    {33, 129, 63},  {100, 1, 300},
    {100, 1025, 65}, {100, 96, 129}, {513, 33, 17},  {513, 1025, 129}, {64, 2100, 40}, {2, 257, 300}, {0, 33, 17},
    {5, 0, 7},     {5, 16, 0},
};

constexpr uint32_t kUnwritten = 0x7fc0dead;

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

struct Problem {
  MatmulParams p;
  std::vector<float> x, bias;
  std::vector<uint64_t> w;
  std::string desc;
};

Problem make_problem(const Shape& s, WeightFormat f, bool with_bias, bool strided, Rng& rng) {
  Problem pr;
  MatmulParams& p = pr.p;
  const WeightFormatTraits& t = weight_format_traits(f);
  p.M = s.M, p.K = s.K, p.N = s.N;
  p.ldx = s.K + (strided ? 3 : 0);
  const int64_t ldw = s.K + (strided ? 5 : 0);
  p.ldy = s.N + (strided ? 2 : 0);
  pr.x.assign(static_cast<size_t>(s.M * p.ldx), std::nanf(""));  // padding NaN: reading it poisons y
  for (int64_t m = 0; m < s.M; ++m)
    for (int64_t k = 0; k < s.K; ++k) pr.x[m * p.ldx + k] = rng.normal();
  int64_t row_bytes = 0;
  if (!weight_row_bytes(f, ldw, &row_bytes)) fail(ErrorCode::Native, "parity_matmul_bf16: row size");
  pr.w.assign(static_cast<size_t>((s.N * row_bytes + 7) / 8), 0);
  std::vector<float> row(static_cast<size_t>(ldw), std::nanf(""));
  for (int64_t n = 0; n < s.N; ++n) {
    for (int64_t k = 0; k < s.K; ++k) row[k] = rng.normal();
    t.quantize_row(row.data(), ldw, reinterpret_cast<char*>(pr.w.data()) + n * row_bytes, nullptr, nullptr);
  }
  if (with_bias) {
    pr.bias.resize(static_cast<size_t>(s.N));
    for (auto& b : pr.bias) b = rng.normal();
  }
  p.x = pr.x.empty() ? nullptr : pr.x.data();
  p.w = dense_weight(f, pr.w.empty() ? nullptr : pr.w.data(), s.N, s.K, ldw);
  p.bias = with_bias && s.N > 0 ? pr.bias.data() : nullptr;
  pr.desc = "M=" + std::to_string(s.M) + " K=" + std::to_string(s.K) + " N=" + std::to_string(s.N) + " w=" +
            weight_format_name(f) + (with_bias ? " bias" : "") + (strided ? " strided" : "");
  return pr;
}

size_t y_extent(const MatmulParams& p) { return p.M == 0 || p.N == 0 ? 0 : (p.M - 1) * p.ldy + p.N; }

void fill_unwritten(Guarded<float>& y) {
  float v;
  std::memcpy(&v, &kUnwritten, 4);
  for (size_t i = 0; i < y.size(); ++i) y[i] = v;
}

bool padding_intact(const MatmulParams& p, const Guarded<float>& y) {
  if (y_extent(p) == 0) return true;
  for (int64_t m = 0; m + 1 < p.M; ++m)
    for (int64_t n = p.N; n < p.ldy; ++n)
      if (bits(y[m * p.ldy + n]) != kUnwritten) return false;
  return true;
}

std::vector<float> compact(const MatmulParams& p, const Guarded<float>& y) {
  std::vector<float> out(static_cast<size_t>(p.M * p.N));
  for (int64_t m = 0; m < p.M; ++m)
    for (int64_t n = 0; n < p.N; ++n) out[m * p.N + n] = y[m * p.ldy + n];
  return out;
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

// matmul() picks the family from the context's precision and the row count.
std::vector<Result> dispatch_cases(ThreadPool& pool, Rng& rng) {
  std::vector<Result> out;
  const ops::Variant<ops::MatmulFn>* fast = ops::matmul_bf16_variant(Device::Host, WeightFormat::BF16);
  const int64_t min_rows = fast ? ops::matmul_bf16_min_rows(fast->isa) : 8;
  for (const int64_t M : {min_rows - 1, min_rows}) {
    Problem pr = make_problem({M, 70, 40}, WeightFormat::BF16, true, false, rng);
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
    Guarded<float> y(static_cast<size_t>(M * N));
    fill_unwritten(y);
    MatmulParams pv = p;
    pv.y = y.data();
    pv.cancel = &aborted;
    v.fn(pv, ExecContext(pool));
    Result r;
    r.op = "matmul_bf16", r.variant = v.name, r.device = device_name(v.device), r.format = "f32";
    r.shape = "M=96 cancelled before the first block threads=" + std::to_string(pool.size());
    for (size_t i = 0; i < y.size() && r.passed; ++i) {
      if (bits(y[i]) != kUnwritten) r.passed = false, r.note = "wrote y after the token was set";
    }
    r.guards_ok = y.intact();
    out.push_back(std::move(r));
  }
  return out;
}

// After an AMX matmul, neither the calling thread nor any pool worker holds a tile configuration.
Result tiles_released_case(ThreadPool& pool, Rng& rng) {
  return expect_accepted("matmul_bf16", "amx: tiles released on the caller and every worker", [&] {
    Problem pr = make_problem({100, 64, 256}, WeightFormat::BF16, false, false, rng);
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
  std::vector<Result> results;
  int index = 0;
  for (const Shape& s : kShapes) {
    for (const WeightFormat f : kWeightFormats) {
      const int case_index = index++;
      if (weight_format_traits(f).kernel != WeightKernel::DenseF32) continue;
      const bool with_bias = case_index % 2 == 0, strided = case_index % 3 != 0;
      Problem pr = make_problem(s, f, with_bias, strided, rng);
      MatmulParams p = pr.p;
      const size_t extent = y_extent(p);
      Guarded<float> ref(extent);
      fill_unwritten(ref);
      p.y = extent ? ref.data() : nullptr;
      ops::check_matmul(p);
      family.reference().fn(p, ExecContext(*dflt));
      const std::vector<float> want = compact(p, ref);
      const double floor = std::sqrt(static_cast<double>(s.K > 0 ? s.K : 1));
      for (const auto& v : family.runnable()) {
        if (v.fn == family.reference().fn || !v.reads(f)) continue;
        ThreadPool& pool = case_index % 2 ? three : *dflt;
        Guarded<float> y(extent);
        fill_unwritten(y);
        p.y = extent ? y.data() : nullptr;
        Result r;
        r.op = "matmul_bf16", r.variant = v.name, r.device = device_name(v.device), r.format = weight_format_name(f);
        r.shape = pr.desc + " threads=" + std::to_string(pool.size());
        try {
          v.fn(p, ExecContext(pool));
          const std::vector<float> got = compact(p, y);
          compare(got.data(), want.data(), got.size(), 2e-5, floor, &r);
          r.guards_ok = y.intact() && padding_intact(p, y);
          if (!padding_intact(p, y)) r.note = "wrote into the row padding of y";
        } catch (const std::exception& e) {
          r.passed = false;
          r.note = std::string("threw: ") + e.what();
        }
        results.push_back(std::move(r));
      }
    }
  }
  for (Result& r : dispatch_cases(three, rng)) results.push_back(std::move(r));
  for (Result& r : cancel_cases(three)) results.push_back(std::move(r));
  if (isa_available(Isa::Amx) && ops::OpFamilyBase::allowed(Device::Host, Isa::Amx)) {
    results.push_back(tiles_released_case(three, rng));
  }
  return results;
}

}  // namespace qvl::parity
