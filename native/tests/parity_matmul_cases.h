// The matmul-shaped parity machinery shared by the matmul suites (parity_matmul.cpp for the exact
// family, parity_matmul_bf16.cpp for the bf16 one, parity_qmatmul.cpp for q8/q4): random problems,
// outputs pre-filled with a NaN no kernel writes, row-padding checks, and the loop that runs every
// variant of a family against its reference.
#pragma once
#include <cmath>
#include <iterator>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "core/weight_format.h"
#include "core/weight_quant.h"
#include "tests/parity_q_panels.h"
#include "ops/matmul.h"
#include "tests/parity.h"

namespace qvl::parity {

struct MatmulShape {
  int64_t M, K, N;
};

struct MatmulProblem {
  ops::MatmulParams p;
  std::vector<float> x, bias;
  std::vector<uint64_t> w;       // the stored rows (q8/q4: panels; 8-byte aligned)
  std::vector<uint64_t> scales;  // the stored scales (f8: f32; q8/q4: core/weight_quant.h's layout)
  std::vector<uint8_t> zeros;    // zero points where the format has them (core/weight_quant.h's layout)
  std::string desc;
};

// Bytes per row of the stored scales and zero points of format f, one scale per `group` elements
// of a row of ld (f8: f32 scales; q8/q4: as core/weight_quant.h lays them out).
inline void scale_row_bytes(WeightFormat f, int64_t ld, int64_t group, int64_t* scales, int64_t* zeros) {
  const WeightFormatTraits& t = weight_format_traits(f);
  QuantRowBytes rb;
  if (t.kernel == WeightKernel::Int8Dot && quant_row_bytes(f, ld, group, &rb)) {
    *scales = rb.scales, *zeros = rb.zeros;
    return;
  }
  *scales = t.has_scales ? 4 * (ld / group) : 0, *zeros = 0;
}

// Inputs N(0,1). Weights drawn as f32 and stored through the format's quantize_row, so the reference
// (which reads them back through dequantize_row) sees exactly the values the kernels see; any format
// of the traits table works here unchanged. Strided: x, w and y rows padded (x and w with NaN, so a
// kernel that reads the padding poisons its outputs).
inline MatmulProblem make_matmul_problem(const MatmulShape& s, WeightFormat f, bool with_bias, bool strided, Rng& rng) {
  MatmulProblem pr;
  ops::MatmulParams& p = pr.p;
  const WeightFormatTraits& t = weight_format_traits(f);
  p.M = s.M, p.K = s.K, p.N = s.N;
  p.ldx = s.K + (strided ? 3 : 0);
  const int64_t ldw = (s.K + (strided ? 5 : 0) + t.block - 1) / t.block * t.block;
  p.ldy = s.N + (strided ? 2 : 0);
  pr.x.assign(static_cast<size_t>(s.M * p.ldx), std::nanf(""));
  for (int64_t m = 0; m < s.M; ++m)
    for (int64_t k = 0; k < s.K; ++k) pr.x[m * p.ldx + k] = rng.normal();
  int64_t row_bytes = 0;
  if (!weight_row_bytes(f, ldw, &row_bytes)) fail(ErrorCode::Native, "parity matmul problem: row size");
  int64_t sb = 0, zb = 0;
  scale_row_bytes(f, ldw, t.block, &sb, &zb);
  pr.w.assign(static_cast<size_t>((s.N * row_bytes + 7) / 8), 0);
  pr.scales.assign(static_cast<size_t>((s.N * sb + 7) / 8), 0);
  pr.zeros.assign(static_cast<size_t>(s.N * zb), 0);
  std::vector<float> row(static_cast<size_t>(ldw), std::nanf(""));
  for (int64_t n = 0; n < s.N; ++n) {
    for (int64_t k = 0; k < s.K; ++k) row[k] = rng.normal();
    // N(0,1) rows: no scale near f16's limits, so the q formats' quantize_row always succeeds.
    if (!t.quantize_row(row.data(), ldw, reinterpret_cast<char*>(pr.w.data()) + n * row_bytes,
                        t.has_scales ? reinterpret_cast<char*>(pr.scales.data()) + n * sb : nullptr,
                        t.has_zeros ? &pr.zeros[n * zb] : nullptr))
      fail(ErrorCode::Native, "parity matmul problem: a scale overflowed");
  }
  if (t.kernel == WeightKernel::Int8Dot) to_panels(f, s.N, ldw, t.block, pr.w, pr.scales, pr.zeros);
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
// past any row's end lands either in the row padding (checked by padding_intact) or in the guard.
inline size_t y_extent(const ops::MatmulParams& p) { return p.N == 0 ? 0 : extent(p.M, p.N, p.ldy); }

inline void fill_unwritten(Guarded<float>& y) {
  for (size_t i = 0; i < y.size(); ++i) y[i] = unwritten();
}

inline bool padding_intact(const ops::MatmulParams& p, const Guarded<float>& y) {
  if (y_extent(p) == 0) return true;
  for (int64_t m = 0; m + 1 < p.M; ++m)
    for (int64_t n = p.N; n < p.ldy; ++n)
      if (!is_unwritten(y[m * p.ldy + n])) return false;
  return true;
}

// The M x N outputs without the row padding.
inline std::vector<float> compact(const ops::MatmulParams& p, const float* y) {
  std::vector<float> out(static_cast<size_t>(p.M * p.N));
  for (int64_t m = 0; m < p.M; ++m)
    for (int64_t n = 0; n < p.N; ++n) out[m * p.N + n] = y[m * p.ldy + n];
  return out;
}
inline std::vector<float> compact(const ops::MatmulParams& p, const Guarded<float>& y) { return compact(p, y.data()); }

// A case of variant v on weights of format f, named by shape.
inline Result variant_case(const char* op, const ops::Variant<ops::MatmulFn>& v, WeightFormat f, const std::string& shape) {
  Result r = variant_case(op, v, shape);
  r.format = weight_format_name(f);
  return r;
}

// An output of at least 8 MiB is written with non-temporal stores when y is 64-byte aligned and
// its row stride a multiple of 16 (kStreamBytes of matmul_bf16's driver and of the AVX512-VNNI
// int8 GEMM): such a y (rows padded, bias, rows past a task's) from every variant of `family`
// reading format f against the reference, the padding and 64 floats on either side untouched.
// (Guarded's buffers are not 64-byte aligned, so the other cases never stream.)
inline std::vector<Result> streamed_cases(const char* op, const ops::OpFamily<ops::MatmulFn>& family, WeightFormat f, Rng& rng,
                                          ThreadPool& pool) {
  std::vector<Result> results;
  const MatmulShape s{1100, 64, 2000};
  MatmulProblem pr = make_matmul_problem(s, f, true, false, rng);
  ops::MatmulParams p = pr.p;
  p.ldy = 2032;
  const size_t ext = y_extent(p);
  Guarded<float> ref(ext);
  fill_unwritten(ref);
  p.y = ref.data();
  ops::check_matmul(p);
  family.reference().fn(p, ExecContext(pool));
  const std::vector<float> want = compact(p, ref);
  constexpr size_t kSide = 64;
  std::vector<float> buf(ext + 2 * kSide + 16);
  float* base = buf.data() + (16 - reinterpret_cast<uintptr_t>(buf.data()) / sizeof(float) % 16) % 16;
  for (const auto& v : family.runnable()) {
    if (v.fn == family.reference().fn || !v.reads(f)) continue;
    for (size_t i = 0; i < ext + 2 * kSide; ++i) base[i] = unwritten();
    p.y = base + kSide;
    Result r = variant_case(op, v, f, pr.desc + " ldy=2032, y 64-byte aligned (streamed)");
    run_case(r, [&] {
      v.fn(p, ExecContext(pool));
      const std::vector<float> got = compact(p, p.y);
      compare(got.data(), want.data(), got.size(), 2e-5, std::sqrt(static_cast<double>(s.K)), &r);
      bool intact = true;
      for (size_t i = 0; i < kSide; ++i) intact = intact && is_unwritten(base[i]) && is_unwritten(base[kSide + ext + i]);
      for (int64_t m = 0; m + 1 < p.M; ++m)
        for (int64_t n = p.N; n < p.ldy; ++n) intact = intact && is_unwritten(p.y[m * p.ldy + n]);
      r.guards_ok = intact;
      if (!intact) r.note = "wrote outside y's rows";
    });
    results.push_back(std::move(r));
  }
  return results;
}

// v given p (unpadded output rows: ldy == N) with a set cancel token (p.cancel) must return
// before writing any output.
inline Result cancelled_case(const char* op, const ops::Variant<ops::MatmulFn>& v, WeightFormat f, ops::MatmulParams p,
                             ThreadPool& pool) {
  Guarded<float> y(static_cast<size_t>(p.M * p.N));
  fill_unwritten(y);
  p.y = y.data();
  v.fn(p, ExecContext(pool));
  Result r = variant_case(op, v, f, "M=" + std::to_string(p.M) + " cancelled before the first block threads=" +
                                        std::to_string(pool.size()));
  for (size_t i = 0; i < y.size() && r.passed; ++i) {
    if (!is_unwritten(y[i])) {
      r.passed = false;
      r.note = "wrote y row " + std::to_string(i / static_cast<size_t>(p.N)) + " after the token was set";
    }
  }
  r.guards_ok = y.intact();
  return r;
}

// What a (shape, format) case varies: a bias on every other case, row strides on two in three,
// the odd-size pool on every other pair. Taken from the shape's and the format's index together,
// so each format meets every choice along the shapes: one counter over the pairs gave a format
// the same choices in every shape whenever the format count was even (f16 and fp8 never had a
// bias, q4 neither, and each always ran on the same pool).
struct CaseChoice {
  bool bias, strided, three_threads;
};
inline CaseChoice case_choice(size_t shape_index, size_t format_index) {
  const size_t c = shape_index + format_index;
  return {c % 2 == 0, c % 3 != 0, c / 2 % 2 == 1};
}

// Every shape in every weight format that `tested(shape, format)` accepts, each against every
// runnable variant of `family` that reads that format: errors relative to max(|ref|, sqrt(K))
// within 2e-5 (see parity_matmul.cpp), guards and row padding intact; bias, strides and pool as
// case_choice says.
template <class Tested>
std::vector<Result> reference_cases(const char* op, const ops::OpFamily<ops::MatmulFn>& family, const MatmulShape* shapes,
                                    size_t n_shapes, Tested&& tested, Rng& rng, ThreadPool& dflt, ThreadPool& three) {
  std::vector<Result> results;
  for (size_t si = 0; si < n_shapes; ++si) {
    const MatmulShape& s = shapes[si];
    for (size_t fi = 0; fi < std::size(kWeightFormats); ++fi) {
      const WeightFormat f = kWeightFormats[fi];
      if (!tested(s, f)) continue;
      const CaseChoice choice = case_choice(si, fi);
      MatmulProblem pr = make_matmul_problem(s, f, choice.bias, choice.strided, rng);
      ops::MatmulParams p = pr.p;
      const size_t extent = y_extent(p);
      Guarded<float> ref(extent);
      fill_unwritten(ref);
      p.y = extent ? ref.data() : nullptr;
      ops::check_matmul(p);
      family.reference().fn(p, ExecContext(dflt));
      const std::vector<float> want = compact(p, ref);
      const double floor = std::sqrt(static_cast<double>(s.K > 0 ? s.K : 1));
      for (const auto& v : family.runnable()) {
        if (v.fn == family.reference().fn || !v.reads(f)) continue;
        ThreadPool& pool = choice.three_threads ? three : dflt;
        Guarded<float> y(extent);
        fill_unwritten(y);
        p.y = extent ? y.data() : nullptr;
        Result r = variant_case(op, v, f, pr.desc + " threads=" + std::to_string(pool.size()));
        run_case(r, [&] {
          v.fn(p, ExecContext(pool));
          const std::vector<float> got = compact(p, y);
          compare(got.data(), want.data(), got.size(), 2e-5, floor, &r);
          r.guards_ok = y.intact() && padding_intact(p, y);
          if (!padding_intact(p, y)) r.note = "wrote into the row padding of y";
        });
        results.push_back(std::move(r));
      }
    }
  }
  return results;
}

}  // namespace qvl::parity
