// matmul parity: every variant against the double-accumulating reference.
//
// Tolerance. Inputs are N(0,1) (weights rounded to their storage type first, so the reference
// sees exactly the values the kernels see) and outputs are sums of K products, so an output's
// typical size is sqrt(K). An f32 sum of K terms in any order is off by about u*sqrt(K) times
// the partial sums (u = 6e-8), i.e. ~1e-6 relative to sqrt(K). Errors are therefore measured
// relative to max(|ref|, sqrt(K)): an output that happens to cancel to near zero is not held to
// an impossible relative accuracy, while a kernel that drops or repeats a single product
// (error ~1, i.e. >= 3% of sqrt(K) here) fails by three orders of magnitude. The worst element
// of the largest case (M=69 K=1000 N=300) measures ~4e-6 across seeds and variants; 2e-5 leaves
// 5x for other accumulation orders.
#include <cmath>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/cancel.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "ops/matmul.h"
#include "tests/parity.h"
#include "tests/parity_matmul_cases.h"

namespace qvl::parity {

namespace {

using ops::MatmulParams;

using Shape = MatmulShape;

// Sizes straddle every tile and vector width in use (4/6/8 rows; 8/16/32 outputs; 8/16 k-lanes;
// 256-deep k panels) and include the empty ones.
const Shape kShapes[] = {
    {1, 1, 1},     {1, 3, 5},      {1, 31, 63},    {1, 33, 65},   {1, 1000, 300}, {1, 129, 17},  {2, 33, 17},
    {2, 1000, 5},  {3, 129, 63},   {3, 31, 300},   {7, 1, 65},    {7, 33, 63},    {7, 1000, 17}, {17, 31, 5},
    {17, 129, 300}, {17, 3, 1},    {69, 1000, 300}, {69, 129, 65}, {69, 33, 63},  {69, 1, 17},   {5, 31, 1},
    {261, 33, 17}, {0, 33, 17},    {3, 0, 17},     {1, 0, 5},     {3, 33, 0},
    // Whole 128-blocks, for the block formats (fp8): one, several, decode and prefill sizes.
    {1, 128, 65},  {3, 256, 17},   {4, 384, 63},   {5, 128, 33},  {69, 640, 300}, {261, 128, 33}, {17, 1024, 5}, {17, 4096, 300},
    {2, 1152, 37},  {1, 1152, 6},
    // Decode runs long enough to split into streams (the rows kernels), with and without a bias.
    {1, 256, 70},   {1, 384, 45},   {4, 128, 130}, {2, 256, 99},
    // x larger than the driver's packed-x scratch (16 MiB, matmul_driver.cpp): rows in two passes.
    {1031, 4200, 19},
    // Rows past the int8 drivers' row part (kRowPart = 1024, matmul_q_driver.cpp): three parts.
    {2100, 128, 40},
};

Result check_rejects(const char* what, MatmulParams p) {
  return expect_rejected("matmul", what, [&] { ops::check_matmul(p); });
}

std::vector<Result> check_cases() {
  float buf[64] = {};
  MatmulParams ok;
  ok.M = 2, ok.K = 3, ok.N = 4, ok.x = buf, ok.ldx = 3, ok.y = buf, ok.ldy = 4;
  ok.w = dense_weight(WeightFormat::F32, buf, 4, 3, 3);
  std::vector<Result> out;
  MatmulParams p = ok;
  p.M = -1;
  out.push_back(check_rejects("negative M", p));
  p = ok, p.ldx = 2;
  out.push_back(check_rejects("ldx < K", p));
  p = ok, p.w.ld = 2;
  out.push_back(check_rejects("weight row stride < K", p));
  p = ok, p.w.out = 5;
  out.push_back(check_rejects("weight shape is not [N,K]", p));
  p = ok, p.ldy = 3;
  out.push_back(check_rejects("ldy < N", p));
  p = ok, p.w.data = nullptr;
  out.push_back(check_rejects("null w", p));
  p = ok, p.y = nullptr;
  out.push_back(check_rejects("null y", p));
  p = ok, p.w.format = static_cast<WeightFormat>(99);
  out.push_back(check_rejects("unknown weight format", p));
  p = ok, p.ldx = int64_t{1} << 62;
  out.push_back(check_rejects("overflowing ldx", p));
  p = ok, p.w.ld = int64_t{1} << 62;
  out.push_back(check_rejects("overflowing weight row stride", p));
  // The format axis is kWeightFormats: it must list every format the traits table accepts (codes
  // 0..255 cover the table's range; weight_format_from_int switches over every WeightFormat).
  out.push_back(expect_accepted("matmul", "kWeightFormats lists every weight format", [] {
    size_t accepted = 0;
    for (int32_t code = 0; code < 256; ++code) {
      WeightFormat f;
      if (!weight_format_from_int(code, &f)) continue;
      ++accepted;
      bool listed = false;
      for (const WeightFormat g : kWeightFormats) listed = listed || g == f;
      if (!listed) fail(ErrorCode::Native, std::string(weight_format_name(f)) + " is missing from kWeightFormats");
    }
    if (accepted != std::size(kWeightFormats)) fail(ErrorCode::Native, "kWeightFormats lists a code the table refuses");
  }));
  // Dispatch by (device, ISA, format): the host variant matmul() runs for each format reads that
  // format and runs on the host.
  for (const WeightFormat f : kWeightFormats) {
    Result r = expect_accepted("matmul", std::string("dispatch: ") + weight_format_name(f) + " weights", [&] {
      const auto& v = ops::matmul_variant(Device::Host, f);
      if (!v.reads(f)) fail(ErrorCode::Native, std::string(v.name) + " was chosen but does not read the format");
      if (v.device != Device::Host) fail(ErrorCode::Native, std::string(v.name) + " was chosen for the host but runs elsewhere");
    });
    r.format = weight_format_name(f);
    out.push_back(std::move(r));
  }
  out.push_back(expect_accepted("matmul", "valid and empty problems accepted", [&] {
    ops::check_matmul(ok);
    p = MatmulParams{};  // all zero, all null
    ops::check_matmul(p);
  }));
  return out;
}

// A set cancel token: the checked entry point throws the token's reason, and the packed (large M)
// variants stop before their first output block (y untouched).
std::vector<Result> cancel_cases(ThreadPool& pool, Rng& rng) {
  std::vector<Result> out;
  const int64_t M = 96, K = 128, N = 300;
  std::vector<float> x(M * K, 0.5f), w(N * K, 0.25f);
  MatmulParams p;
  p.M = M, p.N = N, p.K = K;
  p.x = x.data(), p.ldx = K;
  p.w = dense_weight(WeightFormat::F32, w.data(), N, K, K);
  p.ldy = N;
  CancelToken aborted, disposed;
  aborted.cancel(CancelToken::Reason::Aborted);
  disposed.cancel(CancelToken::Reason::Disposed);
  Guarded<float> sink(static_cast<size_t>(M * N));
  p.y = sink.data();
  p.cancel = &aborted;
  out.push_back(expect_rejected("matmul", "aborted token: E_ABORTED", [&] { ops::matmul(p, ExecContext(pool)); }, ErrorCode::Aborted));
  p.cancel = &disposed;
  out.push_back(expect_rejected("matmul", "disposed token: E_DISPOSED", [&] { ops::matmul(p, ExecContext(pool)); }, ErrorCode::Disposed));
  const auto& family = ops::matmul_family();
  for (const auto& v : family.runnable()) {
    if (v.fn == family.reference().fn) continue;
    // Weights in the first format the variant reads (K = 128 is a whole block of every format).
    WeightFormat f = WeightFormat::F32;
    for (const WeightFormat g : kWeightFormats) {
      if (v.reads(g)) {
        f = g;
        break;
      }
    }
    if (weight_format_traits(f).kernel == WeightKernel::Int8Dot) continue;  // q8/q4: parity_qmatmul.cpp
    const MatmulProblem pr = make_matmul_problem({M, K, N}, f, false, false, rng);
    MatmulParams pv = pr.p;
    pv.cancel = &aborted;
    out.push_back(cancelled_case("matmul", v, f, pv, pool));
  }
  return out;
}

}  // namespace

// q8 / q4 cases (tests/parity_qmatmul.cpp): their own shapes (K whole 32-blocks) and groups.
std::vector<Result> parity_qmatmul_cases(Rng& rng, ThreadPool& dflt, ThreadPool& three);

std::vector<Result> parity_matmul(uint64_t seed) {
  Rng rng(seed);
  const auto& family = ops::matmul_family();
  const std::shared_ptr<ThreadPool> dflt = default_pool();
  ThreadPool three(3);  // an odd thread count, to shake out the work split
  // The format axis: every shape in every weight format, each against every runnable variant that
  // reads that format (the reference reads them all, through the format's dequantize_row).
  std::vector<Result> results = reference_cases(
      "matmul", family, kShapes, std::size(kShapes),
      [](const Shape& s, WeightFormat f) { return s.K % weight_format_traits(f).block == 0; },  // rows are whole blocks
      rng, *dflt, three);
  for (Result& r : parity_qmatmul_cases(rng, *dflt, three)) results.push_back(std::move(r));
  for (Result& r : check_cases()) results.push_back(std::move(r));
  for (Result& r : cancel_cases(three, rng)) results.push_back(std::move(r));
  return results;
}

}  // namespace qvl::parity
