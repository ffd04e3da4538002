// Attention parity: every variant against the double-precision reference on awkward shapes —
// head dims that are not multiples of any vector width, GQA ratios 1/2/6/7, fused-qkv strides,
// interleaved-kv strides, many segments of odd, size-1 and empty lengths, decode (one and several
// key chunks, batched with different cache lengths) and chunked prefill under causal. Each case
// runs on pools of 1, 2 and 7 threads; decode-shaped cases must give the same bits on all three.
// bf16 twins of most cases store k and v as bf16 (a bf16 KV cache, read without widening copies):
// the reference widens the same stored values, so the tolerances are the f32 ones.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/cancel.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "ops/attention.h"
#include "tests/parity.h"

namespace qvl::parity {
namespace {

using ops::AttentionParams;
using ops::AttentionSegment;

constexpr float kUntouched = 777.0f;  // rows no segment covers must keep this

struct Case {
  std::string name;
  int64_t Hq, Hkv, D;
  bool causal;
  std::vector<AttentionSegment> segs;
  int64_t Tq, Tk;
  bool fused;          // q, k, v are views into one [T, (Hq+2Hkv)·D + pad] buffer (needs Tq == Tk)
  float magnitude = 1;  // input scale: larger means sharper softmax
  bool kv_view = false;  // k and v are views into one [Tk, 2·Hkv·D + pad] buffer, q rows padded too
  bool own_kv = false;   // every other segment brings its own k and v buffers (p.k's rows there are NaN)
  bool bf16_kv = false;  // k and v (and segments' own buffers) stored as bf16
};

// ops/attention.h: segments with at most this many query rows per kv head (decode) give the same
// bits on every thread count.
constexpr int64_t kDecodeRows = 16;
bool decode_shaped(const Case& c) {
  for (const AttentionSegment& g : c.segs)
    if ((g.q_end - g.q_start) * (c.Hq / c.Hkv) > kDecodeRows) return false;
  return !c.segs.empty();
}

// Scores carry fp32 rounding of about 1e-7·|score|, and every output moves by that times |v|: sharp
// softmaxes (large scores) are judged on absolute error against |v| ~ 1 rather than relative error.
// At magnitude 1 the worst element over seeds 1-10 and the suite's seed reached 2.24e-5 (f32 and
// bf16 k/v alike: long decodes whose outputs sit near the floor), hence 3e-5.
double tolerance(const Case& c) { return c.magnitude > 1 ? 1e-5 * c.magnitude * c.magnitude : 3e-5; }
double tolerance_floor(const Case& c) { return c.magnitude > 1 ? 1.0 : 0.05; }

std::string describe(const Case& c) {
  std::string s = c.name + " Hq=" + std::to_string(c.Hq) + " Hkv=" + std::to_string(c.Hkv) + " D=" + std::to_string(c.D);
  if (c.causal) s += " causal";
  if (c.fused) s += " fused";
  if (c.kv_view) s += " kv-view";
  if (c.own_kv) s += " own-kv";
  if (c.bf16_kv) s += " bf16-kv";
  return s;
}

void run_case(const Case& c, uint64_t seed, const std::vector<ThreadPool*>& pools, std::vector<Result>* out) {
  Rng rng(seed);
  const int64_t pad = 3;
  AttentionParams p;
  p.Hq = c.Hq;
  p.Hkv = c.Hkv;
  p.D = c.D;
  p.Tq = c.Tq;
  p.Tk = c.Tk;
  p.causal = c.causal;
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.D));
  std::vector<AttentionSegment> segs = c.segs;
  p.segments = segs.data();
  p.n_segments = static_cast<int64_t>(segs.size());

  std::vector<float> qbuf, kbuf, vbuf;
  if (c.fused && c.Tq != c.Tk) {
    Result r;
    r.op = "attention";
    r.variant = "case";
    r.shape = describe(c);
    r.passed = false;
    r.note = "test bug: a fused qkv case needs Tq == Tk";
    out->push_back(r);
    return;
  }
  if (c.fused) {
    const int64_t ld = (c.Hq + 2 * c.Hkv) * c.D + pad;
    qbuf.resize(static_cast<size_t>(c.Tq * ld));
    for (float& x : qbuf) x = rng.normal() * c.magnitude;
    p.q = qbuf.data();
    p.k = qbuf.data() + c.Hq * c.D;
    p.v = qbuf.data() + (c.Hq + c.Hkv) * c.D;
    p.ldq = p.ldk = p.ldv = ld;
  } else if (c.kv_view) {
    p.ldq = c.Hq * c.D + 5;
    p.ldk = p.ldv = 2 * c.Hkv * c.D + pad;
    qbuf.resize(static_cast<size_t>(c.Tq * p.ldq));
    kbuf.resize(static_cast<size_t>(c.Tk * p.ldk));
    for (float& x : qbuf) x = rng.normal() * c.magnitude;
    for (float& x : kbuf) x = rng.normal() * c.magnitude;
    p.q = qbuf.data();
    p.k = kbuf.data();
    p.v = kbuf.data() + c.Hkv * c.D;
  } else {
    p.ldq = c.Hq * c.D;
    p.ldk = c.Hkv * c.D + pad;
    p.ldv = c.Hkv * c.D;
    qbuf.resize(static_cast<size_t>(c.Tq * p.ldq));
    kbuf.resize(static_cast<size_t>(c.Tk * p.ldk));
    vbuf.resize(static_cast<size_t>(c.Tk * p.ldv));
    for (float& x : qbuf) x = rng.normal() * c.magnitude;
    for (float& x : kbuf) x = rng.normal() * c.magnitude;
    for (float& x : vbuf) x = rng.normal();
    p.q = qbuf.data();
    p.k = kbuf.data();
    p.v = vbuf.data();
  }
  // Own buffers: copies of the segment's rows, whose originals become NaN, so a kernel that reads
  // p.k or p.v for such a segment cannot pass.
  std::vector<std::vector<float>> own;
  for (size_t i = 1; c.own_kv && !c.fused && !c.kv_view && i < segs.size(); i += 2) {
    AttentionSegment& g = segs[i];
    own.emplace_back(kbuf.begin(), kbuf.begin() + g.k_end * p.ldk);
    g.k = own.back().data();
    own.emplace_back(vbuf.begin(), vbuf.begin() + g.k_end * p.ldv);
    g.v = own.back().data();
    std::fill(kbuf.begin() + g.k_start * p.ldk, kbuf.begin() + g.k_end * p.ldk, std::nanf(""));
    std::fill(vbuf.begin() + g.k_start * p.ldv, vbuf.begin() + g.k_end * p.ldv, std::nanf(""));
  }
  // bf16 storage: each buffer k and v view, rounded, same layout (own-kv's NaN poison stays NaN).
  std::vector<std::vector<uint16_t>> halves;
  auto as_bf16 = [&](const std::vector<float>& buf, const void* view) -> const void* {
    if (!view) return nullptr;
    std::vector<uint16_t> h(buf.size());
    for (size_t i = 0; i < buf.size(); ++i) h[i] = f32_to_bf16(buf[i]);
    halves.push_back(std::move(h));  // moving keeps the data pointer
    return halves.back().data() + (static_cast<const float*>(view) - buf.data());
  };
  if (c.bf16_kv) {
    const std::vector<float>& kb = c.fused ? qbuf : kbuf;
    const std::vector<float>& vb = c.fused ? qbuf : c.kv_view ? kbuf : vbuf;
    p.k = as_bf16(kb, p.k);
    p.v = as_bf16(vb, p.v);
    for (AttentionSegment& g : segs) {
      for (const std::vector<float>& o : own) {
        if (g.k == o.data()) g.k = as_bf16(o, g.k);
        if (g.v == o.data()) g.v = as_bf16(o, g.v);
      }
    }
    p.kv_dtype = DType::BF16;
  }
  p.ldo = c.Hq * c.D + pad;
  const size_t n_out = static_cast<size_t>(c.Tq * p.ldo);

  const auto& family = ops::attention_family();
  Guarded<float> ref(n_out, kUntouched);
  AttentionParams pr = p;
  pr.out = ref.data();
  ops::check_attention(pr);
  family.reference().fn(pr, ExecContext(*pools[0]));

  for (const auto& v : family.runnable()) {
    if (v.isa == Isa::Reference) continue;
    std::vector<float> first;
    std::string same_bits;  // the first thread count whose bits differ from the first pool's
    for (ThreadPool* pool : pools) {
      Guarded<float> got(n_out, kUntouched);
      AttentionParams pv = p;
      pv.out = got.data();
      v.fn(pv, ExecContext(*pool));
      Result r;
      r.op = "attention";
      r.variant = v.name;
      r.device = device_name(v.device);
      r.shape = describe(c) + " threads=" + std::to_string(pool->size());
      compare(got.data(), ref.data(), n_out, tolerance(c), tolerance_floor(c), &r);
      r.guards_ok = got.intact() && ref.intact();
      out->push_back(r);
      if (first.empty()) first.assign(got.data(), got.data() + n_out);
      else if (same_bits.empty() && std::memcmp(first.data(), got.data(), n_out * sizeof(float)) != 0)
        same_bits = std::to_string(pool->size());
    }
    if (!decode_shaped(c)) continue;
    Result r;
    r.op = "attention";
    r.variant = v.name;
    r.device = device_name(v.device);
    r.shape = describe(c) + " same bits on every thread count";
    r.passed = same_bits.empty();
    if (!r.passed) r.note = "threads=" + same_bits + " differs from threads=" + std::to_string(pools[0]->size());
    out->push_back(r);
  }
}

// Segments that tile [0, T) with the given lengths (the same ranges for queries and keys).
std::vector<AttentionSegment> tiled(const std::vector<int64_t>& lens, int64_t* total) {
  std::vector<AttentionSegment> s;
  int64_t at = 0;
  for (int64_t n : lens) {
    s.push_back({at, at + n, at, at + n});
    at += n;
  }
  *total = at;
  return s;
}

std::vector<Case> cases(Rng& rng) {
  std::vector<Case> cs;
  int64_t T = 0;
  // Prefill, one segment, queries spanning several query blocks and key tiles.
  for (int64_t D : {16, 40, 64, 72, 80, 128, 20, 3}) {
    const int64_t n = 70 + rng.range(0, 90);
    auto segs = tiled({n}, &T);
    cs.push_back({"prefill T=" + std::to_string(n), 2, 1, D, true, segs, T, T, true});
  }
  // GQA ratios, causal and not, fused strides.
  for (auto hh : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {2, 1}, {7, 1}, {14, 2}, {3, 3}, {4, 2}}) {
    auto segs = tiled({129}, &T);
    cs.push_back({"prefill T=129", hh.first, hh.second, 40, true, segs, T, T, true});
    cs.push_back({"full T=129", hh.first, hh.second, 72, false, segs, T, T, false});
  }
  // Vision-style: many windows of odd, size-1 and empty lengths, non-causal.
  {
    auto segs = tiled({1, 0, 17, 64, 65, 0, 3, 100}, &T);
    cs.push_back({"windows", 4, 4, 80, false, segs, T, T, true});
    cs.push_back({"windows", 7, 1, 20, true, segs, T, T, false});
  }
  // Decode: one query against a cache (queries are the last positions of the segment's keys).
  // (Long caches also take the split-K path: key chunks merged afterwards.)
  for (int64_t klen : {1, 2, 63, 64, 65, 300, 700, 1500}) {
    std::vector<AttentionSegment> segs{{0, 1, 0, klen}};
    cs.push_back({"decode klen=" + std::to_string(klen), 7, 1, 128, true, segs, 1, klen, false});
    cs.push_back({"decode klen=" + std::to_string(klen), 2, 2, 64, true, segs, 1, klen, false});
  }
  // Decode at the Qwen shapes (GQA ratios 1, 6, 7; D 64, 80, 128) against caches of 1, 17, 513 and
  // 4099 keys (one, three and seventeen decode chunks, with tile tails), with 1, 2 and 3 new query
  // rows (3 rows at ratio 6 is past the decode path: the two must agree), cache rows as strided
  // views into an interleaved k/v buffer.
  for (auto hd : std::vector<std::array<int64_t, 3>>{{3, 3, 80}, {12, 2, 128}, {14, 2, 64}, {7, 1, 128}}) {
    for (int64_t klen : {1, 17, 513, 4099}) {
      for (int64_t qlen : {1, 2, 3}) {
        if (qlen > klen) continue;
        std::vector<AttentionSegment> segs{{0, qlen, 0, klen}};
        Case c{"decode q=" + std::to_string(qlen) + " klen=" + std::to_string(klen), hd[0], hd[1], hd[2], true, segs, qlen, klen, false};
        c.kv_view = true;
        cs.push_back(c);
      }
    }
  }
  // Every row count the row-major decode kernels instantiate (1-8 query heads per kv head; the
  // Qwen releases use 2, 4, 5, 6, 7 and 8) at the head sizes with unrolled kernels (64, 128) and
  // one without (96), over three chunks.
  for (int64_t G = 1; G <= 8; ++G) {
    for (int64_t D : {64, 128, 96}) {
      std::vector<AttentionSegment> segs{{0, 1, 0, 515}};
      cs.push_back({"decode rows=" + std::to_string(G) + " klen=515", 2 * G, 2, D, true, segs, 1, 515, false});
    }
  }
  // Batched decode as the model steps it: several sequences of different cache lengths (left
  // padding skipped, gaps between caches), one or two new rows each, in one call.
  {
    std::vector<AttentionSegment> segs{{0, 1, 0, 513}, {1, 2, 600, 617}, {2, 3, 700, 701}, {3, 5, 800, 800 + 4099}, {5, 6, 4899, 4899 + 1}};
    Case c{"batched decode", 12, 2, 128, true, segs, 6, 4900, false};
    c.kv_view = true;
    cs.push_back(c);
    cs.push_back({"batched decode", 7, 7, 80, true, segs, 6, 4900, false});
    // As the KV pool holds them: each sequence's cache its own buffer (every other one here).
    Case own{"batched decode", 12, 2, 128, true, segs, 6, 4900, false};
    own.own_kv = true;
    cs.push_back(own);
    // Prefill-shaped segments with their own buffers too (the tiled path).
    Case pre{"chunks", 4, 2, 72, true, {{0, 37, 0, 150}, {37, 37 + 80, 150, 150 + 81}, {117, 118, 231, 300}}, 118, 300, false};
    pre.own_kv = true;
    cs.push_back(pre);
  }
  // A sharp softmax over many decode chunks: the merge's rescaling by each chunk's max.
  {
    Case c{"sharp decode klen=1500", 12, 2, 64, true, {{0, 1, 0, 1500}}, 1, 1500, false};
    c.magnitude = 4;
    cs.push_back(c);
  }
  // Decode-shaped rows with no keys at all (non-causal) next to ones with keys: zeros.
  cs.push_back({"decode no keys", 6, 2, 64, false, {{0, 1, 5, 5}, {1, 2, 0, 300}, {2, 4, 300, 301}}, 4, 301, false});
  // Batched decode: each batch row its own segment, its own cache length (left padding skipped).
  {
    std::vector<AttentionSegment> segs{{0, 1, 5, 40}, {1, 2, 50, 51}, {2, 3, 60, 200}, {3, 4, 200, 200 + 77}};
    cs.push_back({"batch decode", 14, 2, 64, true, segs, 4, 277, false});
  }
  // Chunked prefill: qlen < klen, causal.
  {
    std::vector<AttentionSegment> segs{{0, 37, 0, 150}, {37, 37 + 80, 150, 150 + 81}};
    cs.push_back({"chunked", 4, 2, 72, true, segs, 117, 231, false});
    cs.push_back({"cross qlen<klen", 4, 2, 72, false, segs, 117, 231, false});
  }
  // Small causal chunks (few rows per item: the row-major decode path) with per-row key limits.
  {
    std::vector<AttentionSegment> segs{{0, 3, 0, 150}, {3, 7, 150, 150 + 70}, {7, 8, 220, 220 + 9}, {8, 13, 229, 234}};
    cs.push_back({"small chunks", 4, 2, 72, true, segs, 13, 234, false});
    cs.push_back({"small chunks", 7, 7, 33, true, segs, 13, 234, false});
    cs.push_back({"small chunks", 2, 1, 16, true, segs, 13, 234, false});
  }
  // Non-causal with more queries than keys, and a query range with no keys (outputs zeros).
  {
    std::vector<AttentionSegment> segs{{0, 50, 0, 7}, {50, 60, 7, 7}, {70, 71, 7, 20}};
    cs.push_back({"few keys, no keys, gaps", 2, 1, 16, false, segs, 80, 20, false});
  }
  // Causal prefill long enough that, with many threads, early query blocks get key chunks they
  // cannot see at all.
  {
    auto segs = tiled({600}, &T);
    cs.push_back({"prefill T=600", 1, 1, 24, true, segs, T, T, false});
    cs.push_back({"prefill+decode", 8, 1, 24, true, {{0, 2, 0, 601}}, 2, 601, false});
  }
  // Sharp softmax: large scores exercise the running-max rescaling.
  {
    auto segs = tiled({150}, &T);
    Case c{"sharp", 2, 1, 64, true, segs, T, T, false};
    c.magnitude = 4;
    cs.push_back(c);
  }
  // Tq = 1, Tk = 1.
  {
    auto segs = tiled({1}, &T);
    cs.push_back({"T=1", 3, 1, 5, true, segs, 1, 1, false});
  }
  // No segments at all: nothing may be written.
  cs.push_back({"no segments", 2, 1, 8, false, {}, 4, 4, false});
  // bf16 twins (a bf16 KV cache) of every case but the Qwen-shape decode grid's middle lengths:
  // prefill, GQA, windows, decode chunks, batched and own-buffer decode, small chunks, sharp.
  const size_t n = cs.size();
  for (size_t i = 0; i < n; ++i) {
    if (cs[i].name.rfind("decode q=", 0) == 0 && cs[i].name.find("klen=17") == std::string::npos &&
        cs[i].name.find("klen=4099") == std::string::npos)
      continue;
    Case b = cs[i];
    b.bf16_kv = true;
    cs.push_back(b);
  }
  return cs;
}

// The checked entry point must refuse every inconsistent description with E_INPUT.
void check_rejects(std::vector<Result>* out) {
  std::vector<float> buf(64 * 64, 0.0f);
  std::vector<AttentionSegment> seg{{0, 4, 0, 4}};
  AttentionParams good;
  good.q = buf.data();
  good.k = good.v = buf.data();
  good.out = buf.data();
  good.Hq = 4;
  good.Hkv = 2;
  good.D = 8;
  good.ldq = good.ldo = 32;
  good.ldk = good.ldv = 16;
  good.Tq = good.Tk = 8;
  good.scale = 0.3f;
  good.causal = true;
  good.segments = seg.data();
  good.n_segments = 1;

  struct Bad {
    const char* what;
    void (*edit)(AttentionParams&, std::vector<AttentionSegment>&);
  };
  const Bad bads[] = {
      {"Hq % Hkv != 0", [](AttentionParams& p, std::vector<AttentionSegment>&) { p.Hkv = 3; }},
      {"D = 0", [](AttentionParams& p, std::vector<AttentionSegment>&) { p.D = 0; }},
      {"ldq < Hq*D", [](AttentionParams& p, std::vector<AttentionSegment>&) { p.ldq = 31; }},
      {"ldk < Hkv*D", [](AttentionParams& p, std::vector<AttentionSegment>&) { p.ldk = 15; }},
      {"ldv < Hkv*D", [](AttentionParams& p, std::vector<AttentionSegment>&) { p.ldv = 0; }},
      {"ldo < Hq*D", [](AttentionParams& p, std::vector<AttentionSegment>&) { p.ldo = 8; }},
      {"q_end > Tq", [](AttentionParams&, std::vector<AttentionSegment>& s) { s[0].q_end = 9; }},
      {"q_end < q_start", [](AttentionParams&, std::vector<AttentionSegment>& s) { s[0] = {3, 2, 0, 4}; }},
      {"k_start < 0", [](AttentionParams&, std::vector<AttentionSegment>& s) { s[0].k_start = -1; }},
      {"k_end > Tk", [](AttentionParams&, std::vector<AttentionSegment>& s) { s[0].k_end = 9; }},
      {"causal klen < qlen", [](AttentionParams&, std::vector<AttentionSegment>& s) { s[0].k_end = 3; }},
      {"overlapping queries",
       [](AttentionParams& p, std::vector<AttentionSegment>& s) {
         s.push_back({3, 5, 4, 8});
         p.n_segments = 2;
       }},
      {"null segments", [](AttentionParams& p, std::vector<AttentionSegment>&) { p.segments = nullptr; }},
      {"null q", [](AttentionParams& p, std::vector<AttentionSegment>&) { p.q = nullptr; }},
      {"negative Tk", [](AttentionParams& p, std::vector<AttentionSegment>&) { p.Tk = -1; }},
      {"scale NaN", [](AttentionParams& p, std::vector<AttentionSegment>&) { p.scale = std::nanf(""); }},
      {"null k with keys", [](AttentionParams& p, std::vector<AttentionSegment>&) { p.k = nullptr; }},
      {"segment k without v", [](AttentionParams& p, std::vector<AttentionSegment>& s) { s[0].k = p.q; }},
      {"f16 keys and values", [](AttentionParams& p, std::vector<AttentionSegment>&) { p.kv_dtype = DType::F16; }},
      {"i32 keys and values", [](AttentionParams& p, std::vector<AttentionSegment>&) { p.kv_dtype = DType::I32; }},
  };
  Result ok;
  ok.op = "attention";
  ok.variant = "check";
  ok.shape = "accepts a valid description";
  try {
    ops::check_attention(good);
  } catch (const Error& e) {
    ok.passed = false;
    ok.note = e.what();
  }
  out->push_back(ok);
  for (const Bad& b : bads) {
    std::vector<AttentionSegment> s = seg;
    AttentionParams p = good;
    p.segments = s.data();
    b.edit(p, s);
    if (p.segments) p.segments = s.data();
    Result r;
    r.op = "attention";
    r.variant = "check";
    r.shape = std::string("rejects ") + b.what;
    r.passed = false;
    r.note = "accepted";
    try {
      ops::check_attention(p);
    } catch (const Error& e) {
      r.passed = e.code() == ErrorCode::Input;
      r.note = r.passed ? "" : "wrong error code";
    }
    out->push_back(r);
  }
}

// A set cancel token: the checked entry point throws the token's reason, and the tiled variants stop
// before their first work item (no output row written), which is what bounds a cancelled prefill's
// wait to one work item instead of the whole call.
void check_cancel(ThreadPool& pool, std::vector<Result>* out) {
  const int64_t T = 300, Hq = 4, Hkv = 2, D = 16;
  Rng rng(7);
  std::vector<float> q(T * Hq * D), k(T * Hkv * D), v(T * Hkv * D);
  for (float& x : q) x = rng.normal();
  for (float& x : k) x = rng.normal();
  for (float& x : v) x = rng.normal();
  std::vector<AttentionSegment> seg{{0, T, 0, T}};
  AttentionParams p;
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.ldq = p.ldo = Hq * D;
  p.ldk = p.ldv = Hkv * D;
  p.Tq = p.Tk = T;
  p.Hq = Hq;
  p.Hkv = Hkv;
  p.D = D;
  p.scale = 0.25f;
  p.causal = true;
  p.segments = seg.data();
  p.n_segments = 1;
  CancelToken aborted, disposed;
  aborted.cancel(CancelToken::Reason::Aborted);
  disposed.cancel(CancelToken::Reason::Disposed);
  Guarded<float> sink(static_cast<size_t>(T * Hq * D), kUntouched);
  p.out = sink.data();
  p.cancel = &aborted;
  out->push_back(expect_rejected("attention", "aborted token: E_ABORTED", [&] { ops::attention(p, ExecContext(pool)); }, ErrorCode::Aborted));
  p.cancel = &disposed;
  out->push_back(expect_rejected("attention", "disposed token: E_DISPOSED", [&] { ops::attention(p, ExecContext(pool)); }, ErrorCode::Disposed));
  for (const auto& var : ops::attention_family().runnable()) {
    if (var.isa == Isa::Reference) continue;
    Guarded<float> got(static_cast<size_t>(T * Hq * D), kUntouched);
    AttentionParams pv = p;
    pv.out = got.data();
    pv.cancel = &aborted;
    var.fn(pv, ExecContext(pool));
    Result r;
    r.op = "attention";
    r.variant = var.name;
    r.device = device_name(var.device);
    r.shape = "cancelled before the first work item threads=" + std::to_string(pool.size());
    r.passed = true;
    for (size_t i = 0; i < got.size(); ++i) {
      if (got.data()[i] != kUntouched) {
        r.passed = false;
        r.note = "wrote output row " + std::to_string(i / (Hq * D)) + " after the token was set";
        break;
      }
    }
    r.guards_ok = got.intact();
    out->push_back(r);
  }
}

}  // namespace

std::vector<Result> parity_attention(uint64_t seed) {
  std::vector<Result> out;
  Rng rng(seed);
  uint64_t n = 0;
  // Three pool sizes: the number of threads decides how prefill work is split (split-K when few
  // items), and must not change a decode result's bits.
  ThreadPool one(1), two(2), seven(7);
  for (const Case& c : cases(rng)) {
    ++n;
    run_case(c, seed * 1000003 + n, {&one, &two, &seven}, &out);
  }
  check_rejects(&out);
  check_cancel(two, &out);
  check_cancel(seven, &out);
  return out;
}

}  // namespace qvl::parity
