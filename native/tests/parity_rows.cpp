// rows parity: every variant of every kind against the reference, bit for bit (moves are copies
// and adds one float32 rounding per element). Awkward row lengths around the 8-lane and 32-float
// steps, padded strides whose padding must stay unwritten, i32 and i64 indexes with -1 entries,
// first and last rows, repeats (Gather, AddIndexed) and partial permutations (Scatter). The
// checks must reject a bad index, a repeated Scatter target, overlap and bad sizes before
// writing anything.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "ops/rows.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

using ops::RowsKind;
using ops::RowsParams;

struct Case {
  RowsKind kind;
  int64_t n, cols, indexed_rows, pad;
  DType idx;
};

std::string describe(const Case& c) {
  return std::string(ops::rows_kind_name(c.kind)) + " n=" + std::to_string(c.n) + " cols=" + std::to_string(c.cols) +
         (c.kind == RowsKind::Add ? "" : " indexed=" + std::to_string(c.indexed_rows) + " idx=" + dtype_name(c.idx)) +
         (c.pad ? " strided" : "");
}

int64_t dst_rows(const Case& c) { return c.kind == RowsKind::Scatter ? c.indexed_rows : c.n; }
int64_t src_rows(const Case& c) {
  return c.kind == RowsKind::Gather || c.kind == RowsKind::AddIndexed ? c.indexed_rows : c.n;
}

// Indexes with -1 holes, the first and last row, and (except for Scatter) repeats; Scatter gets
// distinct targets from a shuffled range.
std::vector<int64_t> make_index(const Case& c, Rng& rng) {
  std::vector<int64_t> idx(static_cast<size_t>(c.n), -1);
  if (c.kind == RowsKind::Add || c.indexed_rows == 0) return idx;
  if (c.kind == RowsKind::Scatter) {
    std::vector<int64_t> perm(static_cast<size_t>(c.indexed_rows));
    for (int64_t i = 0; i < c.indexed_rows; ++i) perm[static_cast<size_t>(i)] = i;
    for (int64_t i = c.indexed_rows - 1; i > 0; --i) std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(rng.range(0, i))]);
    for (int64_t i = 0; i < c.n && i < c.indexed_rows; ++i) idx[static_cast<size_t>(i)] = rng.range(0, 4) == 0 ? -1 : perm[static_cast<size_t>(i)];
    return idx;
  }
  for (int64_t i = 0; i < c.n; ++i) {
    switch (i % 5) {
      case 0: idx[static_cast<size_t>(i)] = 0; break;
      case 1: idx[static_cast<size_t>(i)] = c.indexed_rows - 1; break;
      case 2: idx[static_cast<size_t>(i)] = -1; break;
      default: idx[static_cast<size_t>(i)] = rng.range(0, c.indexed_rows - 1); break;
    }
  }
  return idx;
}

struct Index {
  std::vector<int32_t> i32;
  std::vector<int64_t> i64;
  Index(const std::vector<int64_t>& v, DType t) {
    if (t == DType::I32) i32.assign(v.begin(), v.end());
    else i64 = v;
  }
  const void* ptr(DType t) const { return t == DType::I32 ? static_cast<const void*>(i32.data()) : i64.data(); }
};

std::vector<Case> cases() {
  std::vector<Case> out;
  const int64_t cols[] = {1, 3, 7, 8, 9, 31, 32, 33, 65, 100, 1000, 1536 + 5};
  const RowsKind kinds[] = {RowsKind::Add, RowsKind::Gather, RowsKind::Scatter, RowsKind::AddIndexed};
  int i = 0;
  for (RowsKind k : kinds) {
    for (int64_t c : cols) {
      for (int w = 0; w < 2; ++w, ++i) {
        const int64_t n = 1 + (i * 7) % 23;
        const int64_t indexed = k == RowsKind::Scatter ? n + (i % 3) : 1 + (i * 5) % 17;
        out.push_back({k, n, c, indexed, (i % 3 == 0) ? 0 : 1 + i % 4, w ? DType::I64 : DType::I32});
      }
    }
    out.push_back({k, 300, 896 + 3, k == RowsKind::Scatter ? 400 : 257, 0, DType::I64});  // threaded
    out.push_back({k, 2, 1 << 15, k == RowsKind::Scatter ? 3 : 2, 7, DType::I32});        // long rows, one per task
    out.push_back({k, 0, 5, 3, 0, DType::I32});                                             // nothing to do
  }
  out.push_back({RowsKind::Gather, 9, 16, 0, 0, DType::I32});  // every index -1 over an empty source
  return out;
}

Result expect_reject(const std::string& what, const RowsParams& p, const std::string& must_mention,
                     Guarded<float>* dst) {
  Result r;
  r.op = "rows", r.variant = "check", r.shape = what;
  std::vector<float> before(dst->data(), dst->data() + dst->size());
  try {
    ops::rows(p, ExecContext(*default_pool()));
    r.passed = false, r.note = "accepted";
  } catch (const Error& e) {
    r.passed = e.code() == ErrorCode::Input && std::string(e.what()).find(must_mention) != std::string::npos;
    if (!r.passed) r.note = std::string("wrong error: ") + e.what();
  }
  const bool untouched = dst->intact() && std::memcmp(before.data(), dst->data(), before.size() * 4) == 0;
  r.guards_ok = untouched;
  if (!untouched) r.note = "wrote before rejecting";
  return r;
}

std::vector<Result> check_cases(Rng& rng) {
  std::vector<Result> res;
  std::vector<float> src(6 * 4);
  for (auto& v : src) v = rng.normal();
  Guarded<float> dst(5 * 4);
  for (size_t i = 0; i < dst.size(); ++i) dst[i] = rng.normal();
  RowsParams ok;
  ok.kind = RowsKind::Gather, ok.n = 5, ok.cols = 4, ok.dst = dst.data(), ok.ldd = 4, ok.src = src.data(), ok.lds = 4;
  ok.indexed_rows = 6, ok.idx_dtype = DType::I32;
  const int32_t past[] = {1, -1, 5, 6, 0};
  const int64_t past64[] = {0, 1, 2, 3, int64_t{1} << 40};
  const int32_t good[] = {0, -1, 5, 5, -7};
  const int32_t twice[] = {4, -1, 2, 4, 0};
  RowsParams p = ok;
  p.idx = past;
  res.push_back(expect_reject("gather index == rows: rejected, dst untouched", p, "position 3 is 6", &dst));
  p.kind = RowsKind::AddIndexed;
  res.push_back(expect_reject("add_indexed index == rows", p, "position 3 is 6", &dst));
  p = ok, p.idx = past64, p.idx_dtype = DType::I64;
  res.push_back(expect_reject("gather index 2^40 (i64)", p, "position 4 is 1099511627776", &dst));
  // Scatter: 6 source rows into dst's 5.
  RowsParams sc = ok;
  sc.kind = RowsKind::Scatter, sc.n = 5, sc.indexed_rows = 5, sc.idx = twice;
  res.push_back(expect_reject("scatter target repeated", sc, "position 3 is 4", &dst));
  const int32_t sc_past[] = {0, 1, 2, 3, 5};
  sc.idx = sc_past;
  res.push_back(expect_reject("scatter target == rows", sc, "position 4 is 5", &dst));
  p = ok, p.idx = good, p.idx_dtype = DType::U8;
  res.push_back(expect_reject("u8 indexes", p, "i32 or i64", &dst));
  p = ok, p.idx = nullptr;
  res.push_back(expect_reject("null idx", p, "idx", &dst));
  p = ok, p.idx = good, p.ldd = 3;
  res.push_back(expect_reject("ldd < cols", p, "dst", &dst));
  p = ok, p.idx = good, p.lds = 3;
  res.push_back(expect_reject("lds < cols", p, "src", &dst));
  p = ok, p.idx = good, p.cols = 0;
  res.push_back(expect_reject("cols 0", p, "row length", &dst));
  p = ok, p.idx = good, p.n = -1;
  res.push_back(expect_reject("n < 0", p, "n must be", &dst));
  p = ok, p.idx = good, p.src = nullptr;
  res.push_back(expect_reject("null src", p, "src", &dst));
  p = ok, p.idx = good, p.indexed_rows = int64_t{1} << 62;
  res.push_back(expect_reject("overflowing indexed_rows", p, "src", &dst));
  p = ok, p.idx = good, p.src = dst.data() + 8, p.indexed_rows = 2;
  const int32_t low[] = {0, 1, 0, 1, -1};
  p.idx = low;
  res.push_back(expect_reject("src overlaps dst", p, "overlap", &dst));
  RowsParams add;
  add.kind = RowsKind::Add, add.n = 5, add.cols = 4, add.dst = dst.data(), add.ldd = 4, add.src = dst.data() + 4, add.lds = 4;
  res.push_back(expect_reject("add onto itself shifted", add, "overlap", &dst));
  res.push_back(expect_accepted("rows", "valid, all-skipped and empty problems accepted", [&] {
    p = ok, p.idx = good;
    ops::check_rows_op(p);
    const int32_t none[] = {-1, -1, -1, -1, -1};
    p.idx = none, p.indexed_rows = 0, p.src = nullptr;
    ops::check_rows_op(p);
    p = ok, p.n = 0, p.idx = nullptr, p.dst = nullptr, p.src = nullptr;
    ops::check_rows_op(p);
    RowsParams a = add;
    a.src = src.data();
    ops::check_rows_op(a);
  }));
  return res;
}

}  // namespace

std::vector<Result> parity_rows(uint64_t seed) {
  Rng rng(seed);
  const auto& family = ops::rows_family();
  const std::shared_ptr<ThreadPool> dflt = default_pool();
  ThreadPool three(3);
  std::vector<Result> results;
  int index = 0;
  for (const Case& c : cases()) {
    const int64_t lds = c.cols + c.pad, ldd = c.cols + (c.pad ? c.pad + 2 : 0);
    std::vector<float> src(extent(src_rows(c), c.cols, lds));
    for (auto& v : src) v = rng.normal();
    const std::vector<int64_t> idx64 = make_index(c, rng);
    const Index idx(idx64, c.idx);
    // dst starts with random rows (Add and the skipped rows keep them) and unwritten padding.
    const size_t dn = extent(dst_rows(c), c.cols, ldd);
    std::vector<float> start(dn, unwritten());
    for (int64_t r = 0; r < dst_rows(c); ++r)
      for (int64_t k = 0; k < c.cols; ++k) start[static_cast<size_t>(r * ldd + k)] = rng.normal();
    RowsParams base;
    base.kind = c.kind, base.n = c.n, base.cols = c.cols, base.ldd = ldd;
    base.src = src.empty() ? nullptr : src.data(), base.lds = lds;
    base.indexed_rows = c.indexed_rows, base.idx = c.n ? idx.ptr(c.idx) : nullptr, base.idx_dtype = c.idx;
    std::vector<float> want = start;
    if (c.n) {
      RowsParams p = base;
      p.dst = want.empty() ? nullptr : want.data();
      family.reference().fn(p, ExecContext(*dflt));
    }
    for (const auto& v : family.runnable()) {
      ThreadPool& pool = (index++ % 2) ? three : *dflt;
      Guarded<float> out(dn);
      std::copy(start.begin(), start.end(), out.data());
      RowsParams p = base;
      p.dst = dn ? out.data() : nullptr;
      Result r = variant_case("rows", v, describe(c) + " threads=" + std::to_string(pool.size()));
      run_case(r, [&] {
        ops::check_rows_op(p);
        if (c.n) v.fn(p, ExecContext(pool));
        for (size_t i = 0; i < dn && r.passed; ++i) {
          if (std::memcmp(&out[i], &want[i], 4) != 0) {
            r.passed = false, r.max_abs_err = 1;
            r.note = "first mismatch at row " + std::to_string(i / static_cast<size_t>(ldd)) + " element " +
                     std::to_string(i % static_cast<size_t>(ldd)) + (is_unwritten(want[i]) ? " (row padding)" : "");
          }
        }
        r.guards_ok = out.intact();
      });
      results.push_back(std::move(r));
    }
  }
  // The reference itself against the definitions, on one small case per kind (the variants are
  // held to the reference above, so a reference broken the same way as every variant shows here).
  {
    Result r;
    r.op = "rows", r.variant = "definition", r.shape = "n=4 cols=3 every kind";
    const float s[4 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const int64_t ix[4] = {2, -1, 0, 3};
    auto run = [&](RowsKind k, std::vector<float> d) {
      RowsParams p;
      p.kind = k, p.n = 4, p.cols = 3, p.dst = d.data(), p.ldd = 3, p.src = s, p.lds = 3, p.indexed_rows = 4, p.idx = ix;
      ops::rows_family().reference().fn(p, ExecContext(*dflt));
      return d;
    };
    const std::vector<float> d0(12, 0.5f);
    const std::vector<float> add = run(RowsKind::Add, d0), gat = run(RowsKind::Gather, d0);
    const std::vector<float> sca = run(RowsKind::Scatter, d0), adi = run(RowsKind::AddIndexed, d0);
    const std::vector<float> want_add = {1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f, 7.5f, 8.5f, 9.5f, 10.5f, 11.5f, 12.5f};
    const std::vector<float> want_gat = {7, 8, 9, 0.5f, 0.5f, 0.5f, 1, 2, 3, 10, 11, 12};
    const std::vector<float> want_sca = {7, 8, 9, 0.5f, 0.5f, 0.5f, 1, 2, 3, 10, 11, 12};
    const std::vector<float> want_adi = {7.5f, 8.5f, 9.5f, 0.5f, 0.5f, 0.5f, 1.5f, 2.5f, 3.5f, 10.5f, 11.5f, 12.5f};
    r.passed = add == want_add && gat == want_gat && sca == want_sca && adi == want_adi;
    if (!r.passed) r.note = "the reference does not follow the definitions";
    results.push_back(r);
  }
  for (Result& r : check_cases(rng)) results.push_back(std::move(r));
  return results;
}

}  // namespace qvl::parity
