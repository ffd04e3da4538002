// unpack_quant parity: every variant must give the reference's codes, scales, zero points and
// status exactly, for AWQ GEMM, GPTQ 4/8-bit (classic and v2 zero points, act-order permutations)
// and FP8 block scales, on random words over awkward sizes (one group, a single 8-column word,
// block_out not dividing out), scales in f32, bf16 and f16, pools of 1 and 3 threads. Hand-built
// words pin the layouts themselves (AWQ's nibble order, GPTQ's packing along the input), and
// act_order_columns is checked against std::stable_sort.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/unpack_quant.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

using ops::QuantPacking;

struct Case {
  QuantPacking packing;
  int64_t bits, out, in, group, groups;
  int64_t block_out = 1, zero_offset = 0;
  DType scales_dtype = DType::F32;
  bool perm = false;
  uint32_t zero_mask = 0xffffffffu;  // applied to the random qzeros words (to make fitting zeros)
  uint32_t zero_or = 0;
};

// The case's inputs, with random words and scales.
struct Inputs {
  std::vector<uint32_t> qweight, qzeros;
  std::vector<int32_t> perm;
  std::vector<unsigned char> scales;
};

Inputs random_inputs(const Case& c, Rng& rng) {
  Inputs in;
  const int64_t scale_rows = c.packing == QuantPacking::Fp8Blocks ? (c.out + c.block_out - 1) / c.block_out : c.groups;
  const int64_t scale_cols = c.packing == QuantPacking::Fp8Blocks ? c.groups : c.out;
  in.scales.resize(static_cast<size_t>(scale_rows * scale_cols) * dtype_size(c.scales_dtype));
  for (auto& b : in.scales) b = static_cast<unsigned char>(rng.next());
  if (c.packing == QuantPacking::Fp8Blocks) return in;
  const int64_t per = 32 / c.bits;
  const bool awq = c.packing == QuantPacking::AwqGemm;
  in.qweight.resize(static_cast<size_t>(awq ? c.in * (c.out / 8) : (c.in / per) * c.out));
  for (auto& w : in.qweight) w = static_cast<uint32_t>(rng.next());
  in.qzeros.resize(static_cast<size_t>(c.groups * (c.out / (awq ? 8 : per))));
  for (auto& w : in.qzeros) w = (static_cast<uint32_t>(rng.next()) & c.zero_mask) | c.zero_or;
  if (c.perm) {
    in.perm.resize(static_cast<size_t>(c.in));
    std::iota(in.perm.begin(), in.perm.end(), 0);
    for (int64_t i = c.in - 1; i > 0; --i) std::swap(in.perm[static_cast<size_t>(i)], in.perm[static_cast<size_t>(rng.range(0, i))]);
  }
  return in;
}

// Outputs in guarded buffers, codes and zeros starting as 0xa5, scales as the unwritten NaN.
struct Outputs {
  Guarded<uint8_t> codes, zeros;
  Guarded<float> scales;
  ops::UnpackQuantStatus status;
  Outputs(const Case& c)
      : codes(c.packing == QuantPacking::Fp8Blocks ? 0 : static_cast<size_t>(c.out * c.in), 0xa5),
        zeros(c.packing != QuantPacking::Fp8Blocks && c.bits == 4 ? static_cast<size_t>(c.out * c.groups) : 0, 0xa5),
        scales(static_cast<size_t>(c.out * c.groups), unwritten()) {}
  bool intact() const { return codes.intact() && zeros.intact() && scales.intact(); }
};

ops::UnpackQuantParams params(const Case& c, const Inputs& in, Outputs& o) {
  ops::UnpackQuantParams p;
  p.packing = c.packing, p.bits = c.bits, p.out = c.out, p.in = c.in, p.group = c.group, p.groups = c.groups;
  p.block_out = c.block_out, p.zero_offset = c.zero_offset;
  p.qweight = in.qweight.empty() ? nullptr : in.qweight.data();
  p.qzeros = in.qzeros.empty() ? nullptr : in.qzeros.data();
  p.perm = in.perm.empty() ? nullptr : in.perm.data();
  p.scales = in.scales.data(), p.scales_dtype = c.scales_dtype;
  p.codes = o.codes.size() ? o.codes.data() : nullptr;
  p.zeros = o.zeros.size() ? o.zeros.data() : nullptr;
  p.row_scales = o.scales.data();
  return p;
}

std::string describe(const Case& c) {
  const char* kind = c.packing == QuantPacking::AwqGemm ? "awq" : c.packing == QuantPacking::Gptq ? "gptq" : "fp8";
  std::string s = std::string(kind) + " out=" + std::to_string(c.out) + " in=" + std::to_string(c.in) + " groups=" +
                  std::to_string(c.groups);
  if (c.packing != QuantPacking::Fp8Blocks) s += " bits=" + std::to_string(c.bits) + " " + dtype_name(c.scales_dtype);
  if (c.packing == QuantPacking::Fp8Blocks) s += " block_out=" + std::to_string(c.block_out) + " " + dtype_name(c.scales_dtype);
  if (c.zero_offset) s += " zero+1";
  if (c.perm) s += " perm";
  return s;
}

bool same_bytes(const void* a, const void* b, size_t n) { return n == 0 || std::memcmp(a, b, n) == 0; }

void unpack_case(const Case& c, Rng& rng, ThreadPool& one, ThreadPool& three, std::vector<Result>* results) {
  const auto& family = ops::unpack_quant_family();
  const Inputs in = random_inputs(c, rng);
  Outputs want(c);
  want.status = family.reference().fn(params(c, in, want), ExecContext(one));
  for (const auto& v : family.runnable()) {
    for (ThreadPool* pool : {&one, &three}) {
      Result r = variant_case("unpack_quant", v, describe(c) + " threads=" + std::to_string(pool->size()));
      Outputs got(c);
      run_case(r, [&] { got.status = v.fn(params(c, in, got), ExecContext(*pool)); });
      if (!r.passed) {
        results->push_back(r);
        continue;
      }
      r.guards_ok = got.intact();
      const bool codes = same_bytes(got.codes.data(), want.codes.data(), want.codes.size());
      const bool zeros = same_bytes(got.zeros.data(), want.zeros.data(), want.zeros.size());
      const bool scales = same_bytes(got.scales.data(), want.scales.data(), want.scales.size() * sizeof(float));
      const bool status = got.status.index == want.status.index && got.status.zero == want.status.zero;
      r.passed = r.guards_ok && codes && zeros && scales && status;
      if (!r.passed)
        r.note = !r.guards_ok ? "wrote outside its outputs"
                 : !codes     ? "codes differ from the reference"
                 : !zeros     ? "zero points differ from the reference"
                 : !scales    ? "scales differ from the reference"
                              : "status " + std::to_string(got.status.index) + "/" + std::to_string(got.status.zero) +
                                 ", reference " + std::to_string(want.status.index) + "/" + std::to_string(want.status.zero);
      results->push_back(r);
    }
  }
}

// Hand-built words whose unpacked values are known: the layouts, not just agreement.
void known_answers(ThreadPool& pool, std::vector<Result>* results) {
  const auto& family = ops::unpack_quant_family();
  for (const auto& v : family.runnable()) {
    // AWQ: word 0x76543210 holds value p in nibble p, and nibble p is column 0,2,4,6,1,3,5,7[p].
    {
      Result r = variant_case("unpack_quant", v, "known: awq nibble order");
      const uint32_t qw = 0x76543210u, qz = 0x01234567u;
      const float s[8] = {1, 2, 3, 4, 5, 6, 7, 8};
      uint8_t codes[8] = {}, zeros[8] = {};
      float rs[8] = {};
      ops::UnpackQuantParams p;
      p.packing = QuantPacking::AwqGemm, p.bits = 4, p.out = 8, p.in = 1, p.group = 1, p.groups = 1;
      p.qweight = &qw, p.qzeros = &qz, p.scales = s, p.codes = codes, p.zeros = zeros, p.row_scales = rs;
      run_case(r, [&] { v.fn(p, ExecContext(pool)); });
      const uint8_t want_q[8] = {0, 4, 1, 5, 2, 6, 3, 7}, want_z[8] = {7, 3, 6, 2, 5, 1, 4, 0};
      r.passed = r.passed && std::memcmp(codes, want_q, 8) == 0 && std::memcmp(zeros, want_z, 8) == 0 &&
                 std::memcmp(rs, s, sizeof(s)) == 0;
      if (!r.passed && r.note.empty()) r.note = "wrong values";
      results->push_back(r);
    }
    // GPTQ 4-bit: input channel i of row n is nibble i of word (i / 8, n); column j reads perm[j];
    // zero points pack along the output, + 1 in the classic format.
    {
      Result r = variant_case("unpack_quant", v, "known: gptq packing, perm, zero+1");
      std::vector<uint32_t> qw(8, 0);
      qw[0] = 0x76543210u, qw[3] = 0xfedcba98u;
      const uint32_t qz = 0x6543210eu;
      std::vector<float> s(8);
      std::iota(s.begin(), s.end(), 1.0f);
      const int32_t perm[8] = {7, 6, 5, 4, 3, 2, 1, 0};
      uint8_t codes[64] = {}, zeros[8] = {};
      float rs[8] = {};
      ops::UnpackQuantParams p;
      p.packing = QuantPacking::Gptq, p.bits = 4, p.out = 8, p.in = 8, p.group = 8, p.groups = 1, p.zero_offset = 1;
      p.qweight = qw.data(), p.qzeros = &qz, p.perm = perm, p.scales = s.data(), p.codes = codes, p.zeros = zeros,
      p.row_scales = rs;
      ops::UnpackQuantStatus st;
      run_case(r, [&] { st = v.fn(p, ExecContext(pool)); });
      bool ok = true;
      for (int j = 0; j < 8; ++j) ok = ok && codes[j] == 7 - j && codes[3 * 8 + j] == 15 - j && codes[8 + j] == 0;
      const uint8_t want_z[8] = {15, 1, 2, 3, 4, 5, 6, 7};
      ok = ok && std::memcmp(zeros, want_z, 8) == 0 && st.index < 0;
      r.passed = r.passed && ok;
      if (!r.passed && r.note.empty()) r.note = "wrong values";
      results->push_back(r);
    }
  }
}

Result act_order_case(Rng& rng) {
  Result r;
  r.op = "unpack_quant", r.variant = "check", r.shape = "act_order_columns against std::stable_sort";
  for (int64_t in : {int64_t{16}, int64_t{96}, int64_t{100}}) {
    const int64_t group = 16, groups = (in + group - 1) / group;
    std::vector<int32_t> g(static_cast<size_t>(in));
    for (int64_t i = 0; i < in; ++i) g[static_cast<size_t>(i)] = static_cast<int32_t>(i / group);
    for (int64_t i = in - 1; i > 0; --i) std::swap(g[static_cast<size_t>(i)], g[static_cast<size_t>(rng.range(0, i))]);
    std::vector<int32_t> want(static_cast<size_t>(in)), got(static_cast<size_t>(in));
    std::iota(want.begin(), want.end(), 0);
    std::stable_sort(want.begin(), want.end(), [&](int32_t a, int32_t b) { return g[static_cast<size_t>(a)] < g[static_cast<size_t>(b)]; });
    std::vector<int32_t> identity(static_cast<size_t>(in));
    std::iota(identity.begin(), identity.end(), 0);
    ops::ActOrderStatus s = ops::act_order_columns(g.data(), in, group, groups, got.data());
    bool ok = s.kind == ops::ActOrderStatus::Ok && got == want && s.identity == (want == identity);
    s = ops::act_order_columns(nullptr, in, group, groups, got.data());
    ok = ok && s.kind == ops::ActOrderStatus::Ok && s.identity && got[static_cast<size_t>(in - 1)] == in - 1;
    std::vector<int32_t> bad = g;
    bad[5] = static_cast<int32_t>(groups);
    s = ops::act_order_columns(bad.data(), in, group, groups, got.data());
    ok = ok && s.kind == ops::ActOrderStatus::OutOfRange && s.at == 5 && s.value == groups;
    bad = g;
    // One channel moved from the group of channel 0 to another: that group holds group − 1.
    const int32_t from = bad[0];
    bad[0] = (from + 1) % static_cast<int32_t>(groups);
    s = ops::act_order_columns(bad.data(), in, group, groups, got.data());
    ok = ok && (groups == 1 ? s.kind == ops::ActOrderStatus::Ok : s.kind == ops::ActOrderStatus::UnequalGroup);
    if (!ok) {
      r.passed = false;
      r.note = "in=" + std::to_string(in) + ": wrong order or status";
      return r;
    }
  }
  return r;
}

}  // namespace

std::vector<Result> parity_unpack_quant(uint64_t seed) {
  Rng rng(seed);
  ThreadPool one(1), three(3);
  std::vector<Result> results;
  const QuantPacking A = QuantPacking::AwqGemm, G = QuantPacking::Gptq, F = QuantPacking::Fp8Blocks;
  std::vector<Case> cases = {
      {A, 4, 8, 3, 1, 3},
      {A, 4, 24, 48, 16, 3, 1, 0, DType::F16},
      {A, 4, 40, 96, 32, 3, 1, 0, DType::BF16},
      {A, 4, 56, 112, 112, 1, 1, 0, DType::F16},
      {G, 4, 8, 8, 8, 1},
      {G, 4, 24, 48, 16, 3, 1, 1, DType::F16},
      {G, 4, 24, 48, 16, 3, 1, 1, DType::F16, true, 0x77777777u},  // classic zeros that all fit
      {G, 4, 40, 64, 32, 2, 1, 0, DType::BF16, true},
      {G, 4, 16, 96, 96, 1, 1, 1, DType::F32, false, 0xeeeeeeeeu},
      {G, 8, 12, 20, 4, 5, 1, 1, DType::F16},
      {G, 8, 12, 20, 4, 5, 1, 1, DType::F16, true, 0, 0x7f7f7f7fu},  // zeros 127 + 1: symmetric
      {G, 8, 36, 64, 16, 4, 1, 0, DType::BF16, false, 0, 0x80808080u},
      {F, 0, 37, 300, 0, 3, 16},
      {F, 0, 5, 128, 0, 1, 128},
      {F, 0, 130, 256, 0, 2, 1},
      {F, 0, 37, 300, 0, 3, 16, 0, DType::BF16},  // Qwen's own FP8 releases store bf16 or f16 scales
      {F, 0, 130, 256, 0, 2, 1, 0, DType::F16},
  };
  for (const Case& c : cases) unpack_case(c, rng, one, three, &results);
  known_answers(three, &results);
  results.push_back(act_order_case(rng));
  const auto rejected = [&](const std::string& what, auto&& edit) {
    results.push_back(expect_rejected("unpack_quant", what, [&] {
      std::vector<uint32_t> qw(64), qz(8);
      std::vector<float> s(64), rs(64);
      std::vector<uint8_t> codes(512), zeros(64);
      ops::UnpackQuantParams p;
      p.packing = QuantPacking::AwqGemm, p.bits = 4, p.out = 8, p.in = 16, p.group = 8, p.groups = 2;
      p.qweight = qw.data(), p.qzeros = qz.data(), p.scales = s.data(), p.codes = codes.data(), p.zeros = zeros.data();
      p.row_scales = rs.data();
      std::vector<int32_t> perm(16);
      std::iota(perm.begin(), perm.end(), 0);
      edit(p, perm);
      ops::check_unpack_quant(p);
    }));
  };
  results.push_back(expect_accepted("unpack_quant", "valid awq and gptq problems accepted", [] {
    std::vector<uint32_t> qw(64), qz(8);
    std::vector<float> s(64), rs(64);
    std::vector<uint8_t> codes(512), zeros(64);
    std::vector<int32_t> perm(16);
    std::iota(perm.rbegin(), perm.rend(), 0);
    ops::UnpackQuantParams p;
    p.packing = QuantPacking::AwqGemm, p.bits = 4, p.out = 8, p.in = 16, p.group = 8, p.groups = 2;
    p.qweight = qw.data(), p.qzeros = qz.data(), p.scales = s.data(), p.codes = codes.data(), p.zeros = zeros.data();
    p.row_scales = rs.data();
    ops::check_unpack_quant(p);
    p.packing = QuantPacking::Gptq, p.zero_offset = 1, p.perm = perm.data();
    ops::check_unpack_quant(p);
  }));
  using P = ops::UnpackQuantParams;
  using V = std::vector<int32_t>;
  rejected("awq with 8 bits", [](P& p, V&) { p.bits = 8, p.zeros = nullptr; });
  rejected("awq out not a multiple of 8", [](P& p, V&) { p.out = 4; });
  rejected("group not dividing in", [](P& p, V&) { p.group = 5, p.groups = 4; });
  rejected("groups disagreeing with group", [](P& p, V&) { p.groups = 3; });
  rejected("f8 scales dtype", [](P& p, V&) { p.scales_dtype = DType::F8E4M3; });
  rejected("null codes", [](P& p, V&) { p.codes = nullptr; });
  rejected("gptq perm repeating a channel", [](P& p, V& perm) { p.packing = QuantPacking::Gptq, perm[3] = 2, p.perm = perm.data(); });
  rejected("gptq perm out of range", [](P& p, V& perm) { p.packing = QuantPacking::Gptq, perm[0] = 16, p.perm = perm.data(); });
  rejected("gptq zero offset 2", [](P& p, V&) { p.packing = QuantPacking::Gptq, p.zero_offset = 2; });
  rejected("gptq 8-bit with zero points", [](P& p, V&) { p.packing = QuantPacking::Gptq, p.bits = 8; });
  rejected("fp8 blocks with i32 scales", [](P& p, V&) {
    p.packing = QuantPacking::Fp8Blocks, p.qweight = nullptr, p.qzeros = nullptr, p.codes = nullptr, p.zeros = nullptr;
    p.scales_dtype = DType::I32;
  });
  rejected("fp8 blocks with codes", [](P& p, V&) { p.packing = QuantPacking::Fp8Blocks, p.qweight = nullptr, p.qzeros = nullptr; });
  return results;
}

}  // namespace qvl::parity
