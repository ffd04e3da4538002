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

namespace qvl::parity {

namespace {

using ops::MatmulParams;

struct Shape {
  int64_t M, K, N;
};

// Sizes straddle every tile and vector width in use (4/6/8 rows; 8/16/32 outputs; 8/16 k-lanes;
// 256-deep k panels) and include the empty ones.
const Shape kShapes[] = {
    {1, 1, 1},     {1, 3, 5},      {1, 31, 63},    {1, 33, 65},   {1, 1000, 300}, {1, 129, 17},  {2, 33, 17},
    {2, 1000, 5},  {3, 129, 63},   {3, 31, 300},   {7, 1, 65},    {7, 33, 63},    {7, 1000, 17}, {17, 31, 5},
    {17, 129, 300}, {17, 3, 1},    {69, 1000, 300}, {69, 129, 65}, {69, 33, 63},  {69, 1, 17},   {5, 31, 1},
    {261, 33, 17}, {0, 33, 17},    {3, 0, 17},     {1, 0, 5},     {3, 33, 0},
    // Whole 128-blocks, for the block formats (fp8): one, several, decode and prefill sizes.
    {1, 128, 65},  {3, 256, 17},   {4, 384, 63},   {5, 128, 33},  {69, 640, 300}, {261, 128, 33}, {17, 1024, 5}, {17, 4096, 300},
};

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

constexpr uint32_t kUnwritten = 0x7fc0dead;  // a NaN: an output a kernel forgot fails the compare

struct Problem {
  MatmulParams p;
  std::vector<float> x, bias, scales;
  std::vector<uint64_t> w;         // the stored rows (8-byte aligned)
  std::vector<uint8_t> zeros;      // zero points where the format has them (one byte per group)
  std::string desc;
};

// Weights drawn as f32 and stored through the format's quantize_row, so the reference (which reads
// them back through dequantize_row) sees exactly the values the kernels see; any format of the
// traits table works here unchanged.
Problem make_problem(const Shape& s, WeightFormat f, bool with_bias, bool strided, Rng& rng) {
  Problem pr;
  MatmulParams& p = pr.p;
  const WeightFormatTraits& t = weight_format_traits(f);
  p.M = s.M, p.K = s.K, p.N = s.N;
  p.ldx = s.K + (strided ? 3 : 0);
  const int64_t ldw = (s.K + (strided ? 5 : 0) + t.block - 1) / t.block * t.block;
  p.ldy = s.N + (strided ? 2 : 0);
  // Padding between rows is NaN: a kernel that reads it poisons its outputs.
  pr.x.assign(static_cast<size_t>(s.M * p.ldx), std::nanf(""));
  for (int64_t m = 0; m < s.M; ++m)
    for (int64_t k = 0; k < s.K; ++k) pr.x[m * p.ldx + k] = rng.normal();
  int64_t row_bytes = 0;
  if (!weight_row_bytes(f, ldw, &row_bytes)) fail(ErrorCode::Native, "parity_matmul: row size");
  const int64_t groups = ldw / t.block;  // one scale (and zero point) per block
  pr.w.assign(static_cast<size_t>((s.N * row_bytes + 7) / 8), 0);
  if (t.has_scales) pr.scales.assign(static_cast<size_t>(s.N * groups), 0.0f);
  if (t.has_zeros) pr.zeros.assign(static_cast<size_t>(s.N * groups), 0);
  std::vector<float> row(static_cast<size_t>(ldw), std::nanf(""));
  for (int64_t n = 0; n < s.N; ++n) {
    for (int64_t k = 0; k < s.K; ++k) row[k] = rng.normal();
    t.quantize_row(row.data(), ldw, reinterpret_cast<char*>(pr.w.data()) + n * row_bytes,
                   t.has_scales ? pr.scales.data() + n * groups : nullptr, t.has_zeros ? &pr.zeros[n * groups] : nullptr);
  }
  if (with_bias) {
    pr.bias.resize(static_cast<size_t>(s.N));
    for (auto& b : pr.bias) b = rng.normal();
  }
  p.x = pr.x.empty() ? nullptr : pr.x.data();
  p.w = dense_weight(f, pr.w.empty() ? nullptr : pr.w.data(), s.N, s.K, ldw);  // the group is set below
  p.w.scales = pr.scales.empty() ? nullptr : pr.scales.data();
  p.w.zeros = pr.zeros.empty() ? nullptr : pr.zeros.data();
  p.w.group = t.has_scales ? t.block : 0;
  p.bias = with_bias && s.N > 0 ? pr.bias.data() : nullptr;
  pr.desc = "M=" + std::to_string(s.M) + " K=" + std::to_string(s.K) + " N=" + std::to_string(s.N) + " w=" +
            weight_format_name(f) + (with_bias ? " bias" : "") + (strided ? " strided" : "");
  return pr;
}

// Output rows live in one guarded buffer ending exactly at the last real output, so a write
// past any row's end lands either in the row padding (checked here) or in the guard.
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
    const Problem pr = make_problem({M, K, N}, f, false, false, rng);
    Guarded<float> y(static_cast<size_t>(M * N));
    fill_unwritten(y);
    MatmulParams pv = pr.p;
    pv.y = y.data();
    pv.cancel = &aborted;
    v.fn(pv, ExecContext(pool));
    Result r;
    r.op = "matmul";
    r.variant = v.name;
    r.device = device_name(v.device);
    r.format = weight_format_name(f);
    r.shape = "M=96 cancelled before the first block threads=" + std::to_string(pool.size());
    for (size_t i = 0; i < y.size() && r.passed; ++i) {
      if (bits(y[i]) != kUnwritten) {
        r.passed = false;
        r.note = "wrote y row " + std::to_string(i / N) + " after the token was set";
      }
    }
    r.guards_ok = y.intact();
    out.push_back(std::move(r));
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
  std::vector<Result> results;
  int index = 0;
  // The format axis: every shape in every weight format, each against every runnable variant that
  // reads that format (the reference reads them all, through the format's dequantize_row).
  for (const Shape& s : kShapes) {
    for (const WeightFormat f : kWeightFormats) {
      const int case_index = index++;
      if (s.K % weight_format_traits(f).block != 0) continue;  // rows are whole blocks
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
        r.op = "matmul";
        r.variant = v.name;
        r.device = device_name(v.device);
        r.format = weight_format_name(f);
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
  for (Result& r : parity_qmatmul_cases(rng, *dflt, three)) results.push_back(std::move(r));
  for (Result& r : check_cases()) results.push_back(std::move(r));
  for (Result& r : cancel_cases(three, rng)) results.push_back(std::move(r));
  return results;
}

}  // namespace qvl::parity
