// embedding parity: every variant against the reference, bit for bit (the conversions are exact).
// bf16/f16 tables hold random bit patterns, so subnormals, infinities and NaNs are all exercised;
// any NaN matches any NaN (the hardware f16 conversion quiets signalling NaNs). Also: the range
// check names the position and the id and rejects before writing anything.
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "ops/embedding.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

using ops::EmbeddingParams;

struct Case {
  int64_t n, vocab, hidden, pad;
  DType table, ids;
};

struct Table {
  std::vector<float> f;
  std::vector<uint16_t> h;
  const void* ptr(DType t) const { return t == DType::F32 ? static_cast<const void*>(f.data()) : h.data(); }
};

Table make_table(const Case& c, int64_t ldt, Rng& rng) {
  Table t;
  const size_t n = static_cast<size_t>(c.vocab * ldt);
  if (c.table == DType::F32) {
    t.f.resize(n);
    for (auto& v : t.f) v = rng.normal();
  } else {
    t.h.resize(n);
    for (auto& v : t.h) v = static_cast<uint16_t>(rng.next());
  }
  return t;
}

std::vector<int64_t> make_ids(const Case& c, Rng& rng) {
  std::vector<int64_t> ids(static_cast<size_t>(c.n));
  for (int64_t t = 0; t < c.n; ++t) {
    switch (t % 4) {
      case 0: ids[t] = 0; break;
      case 1: ids[t] = c.vocab - 1; break;
      default: ids[t] = rng.range(0, c.vocab - 1); break;
    }
  }
  return ids;
}

// Storage for ids of either width.
struct Ids {
  std::vector<int32_t> i32;
  std::vector<int64_t> i64;
  Ids(const std::vector<int64_t>& v, DType t) {
    if (t == DType::I32) i32.assign(v.begin(), v.end());
    else i64 = v;
  }
  const void* ptr(DType t) const { return t == DType::I32 ? static_cast<const void*>(i32.data()) : i64.data(); }
};

bool same(float a, float b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, 4) == 0; }

std::vector<Case> cases() {
  std::vector<Case> out;
  const int64_t dims[] = {1, 3, 15, 17, 31, 33, 100, 1000, 1536 + 7};
  const DType tables[] = {DType::F32, DType::BF16, DType::F16};
  int i = 0;
  for (int64_t d : dims) {
    for (DType t : tables) {
      for (int w = 0; w < 2; ++w, ++i) {
        const int64_t vocab = (i % 3 == 0) ? 1 : 50 + i;
        out.push_back({1 + (i % 7), vocab, d, (i % 2) ? 0 : 3, t, w ? DType::I64 : DType::I32});
      }
    }
  }
  out.push_back({200, 300, 896 + 1, 0, DType::BF16, DType::I32});  // threaded
  out.push_back({0, 10, 17, 0, DType::F16, DType::I64});           // nothing to do
  return out;
}

std::string describe(const Case& c) {
  return "n=" + std::to_string(c.n) + " vocab=" + std::to_string(c.vocab) + " hidden=" + std::to_string(c.hidden) +
         (c.pad ? " strided" : "") + " table=" + dtype_name(c.table) + " ids=" + dtype_name(c.ids);
}

Result expect_reject(const char* what, const EmbeddingParams& p, const std::string& must_mention, Guarded<float>* out) {
  Result r;
  r.op = "embedding", r.variant = "check", r.shape = what;
  try {
    ops::embedding(p, ExecContext(*default_pool()));
    r.passed = false, r.note = "accepted";
  } catch (const Error& e) {
    r.passed = e.code() == ErrorCode::Input && std::string(e.what()).find(must_mention) != std::string::npos;
    if (!r.passed) r.note = std::string("wrong error: ") + e.what();
  }
  if (out) {
    bool untouched = out->intact();
    for (size_t i = 0; i < out->size(); ++i) untouched = untouched && is_unwritten((*out)[i]);
    r.guards_ok = untouched;
    if (!untouched) r.note = "wrote before rejecting";
  }
  return r;
}

std::vector<Result> check_cases() {
  std::vector<Result> res;
  std::vector<float> table(10 * 4, 1.0f);
  Guarded<float> out(5 * 4, unwritten());
  EmbeddingParams ok;
  ok.table = table.data(), ok.vocab = 10, ok.hidden = 4, ok.ldt = 4, ok.out = out.data(), ok.ldo = 4, ok.n = 5;
  const int32_t bad32[] = {1, 2, 3, 10, 4};
  const int32_t neg32[] = {1, -7, 3, 1, 4};
  const int64_t big64[] = {1, 2, 3, 4, int64_t{1} << 40};
  EmbeddingParams p = ok;
  p.ids = bad32, p.ids_dtype = DType::I32;
  res.push_back(expect_reject("id == vocab (i32): rejected, out untouched", p, "position 3 is 10", &out));
  p.ids = neg32;
  res.push_back(expect_reject("negative id (i32)", p, "position 1 is -7", &out));
  p.ids = big64, p.ids_dtype = DType::I64;
  res.push_back(expect_reject("id 2^40 (i64)", p, "position 4 is 1099511627776", &out));
  const int32_t good[] = {0, 1, 2, 3, 9};
  p = ok, p.ids = good, p.ids_dtype = DType::U8;
  res.push_back(expect_reject("u8 ids", p, "ids", &out));
  p = ok, p.ids = good, p.table_dtype = DType::I32;
  res.push_back(expect_reject("i32 table", p, "table", &out));
  p = ok, p.ids = good, p.ldt = 3;
  res.push_back(expect_reject("ldt < hidden", p, "table", &out));
  p = ok, p.ids = good, p.ldo = 3;
  res.push_back(expect_reject("ldo < hidden", p, "out", &out));
  p = ok, p.ids = nullptr;
  res.push_back(expect_reject("null ids", p, "ids", &out));
  p = ok, p.ids = good, p.table = nullptr;
  res.push_back(expect_reject("null table", p, "table", &out));
  p = ok, p.ids = good, p.vocab = int64_t{1} << 62;
  res.push_back(expect_reject("overflowing vocab", p, "table", &out));
  res.push_back(expect_accepted("embedding", "valid and empty problems accepted", [&] {
    p = ok, p.ids = good;
    ops::check_embedding(p);
    p.n = 0, p.ids = nullptr;
    ops::check_embedding(p);
  }));
  return res;
}

}  // namespace

std::vector<Result> parity_embedding(uint64_t seed) {
  Rng rng(seed);
  const auto& family = ops::embedding_family();
  const std::shared_ptr<ThreadPool> dflt = default_pool();
  ThreadPool three(3);
  std::vector<Result> results;
  int index = 0;
  for (const Case& c : cases()) {
    const int64_t ldt = c.hidden + c.pad, ldo = c.hidden + (c.pad ? c.pad + 2 : 0);
    const Table table = make_table(c, ldt, rng);
    const Ids ids(make_ids(c, rng), c.ids);
    EmbeddingParams base;
    base.n = c.n, base.ids = c.n ? ids.ptr(c.ids) : nullptr, base.ids_dtype = c.ids;
    base.table = table.ptr(c.table), base.table_dtype = c.table;
    base.vocab = c.vocab, base.hidden = c.hidden, base.ldt = ldt;
    std::vector<float> want(static_cast<size_t>(c.n * c.hidden));
    if (c.n) {
      EmbeddingParams p = base;
      p.out = want.data(), p.ldo = c.hidden;
      family.reference().fn(p, ExecContext(*dflt));
    }
    for (const auto& v : family.runnable()) {
      ThreadPool& pool = (index++ % 2) ? three : *dflt;
      Guarded<float> out(extent(c.n, c.hidden, ldo), unwritten());
      EmbeddingParams p = base;
      p.out = out.data(), p.ldo = ldo;
      Result r = variant_case("embedding", v, describe(c) + " threads=" + std::to_string(pool.size()));
      run_case(r, [&] {
        ops::check_embedding(p);
        v.fn(p, ExecContext(pool));
        bool pad_ok = true;
        for (int64_t t = 0; t < c.n && r.passed; ++t) {
          for (int64_t i = 0; i < c.hidden; ++i) {
            if (!same(out[t * ldo + i], want[t * c.hidden + i])) {
              r.passed = false, r.max_abs_err = 1;
              r.note = "first mismatch at row " + std::to_string(t) + " element " + std::to_string(i);
              break;
            }
          }
          for (int64_t i = c.hidden; t + 1 < c.n && i < ldo; ++i) pad_ok = pad_ok && is_unwritten(out[t * ldo + i]);
        }
        r.guards_ok = out.intact() && pad_ok;
        if (!pad_ok) r.note = "wrote into the row padding of out";
      });
      results.push_back(std::move(r));
    }
  }
  for (Result& r : check_cases()) results.push_back(std::move(r));
  return results;
}

}  // namespace qvl::parity
