// MoE parity: every variant against the reference on awkward T/E/k/H/I, strided inputs, exact
// routing ties, three weight dtypes and thread counts that take both of the grouped variant's
// strategies. Each case also checks the reference (on repacked weights) against transformers'
// formula evaluated directly on the checkpoint's fused layout, which pins down the repack and the
// gate/up split.
#include <algorithm>
#include <cstring>
#include <cmath>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/cpu.h"
#include "core/dtype.h"
#include "core/weight_format.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "ops/moe.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

struct Case {
  int64_t T, E, k, H, I;
  WeightFormat wf;
  bool norm;
  int threads;
  bool ties;
};

// Weights stored in format `wf` (rows of `cols` through the format's quantize_row), plus the exact
// value of each stored element as float (read back through dequantize_row) for the direct check.
struct Weights {
  std::vector<uint64_t> bytes;  // 8-byte aligned storage
  std::vector<float> f;
  const void* data() const { return bytes.data(); }
};

Weights make_weights(Rng& rng, WeightFormat wf, int64_t rows, int64_t cols, float scale) {
  const WeightFormatTraits& t = weight_format_traits(wf);
  int64_t row_bytes = 0;
  if (t.has_scales || t.has_zeros || !weight_row_bytes(wf, cols, &row_bytes))
    fail(ErrorCode::Native, std::string("parity_moe: cannot store ") + t.name + " experts");
  Weights w;
  w.f.resize(static_cast<size_t>(rows * cols));
  w.bytes.assign(static_cast<size_t>((rows * row_bytes + 7) / 8), 0);
  for (float& v : w.f) v = rng.normal() * scale;
  char* base = reinterpret_cast<char*>(w.bytes.data());
  for (int64_t r = 0; r < rows; ++r) t.quantize_row(w.f.data() + r * cols, cols, base + r * row_bytes, nullptr, nullptr);
  const WeightRef ref = dense_weight(wf, base, rows, cols, cols);
  for (int64_t r = 0; r < rows; ++r) t.dequantize_row(ref, r, 0, cols, w.f.data() + r * cols);
  return w;
}

std::string describe(const Case& c) {
  return "T=" + std::to_string(c.T) + " E=" + std::to_string(c.E) + " k=" + std::to_string(c.k) +
         " H=" + std::to_string(c.H) + " I=" + std::to_string(c.I) + " " + weight_format_name(c.wf) + (c.norm ? "" : " nonorm") +
         (c.ties ? " ties" : "") + " thr=" + std::to_string(c.threads);
}

// transformers' Qwen3VLMoeTextExperts on the fused checkpoint layout, in double:
// gate_up = x @ gate_up_proj[e] ([H, 2I]); gate, up = chunk(2, -1); y = (up * silu(gate)) @ down_proj[e].
std::vector<double> direct_experts(const Case& c, const std::vector<float>& x, int64_t ldx, const std::vector<float>& gu,
                                   const std::vector<float>& dn, const std::vector<int32_t>& ids,
                                   const std::vector<float>& wts) {
  const int64_t H = c.H, I = c.I;
  std::vector<double> out(static_cast<size_t>(c.T * H), 0.0), g(static_cast<size_t>(2 * I));
  for (int64_t t = 0; t < c.T; ++t) {
    for (int64_t j = 0; j < c.k; ++j) {
      const int64_t e = ids[t * c.k + j];
      for (int64_t col = 0; col < 2 * I; ++col) {
        double s = 0;
        for (int64_t h = 0; h < H; ++h) s += static_cast<double>(x[t * ldx + h]) * gu[(e * H + h) * 2 * I + col];
        g[col] = s;
      }
      for (int64_t o = 0; o < H; ++o) {
        double s = 0;
        for (int64_t i = 0; i < I; ++i) {
          const double gate = g[i], up = g[I + i];
          s += up * (gate / (1.0 + std::exp(-gate))) * dn[(e * I + i) * H + o];
        }
        out[t * H + o] += wts[t * c.k + j] * s;
      }
    }
  }
  return out;
}

bool throws_input(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code() == ErrorCode::Input;
  }
  return false;
}

Result check_validation() {
  Result r;
  r.op = "moe";
  r.variant = "checks";
  r.shape = "E_INPUT on bad shapes, NaN/+inf logits, overlap";
  std::vector<float> lg(8, 0.5f), x(8, 1.0f), out(8);
  std::vector<float> w(64, 0.0f);
  auto base = [&]() {
    ops::MoeParams p;
    p.T = 2, p.E = 4, p.k = 2, p.H = 4, p.I = 2;
    p.router_logits = lg.data(), p.ld_logits = 4;
    p.x = x.data(), p.ldx = 4;
    p.gate_up = w.data(), p.down = w.data();
    p.out = out.data(), p.ldo = 4;
    return p;
  };
  ThreadPool pool(1);
  std::vector<std::pair<const char*, std::function<void(ops::MoeParams&)>>> bad = {
      {"k>E", [](ops::MoeParams& p) { p.k = 5; }},
      {"k=0", [](ops::MoeParams& p) { p.k = 0; }},
      {"ldx<H", [](ops::MoeParams& p) { p.ldx = 3; }},
      {"ld_logits<E", [](ops::MoeParams& p) { p.ld_logits = 3; }},
      {"format", [](ops::MoeParams& p) { p.w_format = static_cast<WeightFormat>(99); }},
      {"null x", [](ops::MoeParams& p) { p.x = nullptr; }},
      {"out=x", [&](ops::MoeParams& p) { p.out = x.data(); }},
      {"NaN logit", [&](ops::MoeParams&) { lg[5] = NAN; }},
      {"+inf logit", [&](ops::MoeParams&) { lg[5] = INFINITY; }},
      {"all -inf row", [&](ops::MoeParams&) { for (int i = 4; i < 8; ++i) lg[i] = -INFINITY; }},
  };
  bool ok = !throws_input([&] { auto p = base(); ops::moe(p, ExecContext(pool)); });
  if (!ok) r.note = "a valid problem was rejected";
  for (auto& [name, mutate] : bad) {
    std::fill(lg.begin(), lg.end(), 0.5f);
    auto p = base();
    mutate(p);
    if (!throws_input([&] { ops::moe(p, ExecContext(pool)); })) {
      ok = false;
      r.note += std::string(r.note.empty() ? "" : "; ") + "not rejected: " + name;
    }
  }
  std::vector<int32_t> ids = {0, 4};
  std::vector<int64_t> counts(4), offsets(5), rows(2);
  if (!throws_input([&] { ops::moe_group(ids.data(), 1, 2, 4, counts.data(), offsets.data(), rows.data()); })) {
    ok = false;
    r.note += "; moe_group accepted id 4 of E=4";
  }
  r.passed = ok;
  return r;
}

// The repack through the format's traits against a plain element-by-element transpose, bit for
// bit, on odd sizes and thread counts (blocks of 64 source rows split across the pool).
Result pack_case(WeightFormat f, int64_t E, int64_t R, int64_t C, int threads, Rng& rng) {
  Result r;
  r.op = "moe";
  r.variant = "pack";
  r.format = weight_format_name(f);
  r.shape = std::string("E=") + std::to_string(E) + " R=" + std::to_string(R) + " C=" + std::to_string(C) + " " +
            r.format + " thr=" + std::to_string(threads) + " (moe_pack_experts vs plain transpose, bit exact)";
  const WeightFormatTraits& t = weight_format_traits(f);
  int64_t row_bytes = 0;
  if (t.block != 1 || !weight_row_bytes(f, C, &row_bytes)) {
    r.passed = false, r.note = "the plain transpose is written for one-element blocks";
    return r;
  }
  const size_t es = static_cast<size_t>(t.block_bytes), n = static_cast<size_t>(E * R * C);
  std::vector<unsigned char> src(n * es);
  for (auto& b : src) b = static_cast<unsigned char>(rng.next());
  std::vector<unsigned char> want(n * es);
  for (int64_t e = 0; e < E; ++e)
    for (int64_t i = 0; i < R; ++i)
      for (int64_t c = 0; c < C; ++c)
        std::memcpy(&want[((e * C + c) * R + i) * es], &src[((e * R + i) * C + c) * es], es);
  Guarded<unsigned char> got(n * es, 0);
  ThreadPool pool(threads);
  try {
    ops::moe_pack_experts(src.data(), got.data(), f, E, R, C, pool);
  } catch (const std::exception& e) {
    r.passed = false, r.note = std::string("threw ") + e.what();
    return r;
  }
  r.guards_ok = got.intact();
  compare_exact(got.data(), want.data(), n * es, &r);
  if (!r.guards_ok) r.passed = false, r.note += " wrote outside dst";
  return r;
}

}  // namespace

std::vector<Result> parity_moe(uint64_t seed) {
  const std::vector<Case> cases = {
      {1, 4, 1, 33, 19, WeightFormat::F32, true, 1, false},   {3, 8, 2, 33, 19, WeightFormat::BF16, true, 2, false},
      {17, 8, 2, 31, 17, WeightFormat::BF16, true, 2, true},  {17, 60, 4, 65, 23, WeightFormat::F16, true, 3, false},
      {17, 60, 8, 47, 9, WeightFormat::BF16, false, 2, true}, {3, 4, 4, 17, 5, WeightFormat::F32, true, 2, false},
      {1, 60, 8, 129, 41, WeightFormat::BF16, true, 2, false}, {1, 60, 8, 63, 21, WeightFormat::F32, true, 8, false},
      {17, 8, 8, 15, 3, WeightFormat::F16, false, 1, true},   {33, 60, 1, 9, 7, WeightFormat::F32, true, 4, true},
      {64, 8, 2, 33, 19, WeightFormat::F32, true, 2, false},  {5, 1, 1, 7, 1, WeightFormat::BF16, false, 2, false},
      {0, 8, 2, 33, 19, WeightFormat::F32, true, 2, false},
  };
  std::vector<Result> results;
  Rng rng(seed ^ 0x6d6f65ull);
  // The format axis: each case runs in every weight format (its listed dtype first, as before).
  std::vector<Case> all;
  for (const Case& base : cases) {
    all.push_back(base);
    for (const WeightFormat f : kWeightFormats) {
      Case c = base;
      c.wf = f;
      bool served = false;  // formats no moe variant reads are the matmul harness's alone
      for (const auto& v : ops::moe_family().variants()) served = served || v.reads(f);
      if (c.wf != base.wf && served) all.push_back(c);
    }
  }
  for (const Case& c : all) {
    const WeightFormat wf = c.wf;
    const int64_t ld_logits = c.E + (c.T % 3), ldx = c.H + 3, ldo = c.H + 2;
    std::vector<float> logits(static_cast<size_t>(std::max<int64_t>(c.T, 1) * ld_logits));
    for (float& v : logits) v = rng.normal() * 2.0f;
    if (c.ties) {
      // Exact ties, including for first place and at the k-th boundary.
      for (int64_t t = 0; t < c.T; ++t) {
        float* row = logits.data() + t * ld_logits;
        const int64_t a = rng.range(0, c.E - 1), b = rng.range(0, c.E - 1);
        row[b] = row[a];
        if (t % 2 == 0 && c.E > 2) {
          float mx = row[0];
          for (int64_t e = 1; e < c.E; ++e) mx = std::max(mx, row[e]);
          row[c.E - 1] = mx;
          row[c.E / 2] = mx;
        }
        if (t % 3 == 1) for (int64_t e = 0; e < c.E; e += 2) row[e] = 0.25f;
      }
    }
    std::vector<float> x(static_cast<size_t>(std::max<int64_t>(c.T, 1) * ldx));
    for (float& v : x) v = rng.normal();
    const Weights gu = make_weights(rng, wf, c.E * c.H, 2 * c.I, 1.0f / std::sqrt(float(c.H)));
    const Weights dn = make_weights(rng, wf, c.E * c.I, c.H, 1.0f / std::sqrt(float(c.I)));

    // The op's layout, from the checkpoint's.
    auto pool = std::make_shared<ThreadPool>(c.threads);
    // Packed buffers have the checkpoint's byte size ([E, R, C] and [E, C, R] hold the same blocks).
    std::vector<uint64_t> gu_packed(gu.bytes.size()), dn_packed(dn.bytes.size());
    ops::moe_pack_experts(gu.data(), gu_packed.data(), wf, c.E, c.H, 2 * c.I, *pool);
    ops::moe_pack_experts(dn.data(), dn_packed.data(), wf, c.E, c.I, c.H, *pool);

    ops::MoeParams p;
    p.T = c.T, p.E = c.E, p.k = c.k, p.H = c.H, p.I = c.I;
    p.norm_topk_prob = c.norm;
    p.router_logits = logits.data(), p.ld_logits = ld_logits;
    p.x = x.data(), p.ldx = ldx;
    p.gate_up = gu_packed.data(), p.down = dn_packed.data(), p.w_format = wf;
    p.ldo = ldo;
    const size_t out_n = c.T > 0 ? static_cast<size_t>((c.T - 1) * ldo + c.H) : 0;
    const size_t nk = static_cast<size_t>(c.T * c.k);
    const float kSentinel = 1234.5f;

    std::vector<float> ref_out(out_n, kSentinel), ref_w(nk);
    std::vector<int32_t> ref_ids(nk);
    {
      ops::MoeParams q = p;
      q.out = ref_out.data(), q.topk_ids = ref_ids.data(), q.topk_weights = ref_w.data();
      ops::check_moe(q);
      ops::moe_family().reference().fn(q, ExecContext(*pool));
    }
    {
      Result r;
      r.op = "moe";
      r.variant = "direct";
      r.format = weight_format_name(wf);
      r.shape = describe(c) + " (reference vs fused-layout formula)";
      const std::vector<double> want = direct_experts(c, x, ldx, gu.f, dn.f, ref_ids, ref_w);
      std::vector<float> got, wantf;
      for (int64_t t = 0; t < c.T; ++t) {
        for (int64_t h = 0; h < c.H; ++h) {
          got.push_back(ref_out[t * ldo + h]);
          wantf.push_back(static_cast<float>(want[t * c.H + h]));
        }
      }
      compare(got.data(), wantf.data(), got.size(), 1e-5, 0.1, &r);
      results.push_back(r);
    }

    for (const auto& v : ops::moe_family().runnable()) {
      if (!v.reads(wf)) continue;
      Result r;
      r.op = "moe";
      r.variant = v.name;
      r.device = device_name(v.device);
      r.format = weight_format_name(wf);
      r.shape = describe(c);
      Guarded<float> out(out_n, kSentinel), wts(nk, -1.0f);
      Guarded<int32_t> ids(nk, -1);
      ops::MoeParams q = p;
      q.out = out.data(), q.topk_ids = ids.data(), q.topk_weights = wts.data();
      ops::check_moe(q);
      try {
        v.fn(q, ExecContext(*pool));
      } catch (const std::exception& e) {
        r.passed = false;
        r.note = std::string("threw ") + e.what();
        results.push_back(r);
        continue;
      }
      r.guards_ok = out.intact() && wts.intact() && ids.intact();
      compare_exact(ids.data(), ref_ids.data(), nk, &r);
      if (!r.passed) {
        r.note = "routing ids differ: " + r.note;
        results.push_back(r);
        continue;
      }
      Result rw = r;
      compare(wts.data(), ref_w.data(), nk, 2e-6, 1e-6, &rw);
      if (!rw.passed) {
        rw.note = "routing weights: " + rw.note;
        results.push_back(rw);
        continue;
      }
      compare(out.data(), ref_out.data(), out_n, 1e-4, 1e-2, &r);
      for (int64_t t = 0; t < c.T && r.passed; ++t) {
        for (int64_t h = c.H; h < ldo && t + 1 < c.T; ++h) {
          if (out[t * ldo + h] != kSentinel) {
            r.passed = false;
            r.note = "wrote into the row gap of out";
          }
        }
      }
      results.push_back(r);
    }
  }
  results.push_back(check_validation());
  for (const WeightFormat f : kWeightFormats) {
    const WeightFormatTraits& t = weight_format_traits(f);
    if (!t.transpose_rows) {  // blocks along the rows: refused, never split
      results.push_back(expect_rejected("moe", std::string("pack: ") + t.name + " refused (no transpose)", [f] {
        ThreadPool pool(1);
        uint64_t a[64] = {}, b[64] = {};
        ops::moe_pack_experts(a, b, f, 1, 32, 32, pool);
      }, ErrorCode::Unsupported));
      continue;
    }
    if (t.block != 1) continue;  // a block-wise transpose brings its own bit-exact check
    results.push_back(pack_case(f, 3, 67, 130, 2, rng));  // source rows straddle the 64-row blocks
    results.push_back(pack_case(f, 1, 1, 7, 1, rng));
    results.push_back(pack_case(f, 5, 9, 64, 3, rng));
  }
  results.push_back(expect_rejected("moe", "pack: unknown weight format", [] {
    ThreadPool pool(1);
    float a[4] = {}, b[4] = {};
    ops::moe_pack_experts(a, b, static_cast<WeightFormat>(99), 1, 2, 2, pool);
  }));
  return results;
}

}  // namespace qvl::parity
