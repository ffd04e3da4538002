// matmul on the group-quantized formats (q8, q4), part of the matmul suite: every variant that
// reads them against the reference (which does the same arithmetic: activations quantized per
// block of 32, ops/quant_act.h, then exact integer block dots), and the reference itself against
// the exact product with the dequantized weights, so the activation quantization's error is
// bounded too.
//
// Tolerances. Kernel vs reference: the kernels' only freedom is the f32 rounding of the block
// scale products and their sum (the codes and integer dots are exact), ~1e-6 of sqrt(K) (outputs
// are sums of K N(0,1) products); 2e-5 as for the dense kernels. Reference vs exact: the
// activation codes are off by up to half a step (amax / 254 of a block of 32 N(0,1) values,
// amax ~2.2), a random error of ~0.005·sqrt(K) per output; the worst element over these cases
// measures 0.023-0.031·sqrt(K) (seeds 1-12, 99, 20261129; q4 rows shifted positive are the
// worst); 0.04 bounds it while a dropped block
// (~0.18·sqrt(K) at K = 32·30) or a wrong zero point fails by far.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/matmul_q_gemm.h"
#include "core/cancel.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "core/weight_quant.h"
#include "ops/matmul.h"
#include "tests/parity.h"
#include "tests/parity_matmul_cases.h"

namespace qvl::parity {

namespace {

using ops::MatmulParams;

struct QShape {
  int64_t M, K, N, group;
  bool tiny = false;     // rows in f16's subnormal range and all-zero groups (see make)
  bool extreme = false;  // x and w all ±1, w's rows matching x's: the largest code products (see make)
};

// M = 1, 2, 3, 7, 33 (decode rows and prefill tiles with tails), K an odd or even number of
// 32-blocks, N around the 4- and 16-row kernel blocks, groups 32 and 128 (and more for decode).
const QShape kQShapes[] = {
    {1, 32, 1, 32},     {1, 96, 17, 32},    {1, 256, 63, 128},  {1, 1024, 65, 128}, {2, 160, 33, 32},
    {2, 384, 5, 128},   {3, 64, 19, 32},    {3, 640, 4, 128},   {7, 352, 31, 32},   {7, 128, 100, 128},
    {33, 224, 17, 32},  {33, 512, 47, 128}, {33, 96, 3, 32},    {5, 960, 70, 32},   {64, 256, 40, 128},
    {1, 1536, 37, 32},  {2, 32, 2, 32},     {0, 64, 5, 32},     {4, 64, 0, 32},     {3, 0, 7, 32},
    // The GEMM path (M >= kQGemmMinRows, matmul_q_gemm.h): row tiles of 4 with tails of 1, 2, 3
    // (after the rows are split between threads), panels of 32 outputs with tails, K chunks of 16
    // blocks with tails, odd block counts, K past 1024.
    {16, 96, 33, 32},   {17, 1056, 47, 32}, {33, 544, 17, 32},  {100, 1152, 65, 128}, {512, 224, 49, 32},
    {16, 1280, 18, 128}, {103, 32, 31, 32}, {18, 320, 47, 32}, {8, 160, 40, 32},
    // From 64 rows the AVX-512 GEMM's chunks are the whole of K (257 and 255 blocks; a group of
    // 3 blocks), cut in two past 512 blocks (514). Below 64 rows and past 1 Mi activation codes its
    // tasks take several panel pairs and 8-block chunks: a short last pair and chunk, a group of 3
    // blocks across chunks.
    {129, 8224, 70, 32}, {130, 8160, 40, 96}, {64, 16448, 20, 32}, {40, 27008, 70, 32}, {33, 32160, 40, 96},
    // The decode kernels' 16-block chunks: full chunks, a short last chunk and an odd block
    // (37 blocks), groups of 2, 8 and 16 blocks, and a group of 3 blocks (no power of two).
    {1, 1184, 23, 32},  {1, 1152, 9, 64},   {1, 2048, 13, 256}, {1, 1536, 6, 512},  {1, 960, 7, 96},
    // Decode runs of many panels, read as streams (matmul_q_avx512vnni.cpp: two panels at a time
    // from the two halves of a thread's run): runs of an even and an odd panel count (one left
    // over), and a last run whose partial panel ends a stream.
    {1, 256, 350, 32},  {2, 192, 531, 64},  {1, 512, 333, 128},
    // The f16 scales and packed zero points: odd group counts (a row's zero points end in a lone
    // low nibble; strided rows add one group, so both parities run) with odd block counts (half
    // pairs), past the 8- and 16-group vectors of the zero-point terms and the decode chunks, for
    // decode, the M <= 4 tiles and the GEMM; and rows whose scales f16 would make subnormal.
    {1, 544, 21, 32},   {1, 1056, 9, 32},   {1, 448, 11, 64},   {2, 1056, 9, 32},   {3, 352, 13, 32},
    {9, 1056, 35, 32},  {1, 800, 5, 160},   {4, 288, 6, 96},
    {1, 1056, 12, 32, true}, {3, 544, 10, 32, true}, {12, 352, 33, 32, true}, {1, 1024, 8, 128, true},
    // Every activation code ±127 and every weight code at an end of its range, with weight rows
    // whose signs match (or oppose) an activation row's: the largest block dots and pair sums
    // there are, for the kernels that add products in int16 (vpmaddubsw) before widening them.
    {33, 1056, 40, 32, false, true}, {9, 640, 17, 128, false, true}, {3, 352, 9, 32, false, true},
};

struct QProblem {
  MatmulParams p;
  std::vector<float> x, bias, wf;  // wf: the dequantized weights [N, K]
  std::vector<uint16_t> scales;
  std::vector<uint8_t> w, zeros;
  std::string desc;
};

QProblem make(const QShape& s, WeightFormat f, bool with_bias, bool strided, Rng& rng) {
  QProblem pr;
  MatmulParams& p = pr.p;
  const WeightFormatTraits& t = weight_format_traits(f);
  p.M = s.M, p.K = s.K, p.N = s.N;
  p.ldx = s.K + (strided ? 3 : 0);
  p.ldy = s.N + (strided ? 2 : 0);
  pr.x.assign(static_cast<size_t>(s.M * p.ldx), std::nanf(""));
  for (int64_t m = 0; m < s.M; ++m)
    for (int64_t k = 0; k < s.K; ++k) pr.x[m * p.ldx + k] = s.extreme ? (rng.normal() < 0 ? -1.0f : 1.0f) : rng.normal();
  // Strided: rows one group longer than K (the q4 pairing runs over the stored row, so a K with an
  // odd block count then ends inside a full pair rather than in a half pair).
  const int64_t ld = s.K + (strided ? s.group : 0);
  QuantRowBytes rb;
  if (!quant_row_bytes(f, ld, s.group, &rb)) fail(ErrorCode::Native, "parity qmatmul: row size");
  const int64_t groups = ld / s.group;
  pr.w.assign(static_cast<size_t>(s.N * rb.codes), 0);
  pr.scales.assign(static_cast<size_t>(s.N * groups), 0);
  if (t.has_zeros) pr.zeros.assign(static_cast<size_t>(s.N * rb.zeros), 0);
  std::vector<float> row(static_cast<size_t>(ld));
  for (int64_t n = 0; n < s.N; ++n) {
    // Rows of mixed sign and rows shifted positive (q4 zero points away from the middle); with
    // s.tiny, every fourth row is scaled into f16's subnormal range (its scales raised to 2^-14)
    // and one group of every fifth row is all zero (scale 0).
    const float shift = n % 3 == 0 ? 0.8f : 0.0f;
    const float mul = s.tiny && n % 4 == 1 ? 3e-7f : 1.0f;
    for (auto& v : row) v = (rng.normal() + shift) * mul;
    if (s.extreme) {
      // Rows n ≡ 0, 1 (mod 3): the signs of x's row n / 3 (mod M), the second negated; else random.
      const int64_t m = s.M > 0 ? n / 3 % s.M : 0;
      for (int64_t k = 0; k < ld; ++k) {
        const float sign = n % 3 < 2 && k < s.K ? pr.x[m * p.ldx + k] : rng.normal();
        row[k] = (sign < 0) == (n % 3 == 1) ? 1.0f : -1.0f;
      }
    }
    if (s.tiny && n % 5 == 2) std::fill(row.begin() + (groups / 2) * s.group, row.begin() + (groups / 2 + 1) * s.group, 0.0f);
    const int64_t bad = f == WeightFormat::Q8
                            ? q8_quantize(row.data(), ld, s.group, &pr.w[n * rb.codes], &pr.scales[n * groups])
                            : q4_quantize(row.data(), ld, s.group, &pr.w[n * rb.codes], &pr.scales[n * groups], &pr.zeros[n * rb.zeros]);
    if (bad >= 0) fail(ErrorCode::Native, "parity qmatmul: a scale overflowed");
  }
  to_panels(f, s.N, ld, s.group, pr.w, pr.scales, pr.zeros);
  if (with_bias) {
    pr.bias.resize(static_cast<size_t>(s.N));
    for (auto& b : pr.bias) b = rng.normal();
  }
  p.x = pr.x.empty() ? nullptr : pr.x.data();
  p.w.format = f;
  p.w.data = pr.w.empty() ? nullptr : pr.w.data();
  p.w.ld = ld;
  p.w.scales = pr.scales.empty() ? nullptr : pr.scales.data();
  p.w.zeros = pr.zeros.empty() ? nullptr : pr.zeros.data();
  p.w.group = s.group;
  p.w.out = s.N;
  p.w.in = s.K;
  p.bias = with_bias && s.N > 0 ? pr.bias.data() : nullptr;
  pr.wf.resize(static_cast<size_t>(s.N * s.K));
  for (int64_t n = 0; n < s.N; ++n) t.dequantize_row(p.w, n, 0, s.K, &pr.wf[n * s.K]);
  pr.desc = "M=" + std::to_string(s.M) + " K=" + std::to_string(s.K) + " N=" + std::to_string(s.N) + " w=" + t.name +
            " g=" + std::to_string(s.group) + (with_bias ? " bias" : "") + (strided ? " strided" : "");
  return pr;
}

// r passes when a and b hold the same floats bit for bit.
void compare_bits(const std::vector<float>& a, const std::vector<float>& b, Result* r) {
  if (a.size() != b.size()) fail(ErrorCode::Native, "parity qmatmul: output sizes differ");
  std::vector<uint32_t> ab(a.size()), bb(b.size());
  std::memcpy(ab.data(), a.data(), ab.size() * sizeof(float));
  std::memcpy(bb.data(), b.data(), bb.size() * sizeof(float));
  compare_exact(ab.data(), bb.data(), ab.size(), r);
}

// Variant v run again on `other` threads: its outputs bit for bit those of the first run (got).
Result same_bits_case(const ops::Variant<ops::MatmulFn>& v, WeightFormat f, const std::string& desc, MatmulParams p,
                      const std::vector<float>& got, ThreadPool& other) {
  Result r = variant_case("matmul", v, f, desc + " threads=" + std::to_string(other.size()) + " same bits");
  Guarded<float> y(y_extent(p), std::nanf(""));
  p.y = y.data();
  run_case(r, [&] {
    v.fn(p, ExecContext(other));
    compare_bits(compact(p, y), got, &r);
    r.guards_ok = y.intact();
  });
  return r;
}

// Variant v on each activation row alone (M = 1): its outputs bit for bit the batched run's (got),
// as decode promises (a sequence decodes the same alone or batched with others).
Result alone_bits_case(const ops::Variant<ops::MatmulFn>& v, WeightFormat f, const std::string& desc, MatmulParams p,
                       const std::vector<float>& got, ThreadPool& pool) {
  Result r = variant_case("matmul", v, f, desc + " rows alone same bits");
  run_case(r, [&] {
    std::vector<float> rows;
    bool intact = true;
    for (int64_t m = 0; m < p.M; ++m) {
      MatmulParams one = p;
      one.M = 1, one.x = p.x + m * p.ldx;
      Guarded<float> y(y_extent(one), std::nanf(""));
      one.y = y.data();
      v.fn(one, ExecContext(pool));
      const std::vector<float> row = compact(one, y);
      rows.insert(rows.end(), row.begin(), row.end());
      intact = intact && y.intact();
    }
    compare_bits(rows, got, &r);
    r.guards_ok = intact;
  });
  return r;
}

}  // namespace

std::vector<Result> parity_qmatmul_cases(Rng& rng, ThreadPool& dflt, ThreadPool& three) {
  const auto& family = ops::matmul_family();
  std::vector<Result> results;
  for (size_t si = 0; si < std::size(kQShapes); ++si) {
    const QShape& s = kQShapes[si];
    for (size_t fi = 0; fi < 2; ++fi) {
      const WeightFormat f = fi == 0 ? WeightFormat::Q8 : WeightFormat::Q4;
      const CaseChoice choice = case_choice(si, fi);
      QProblem pr = make(s, f, choice.bias, choice.strided, rng);
      MatmulParams p = pr.p;
      const size_t ext = y_extent(p);
      Guarded<float> ref(ext, 0.0f);
      p.y = ext ? ref.data() : nullptr;
      ops::check_matmul(p);
      family.reference().fn(p, ExecContext(dflt));
      const std::vector<float> want = compact(p, ref);
      const double floor = std::sqrt(static_cast<double>(s.K > 0 ? s.K : 1));
      {  // the reference against the exact product with the dequantized weights
        std::vector<float> exact(static_cast<size_t>(s.M * s.N));
        for (int64_t m = 0; m < s.M; ++m)
          for (int64_t n = 0; n < s.N; ++n) {
            double acc = p.bias ? p.bias[n] : 0.0;
            for (int64_t k = 0; k < s.K; ++k) acc += static_cast<double>(p.x[m * p.ldx + k]) * pr.wf[n * s.K + k];
            exact[m * s.N + n] = static_cast<float>(acc);
          }
        Result r;
        r.op = "matmul", r.variant = "reference", r.device = "cpu";
        r.format = weight_format_name(f);
        r.shape = pr.desc + " vs exact f32 (activation quantization error)";
        compare(want.data(), exact.data(), want.size(), 0.04, floor, &r);
        results.push_back(std::move(r));
      }
      for (const auto& v : family.runnable()) {
        if (v.fn == family.reference().fn || !v.reads(f)) continue;
        ThreadPool& pool = choice.three_threads ? three : dflt;
        Guarded<float> y(ext, std::nanf(""));
        p.y = ext ? y.data() : nullptr;
        Result r = variant_case("matmul", v, f, pr.desc + " threads=" + std::to_string(pool.size()));
        std::vector<float> got;
        run_case(r, [&] {
          v.fn(p, ExecContext(pool));
          got = compact(p, y);
          compare(got.data(), want.data(), got.size(), 2e-5, floor, &r);
          r.guards_ok = y.intact();
        });
        const bool ran = r.passed;
        results.push_back(std::move(r));
        // Decode (M <= 4, split over N only) and the GEMM (each row's sums in one order whatever
        // the split) promise the same bits on any thread count.
        if (ran && (s.M <= 4 || s.M >= cpu::kQGemmMinRows) && ext > 0) results.push_back(same_bits_case(v, f, pr.desc, p, got, choice.three_threads ? dflt : three));
        if (ran && s.M >= 2 && s.M <= 4 && ext > 0) results.push_back(alone_bits_case(v, f, pr.desc, p, got, pool));
      }
    }
  }
  for (const WeightFormat f : {WeightFormat::Q8, WeightFormat::Q4})
    for (Result& r : streamed_cases("matmul", family, f, rng, dflt)) results.push_back(std::move(r));
  // A set cancel token: the large-M path stops before its first output block (y untouched).
  for (const WeightFormat f : {WeightFormat::Q8, WeightFormat::Q4}) {
    QProblem pr = make({96, 64, 300, 32}, f, true, false, rng);
    CancelToken aborted;
    aborted.cancel(CancelToken::Reason::Aborted);
    for (const auto& v : family.runnable()) {
      if (v.fn == family.reference().fn || !v.reads(f)) continue;
      MatmulParams p = pr.p;
      p.cancel = &aborted;
      results.push_back(cancelled_case("matmul", v, f, p, three));
    }
  }
  return results;
}

}  // namespace qvl::parity
