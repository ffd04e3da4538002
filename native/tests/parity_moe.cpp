// MoE parity: every variant against the reference on awkward T/E/k/H/I, strided inputs, exact
// routing ties, three weight dtypes and thread counts that take both of the grouped variant's
// strategies. Each case also checks the reference (on repacked weights) against transformers'
// formula evaluated directly on the checkpoint's fused layout, which pins down the repack and the
// gate/up split.
#include <algorithm>
#include <atomic>
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
#include "core/weight_quant.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "ops/moe.h"
#include "ops/weight_quant.h"
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

// Experts in the op's stacked layout in format `wf`, made from random checkpoint-layout values
// [E, R, C]: dense formats stored in the checkpoint layout through the format's quantize_row and
// repacked by moe_pack_experts; q8/q4 through moe_quantize_experts (group 32) from f32; f8 per
// stacked row through its quantize_row. `f` holds, in the checkpoint layout, the exact value of
// each stored element (read back through dequantize_row) for the direct check.
struct Experts {
  std::vector<uint64_t> data, scales, zeros;  // 8-byte aligned storage
  WeightRef ref;
  std::vector<float> f;
};

void* words(std::vector<uint64_t>& v, int64_t bytes) {
  v.assign(static_cast<size_t>((bytes + 7) / 8), 0);
  return v.data();
}

// Whether the stacked [E·C, R] rows can hold format wf (rows of R in whole blocks and groups).
bool storable(WeightFormat wf, int64_t R) {
  const WeightFormatTraits& t = weight_format_traits(wf);
  int64_t rb = 0;
  return weight_row_bytes(wf, R, &rb) && (!t.has_scales || R % (t.kernel == WeightKernel::Int8Dot ? kQuantBlock : t.block) == 0);
}

Experts make_experts(Rng& rng, WeightFormat wf, int64_t E, int64_t R, int64_t C, float scale, ThreadPool& pool) {
  const WeightFormatTraits& t = weight_format_traits(wf);
  Experts x;
  std::vector<float> v(static_cast<size_t>(E * R * C));
  for (float& a : v) a = rng.normal() * scale;
  const int64_t rows = E * C;
  if (!t.has_scales) {
    int64_t row_bytes = 0;
    if (!weight_row_bytes(wf, C, &row_bytes)) fail(ErrorCode::Native, std::string("parity_moe: cannot store ") + t.name);
    std::vector<uint64_t> stored(static_cast<size_t>((E * R * row_bytes + 7) / 8));
    char* base = reinterpret_cast<char*>(stored.data());
    for (int64_t r = 0; r < E * R; ++r) t.quantize_row(v.data() + r * C, C, base + r * row_bytes, nullptr, nullptr);
    const WeightRef ck = dense_weight(wf, base, E * R, C, C);
    x.f.resize(v.size());
    for (int64_t r = 0; r < E * R; ++r) t.dequantize_row(ck, r, 0, C, x.f.data() + r * C);
    void* d = words(x.data, E * R * row_bytes);
    ops::moe_pack_experts(base, d, wf, E, R, C, pool);
    x.ref = dense_weight(wf, d, rows, R, R);
    return x;
  }
  // The checkpoint values in the op's [E·C, R] form, f32.
  std::vector<float> packed(v.size());
  ops::moe_pack_experts(v.data(), packed.data(), WeightFormat::F32, E, R, C, pool);
  x.ref.format = wf, x.ref.ld = R, x.ref.out = rows, x.ref.in = R;
  if (t.kernel == WeightKernel::Int8Dot) {
    QuantRowBytes tb;
    quant_weight_bytes(wf, rows, R, kQuantBlock, &tb);
    x.ref.group = kQuantBlock;
    x.ref.data = words(x.data, tb.codes);
    x.ref.scales = words(x.scales, tb.scales);
    x.ref.zeros = tb.zeros ? words(x.zeros, tb.zeros) : nullptr;
    if (ops::moe_quantize_experts(v.data(), WeightFormat::F32, E, R, C, wf, kQuantBlock, x.data.data(), x.scales.data(),
                                  tb.zeros ? x.zeros.data() : nullptr, pool) >= 0)
      fail(ErrorCode::Native, "parity_moe: a scale overflowed");
  } else {
    int64_t row_bytes = 0;
    weight_row_bytes(wf, R, &row_bytes);
    x.ref.group = t.block;
    char* d = static_cast<char*>(words(x.data, rows * row_bytes));
    float* sc = static_cast<float*>(words(x.scales, rows * (R / t.block) * 4));
    for (int64_t r = 0; r < rows; ++r) t.quantize_row(packed.data() + r * R, R, d + r * row_bytes, sc + r * (R / t.block), nullptr);
    x.ref.data = d, x.ref.scales = sc;
  }
  // Stored values back in the checkpoint layout.
  std::vector<float> row(static_cast<size_t>(R));
  x.f.resize(v.size());
  for (int64_t e = 0; e < E; ++e)
    for (int64_t c = 0; c < C; ++c) {
      t.dequantize_row(x.ref, e * C + c, 0, R, row.data());
      for (int64_t i = 0; i < R; ++i) x.f[(e * R + i) * C + c] = row[i];
    }
  return x;
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
    p.gate_up = dense_weight(WeightFormat::F32, w.data(), 16, 4, 4), p.down = dense_weight(WeightFormat::F32, w.data(), 16, 2, 2);
    p.out = out.data(), p.ldo = 4;
    return p;
  };
  ThreadPool pool(1);
  std::vector<std::pair<const char*, std::function<void(ops::MoeParams&)>>> bad = {
      {"k>E", [](ops::MoeParams& p) { p.k = 5; }},
      {"k=0", [](ops::MoeParams& p) { p.k = 0; }},
      {"ldx<H", [](ops::MoeParams& p) { p.ldx = 3; }},
      {"ld_logits<E", [](ops::MoeParams& p) { p.ld_logits = 3; }},
      {"format", [](ops::MoeParams& p) { p.gate_up.format = static_cast<WeightFormat>(99); }},
      {"gate_up rows", [](ops::MoeParams& p) { p.gate_up.out = 7; }},
      {"down shape", [](ops::MoeParams& p) { p.down.in = 4, p.down.ld = 4; }},
      {"q8 without scales", [](ops::MoeParams& p) { p.down.format = WeightFormat::Q8; }},
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

// moe_quantize_experts (transpose per expert into a thread's buffer, quantize, in parallel)
// against its definition: moe_pack_experts of the whole tensor, then quantize_weight, bit for bit;
// and the `done` callback told of every expert once.
Result quantize_case(WeightFormat src_f, WeightFormat f, int64_t E, int64_t R, int64_t C, int64_t group, int threads, Rng& rng) {
  Result r;
  r.op = "moe";
  r.variant = "quantize";
  r.format = weight_format_name(f);
  r.shape = std::string("E=") + std::to_string(E) + " R=" + std::to_string(R) + " C=" + std::to_string(C) + " " +
            weight_format_name(src_f) + "->" + r.format + " group " + std::to_string(group) + " thr=" + std::to_string(threads) +
            " (moe_quantize_experts vs pack + quantize_weight, bit exact)";
  const WeightFormatTraits& st = weight_format_traits(src_f);
  int64_t src_row = 0;
  weight_row_bytes(src_f, C, &src_row);
  std::vector<uint64_t> src(static_cast<size_t>((E * R * src_row + 7) / 8)), packed(src.size());
  std::vector<float> row(static_cast<size_t>(C));
  for (int64_t i = 0; i < E * R; ++i) {
    for (float& v : row) v = rng.normal() * (i % 5 == 0 ? 40.0f : 0.3f);
    st.quantize_row(row.data(), C, reinterpret_cast<char*>(src.data()) + i * src_row, nullptr, nullptr);
  }
  QuantRowBytes rb;
  const int64_t rows = E * C;
  quant_weight_bytes(f, rows, R, group, &rb);
  std::vector<uint8_t> wd(static_cast<size_t>(rb.codes)), ws(static_cast<size_t>(rb.scales)), wz(static_cast<size_t>(rb.zeros));
  Guarded<uint8_t> gd(wd.size(), 0xa5), gs(ws.size(), 0xa5), gz(wz.size(), 0xa5);
  ThreadPool pool(threads);
  std::unique_ptr<std::atomic<int>[]> seen(new std::atomic<int>[static_cast<size_t>(E)]());
  try {
    ops::moe_pack_experts(src.data(), packed.data(), src_f, E, R, C, pool);
    const WeightRef dense = dense_weight(src_f, packed.data(), rows, R, R);
    const int64_t want_bad = ops::quantize_weight(dense, f, group, wd.data(), ws.data(), rb.zeros ? wz.data() : nullptr, pool);
    const int64_t bad = ops::moe_quantize_experts(src.data(), src_f, E, R, C, f, group, gd.data(), gs.data(),
                                                  rb.zeros ? gz.data() : nullptr, pool, [&](int64_t e) { ++seen[e]; });
    if (bad != want_bad) r.passed = false, r.note = "overflow report " + std::to_string(bad) + " vs " + std::to_string(want_bad);
  } catch (const std::exception& e) {
    r.passed = false, r.note = std::string("threw ") + e.what();
    return r;
  }
  r.guards_ok = gd.intact() && gs.intact() && gz.intact();
  compare_exact(gd.data(), wd.data(), wd.size(), &r);
  compare_exact(gs.data(), ws.data(), ws.size(), &r);
  compare_exact(gz.data(), wz.data(), wz.size(), &r);
  for (int64_t e = 0; e < E; ++e)
    if (seen[e].load() != 1) r.passed = false, r.note += " expert " + std::to_string(e) + " reported " + std::to_string(seen[e].load()) + " times";
  if (!r.guards_ok) r.passed = false, r.note += " wrote outside dst";
  return r;
}

// moe_stack_expert_rows against the parts read row by row through the format (every row of the
// stacked weight dequantizes exactly as its part's row), for f8 and q4 parts of uneven row counts.
Result stack_case(WeightFormat f, int64_t in, const std::vector<int64_t>& outs, Rng& rng) {
  Result r;
  r.op = "moe";
  r.variant = "stack";
  r.format = weight_format_name(f);
  r.shape = std::to_string(outs.size()) + " parts of " + std::to_string(in) + " columns (moe_stack_expert_rows, exact)";
  const WeightFormatTraits& t = weight_format_traits(f);
  const int64_t group = t.kernel == WeightKernel::Int8Dot ? kQuantBlock : t.has_scales ? t.block : 0;
  ThreadPool pool(2);
  std::vector<Experts> parts;
  std::vector<WeightRef> refs;
  int64_t total = 0;
  for (int64_t o : outs) {
    // One expert whose [o, in] rows come from a [1, in, o] checkpoint tensor.
    parts.push_back(make_experts(rng, f, 1, in, o, 1.0f, pool));
    refs.push_back(parts.back().ref);
    total += o;
  }
  size_t nd = 1, ns = 1, nz = 1;  // each part's buffers are its rows' exact size, rounded up to words
  for (const Experts& p : parts) nd += p.data.size(), ns += p.scales.size(), nz += p.zeros.size();
  std::vector<uint64_t> d(nd), sc(ns), z(nz);
  WeightRef st;
  try {
    st = ops::moe_stack_expert_rows(refs.data(), static_cast<int64_t>(refs.size()), d.data(), sc.data(), z.data(), pool);
  } catch (const std::exception& e) {
    r.passed = false, r.note = std::string("threw ") + e.what();
    return r;
  }
  if (st.out != total || st.format != f || st.group != group) r.passed = false, r.note = "wrong stacked reference";
  std::vector<float> got(static_cast<size_t>(in)), want(static_cast<size_t>(in));
  int64_t at = 0;
  for (size_t i = 0; i < refs.size() && r.passed; ++i) {
    for (int64_t row = 0; row < refs[i].out && r.passed; ++row) {
      t.dequantize_row(st, at + row, 0, in, got.data());
      t.dequantize_row(refs[i], row, 0, in, want.data());
      compare_exact(got.data(), want.data(), static_cast<size_t>(in), &r);
    }
    at += refs[i].out;
  }
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
      // Sizes the scaled formats can hold (q8/q4: multiples of 32; f8: of 128), both strategies.
      {17, 8, 2, 64, 32, WeightFormat::BF16, true, 2, true},  {1, 12, 3, 96, 64, WeightFormat::BF16, true, 3, false},
      {9, 6, 2, 128, 128, WeightFormat::F32, true, 2, false}, {33, 16, 4, 32, 96, WeightFormat::BF16, false, 8, false},
  };
  std::vector<Result> results;
  Rng rng(seed ^ 0x6d6f65ull);
  // The format axis: each case runs in every weight format (its listed dtype first, as before).
  std::vector<Case> all;
  for (const Case& base : cases) {
    if (storable(base.wf, base.H) && storable(base.wf, base.I)) all.push_back(base);
    for (const WeightFormat f : kWeightFormats) {
      Case c = base;
      c.wf = f;
      bool served = false;  // formats no moe variant reads are the matmul harness's alone
      for (const auto& v : ops::moe_family().variants()) served = served || v.reads(f);
      if (c.wf != base.wf && served && storable(f, c.H) && storable(f, c.I)) all.push_back(c);
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
    // The op's layout, from the checkpoint's.
    auto pool = std::make_shared<ThreadPool>(c.threads);
    const Experts gu = make_experts(rng, wf, c.E, c.H, 2 * c.I, 1.0f / std::sqrt(float(c.H)), *pool);
    const Experts dn = make_experts(rng, wf, c.E, c.I, c.H, 1.0f / std::sqrt(float(c.I)), *pool);
    // Int8Dot formats quantize the products' inputs (ops/quant_act.h): the reference against the
    // exact formula is then held to that arithmetic's error, and a variant against the reference
    // allows for an input code rounding the other way (the SwiGLU output differs in its last
    // bits between f32 and double), each such flip worth one activation step.
    const bool int8dot = weight_format_traits(wf).kernel == WeightKernel::Int8Dot;

    ops::MoeParams p;
    p.T = c.T, p.E = c.E, p.k = c.k, p.H = c.H, p.I = c.I;
    p.norm_topk_prob = c.norm;
    p.router_logits = logits.data(), p.ld_logits = ld_logits;
    p.x = x.data(), p.ldx = ldx;
    p.gate_up = gu.ref, p.down = dn.ref;
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
      // The widest case (H = I = 128) reaches 0.047 (q8) to 0.063 (q4) of a 0.5 floor; a block
      // computed wrong is off by O(1).
      if (int8dot) compare(got.data(), wantf.data(), got.size(), 0.08, 0.5, &r);
      else compare(got.data(), wantf.data(), got.size(), 1e-5, 0.1, &r);
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
      if (int8dot) compare(out.data(), ref_out.data(), out_n, 1e-3, 0.5, &r);
      else compare(out.data(), ref_out.data(), out_n, 1e-4, 1e-2, &r);
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
  for (const WeightFormat f : {WeightFormat::Q8, WeightFormat::Q4}) {
    // Each expert's C rows start a 16-row panel: C a multiple of 16, or one expert of any C.
    results.push_back(quantize_case(WeightFormat::BF16, f, 5, 96, 48, 32, 3, rng));  // 3 groups per row
    results.push_back(quantize_case(WeightFormat::F32, f, 3, 64, 32, 64, 2, rng));
    results.push_back(quantize_case(WeightFormat::F16, f, 1, 32, 1, 32, 1, rng));
    results.push_back(quantize_case(WeightFormat::F32, f, 1, 64, 33, 32, 2, rng));  // a partial last panel
    results.push_back(quantize_case(WeightFormat::BF16, f, 9, 128, 16, 128, 4, rng));
  }
  results.push_back(expect_rejected("moe", "quantize: experts of 33 rows (not whole panels)", [] {
    ThreadPool pool(1);
    uint64_t a[4 * 33] = {}, b[4096] = {};
    ops::moe_quantize_experts(a, WeightFormat::F32, 2, 32, 33, WeightFormat::Q8, 32, b, b, nullptr, pool);
  }, ErrorCode::Unsupported));
  results.push_back(stack_case(WeightFormat::F8, 256, {3, 128, 1}, rng));
  results.push_back(stack_case(WeightFormat::Q4, 96, {16, 48, 32}, rng));
  results.push_back(expect_rejected("moe", "stack: q4 parts of 5 rows (not whole panels)", [&] {
    ThreadPool pool(1);
    std::vector<Experts> parts;
    for (int i = 0; i < 2; ++i) parts.push_back(make_experts(rng, WeightFormat::Q4, 1, 32, 5, 1.0f, pool));
    std::vector<uint64_t> d(256), sc(256), z(256);
    const WeightRef p[2] = {parts[0].ref, parts[1].ref};
    ops::moe_stack_expert_rows(p, 2, d.data(), sc.data(), z.data(), pool);
  }, ErrorCode::Unsupported));
  results.push_back(stack_case(WeightFormat::BF16, 33, {4, 1}, rng));
  results.push_back(expect_rejected("moe", "quantize: q8 from f8 refused", [] {
    ThreadPool pool(1);
    uint64_t a[64] = {}, b[64] = {};
    ops::moe_quantize_experts(a, WeightFormat::F8, 1, 128, 1, WeightFormat::Q8, 32, b, b, nullptr, pool);
  }, ErrorCode::Unsupported));
  results.push_back(expect_rejected("moe", "quantize: group not dividing R", [] {
    ThreadPool pool(1);
    uint64_t a[64] = {}, b[64] = {};
    ops::moe_quantize_experts(a, WeightFormat::BF16, 1, 48, 1, WeightFormat::Q8, 32, b, b, nullptr, pool);
  }));
  results.push_back(expect_rejected("moe", "stack: parts of different widths", [&] {
    ThreadPool pool(1);
    uint64_t a[64] = {}, b[64] = {};
    WeightRef p[2] = {dense_weight(WeightFormat::F32, a, 2, 4, 4), dense_weight(WeightFormat::F32, a, 2, 3, 3)};
    ops::moe_stack_expert_rows(p, 2, b, nullptr, nullptr, pool);
  }));
  results.push_back(expect_rejected("moe", "pack: unknown weight format", [] {
    ThreadPool pool(1);
    float a[4] = {}, b[4] = {};
    ops::moe_pack_experts(a, b, static_cast<WeightFormat>(99), 1, 2, 2, pool);
  }));
  return results;
}

}  // namespace qvl::parity
