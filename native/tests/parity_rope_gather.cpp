// rope_gather parity. First, what the decoder and the vision tower rely on: tables gathered from a
// per-position table (rope_table_1d rows, as models/rope_cache.h builds and grows them) equal the
// direct builders rope_table_mrope, rope_table_mrope_interleaved and rope_table_vision_2d bit for
// bit, for every variant, at real head sizes, thetas, sections and positions (negative, large,
// repeated). Then every variant against the reference on random axis/column maps with guards,
// the per-position cache's growth, and checks that reject before writing.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "models/rope_cache.h"
#include "ops/rope.h"
#include "ops/rope_gather.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

using ops::RopeGatherParams;

struct PosTable {
  int64_t base = 0, rows = 0, cols = 0;
  std::vector<float> cos, sin;
};

PosTable build(const ops::RopeFreqs& f, int64_t base, int64_t rows) {
  PosTable t;
  t.base = base, t.rows = rows, t.cols = f.rotary_dim / 2;
  std::vector<int64_t> pos(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) pos[static_cast<size_t>(i)] = base + i;
  t.cos.resize(static_cast<size_t>(rows * t.cols));
  t.sin.resize(t.cos.size());
  ops::rope_table_1d(pos.data(), rows, f, t.cos.data(), t.sin.data());
  return t;
}

void set_table(RopeGatherParams* p, const PosTable& t) {
  p->base = t.base, p->table_rows = t.rows, p->table_cols = t.cols;
  p->table_cos = t.cos.data(), p->table_sin = t.sin.data();
}

// Runs variant fn into guarded outputs and compares with want bit for bit.
template <class Fn>
void run_into(Fn fn, RopeGatherParams p, ThreadPool& pool, const std::vector<float>& want_cos,
              const std::vector<float>& want_sin, Result* r) {
  Guarded<float> cos(static_cast<size_t>(p.T * p.half), unwritten()), sin(cos.size(), unwritten());
  p.cos = cos.data(), p.sin = sin.data();
  try {
    ops::check_rope_gather(p);
    if (p.T) fn(p, ExecContext(pool));
    for (size_t i = 0; i < cos.size() && r->passed; ++i) {
      if (std::memcmp(&cos[i], &want_cos[i], 4) != 0 || std::memcmp(&sin[i], &want_sin[i], 4) != 0) {
        r->passed = false, r->max_abs_err = 1;
        r->note = "bits differ at token " + std::to_string(i / static_cast<size_t>(p.half)) + " column " +
                  std::to_string(i % static_cast<size_t>(p.half));
      }
    }
    r->guards_ok = cos.intact() && sin.intact();
  } catch (const std::exception& e) {
    r->passed = false, r->note = std::string("threw: ") + e.what();
  }
}

struct MropeCase {
  int64_t head_dim;
  double theta;
  int64_t sec[3];
  bool interleaved;
  int64_t T, lo, hi;  // positions drawn from [lo, hi]
};

std::vector<Result> mrope_cases(Rng& rng) {
  const MropeCase cases[] = {
      {128, 1e6, {16, 24, 24}, false, 37, 0, 60},             // Qwen2-VL / Qwen2.5-VL
      {128, 5e6, {24, 20, 20}, true, 41, 0, 900},             // Qwen3-VL
      {64, 1e6, {8, 12, 12}, false, 1, 5000, 5000},           // one decode token far out
      {16, 10000, {2, 3, 3}, true, 200, -30, 40000},          // negative (padding) and large positions
      {16, 10000, {0, 8, 0}, false, 17, 0, 30},               // a section of 0
      {12, 1e6, {6, 0, 0}, true, 9, 0, 3},                    // all temporal
      {80, 1e6, {10, 15, 15}, true, 300, 0, 128 * 1024 - 1},  // threaded, positions up to 128k
  };
  std::vector<Result> out;
  int index = 0;
  ThreadPool three(3);
  for (const MropeCase& c : cases) {
    ops::RopeFreqs f;
    f.theta = c.theta, f.rotary_dim = c.head_dim;
    const int64_t half = c.head_dim / 2;
    std::vector<int64_t> pos(static_cast<size_t>(3 * c.T));
    for (auto& p : pos) p = rng.range(c.lo, c.hi);
    pos[0] = c.lo, pos[static_cast<size_t>(3 * c.T - 1)] = c.hi;
    std::vector<float> want_cos(static_cast<size_t>(c.T * half)), want_sin(want_cos.size());
    if (c.interleaved) ops::rope_table_mrope_interleaved(pos.data(), c.T, c.sec, f, want_cos.data(), want_sin.data());
    else ops::rope_table_mrope(pos.data(), c.T, c.sec, f, want_cos.data(), want_sin.data());
    // The table as the cache holds it: some rows either side of the positions used.
    const PosTable tab = build(f, c.lo - 3, c.hi - c.lo + 10);
    std::vector<uint8_t> axis(static_cast<size_t>(half));
    ops::rope_mrope_axes(c.sec, half, c.interleaved, axis.data());
    std::vector<int32_t> column(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) column[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    for (const auto& v : ops::rope_gather_family().runnable()) {
      ThreadPool& pool = (index++ % 2) ? three : *default_pool();
      RopeGatherParams p;
      p.T = c.T, p.half = half, p.positions = pos.data(), p.axes = 3, p.ldp = c.T;
      p.axis = axis.data(), p.column = column.data();
      set_table(&p, tab);
      Result r;
      r.op = "rope_gather", r.variant = v.name;
      r.device = device_name(v.device);
      r.shape = std::string(c.interleaved ? "= mrope_interleaved" : "= mrope") + " head_dim=" + std::to_string(c.head_dim) +
                " theta=" + std::to_string(static_cast<int64_t>(c.theta)) + " T=" + std::to_string(c.T) + " pos=[" +
                std::to_string(c.lo) + "," + std::to_string(c.hi) + "] threads=" + std::to_string(pool.size());
      run_into(v.fn, p, pool, want_cos, want_sin, &r);
      out.push_back(std::move(r));
    }
  }
  return out;
}

// The vision tower's table: columns [0, q) follow the patch row, [q, 2q) its column, both reading
// a head_dim/2-wide per-position table.
std::vector<Result> vision_cases(Rng& rng) {
  const int64_t dims[] = {4, 16, 40, 64, 80};
  std::vector<Result> out;
  int index = 0;
  for (int64_t D : dims) {
    const int64_t T = 1 + (D * 7) % 61, side = 1 + D % 37, q = D / 4, half = D / 2;
    std::vector<int64_t> hw(static_cast<size_t>(2 * T));
    for (auto& p : hw) p = rng.range(0, side - 1);
    ops::RopeFreqs f2;
    f2.theta = 10000.0, f2.rotary_dim = D;
    std::vector<float> want_cos(static_cast<size_t>(T * half)), want_sin(want_cos.size());
    ops::rope_table_vision_2d(hw.data(), hw.data() + T, T, f2, want_cos.data(), want_sin.data());
    ops::RopeFreqs f1 = f2;
    f1.rotary_dim = half;
    const PosTable tab = build(f1, 0, side);
    std::vector<uint8_t> axis;
    std::vector<int32_t> column;
    for (int a = 0; a < 2; ++a)
      for (int64_t j = 0; j < q; ++j) axis.push_back(static_cast<uint8_t>(a)), column.push_back(static_cast<int32_t>(j));
    for (const auto& v : ops::rope_gather_family().runnable()) {
      ThreadPool one(1 + index++ % 2);
      RopeGatherParams p;
      p.T = T, p.half = half, p.positions = hw.data(), p.axes = 2, p.ldp = T;
      p.axis = axis.data(), p.column = column.data();
      set_table(&p, tab);
      Result r;
      r.op = "rope_gather", r.variant = v.name;
      r.device = device_name(v.device);
      r.shape = "= vision_2d head_dim=" + std::to_string(D) + " T=" + std::to_string(T) + " side=" + std::to_string(side);
      run_into(v.fn, p, one, want_cos, want_sin, &r);
      out.push_back(std::move(r));
    }
  }
  return out;
}

// Random maps (runs broken anywhere, columns repeated or reversed), ldp > T, against the reference.
std::vector<Result> random_cases(Rng& rng) {
  std::vector<Result> out;
  for (int k = 0; k < 12; ++k) {
    const int64_t T = k == 11 ? 0 : rng.range(1, 90), half = rng.range(1, 70), axes = rng.range(1, 3);
    const int64_t cols = rng.range(1, 50), rows = rng.range(1, 40), base = rng.range(-20, 20), ldp = T + rng.range(0, 3);
    std::vector<uint8_t> axis(static_cast<size_t>(half));
    std::vector<int32_t> column(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) {
      axis[static_cast<size_t>(i)] = static_cast<uint8_t>(rng.range(0, axes - 1));
      column[static_cast<size_t>(i)] = static_cast<int32_t>(k % 3 == 0 ? std::min<int64_t>(i, cols - 1) : rng.range(0, cols - 1));
    }
    std::vector<int64_t> pos(static_cast<size_t>(axes * ldp + 1));
    for (auto& p : pos) p = base + rng.range(0, rows - 1);
    PosTable tab;
    tab.base = base, tab.rows = rows, tab.cols = cols;
    tab.cos.resize(static_cast<size_t>(rows * cols)), tab.sin.resize(tab.cos.size());
    for (auto& v : tab.cos) v = rng.normal();
    for (auto& v : tab.sin) v = rng.normal();
    RopeGatherParams p;
    p.T = T, p.half = half, p.positions = pos.data(), p.axes = axes, p.ldp = ldp;
    p.axis = axis.data(), p.column = column.data();
    set_table(&p, tab);
    std::vector<float> want_cos(static_cast<size_t>(T * half)), want_sin(want_cos.size());
    RopeGatherParams w = p;
    w.cos = want_cos.data(), w.sin = want_sin.data();
    if (T) ops::rope_gather_family().reference().fn(w, ExecContext(*default_pool()));
    for (const auto& v : ops::rope_gather_family().runnable()) {
      Result r;
      r.op = "rope_gather", r.variant = v.name;
      r.device = device_name(v.device);
      r.shape = "random T=" + std::to_string(T) + " half=" + std::to_string(half) + " axes=" + std::to_string(axes) +
                " table=" + std::to_string(rows) + "x" + std::to_string(cols) + " base=" + std::to_string(base);
      run_into(v.fn, p, *default_pool(), want_cos, want_sin, &r);
      out.push_back(std::move(r));
    }
  }
  return out;
}

// The model-level cache: covers what is asked, grows keeping earlier rows' values, refuses spans
// past its bound, and every row is rope_table_1d's.
Result cache_case() {
  Result r;
  r.op = "rope_gather", r.variant = "cache", r.shape = "RopeRows grow [0,10] -> [5,5000] -> [-7,3], bound 8192";
  ops::RopeFreqs f;
  f.theta = 1e6, f.rotary_dim = 8;
  models::RopeRows rows(f, 8192);
  auto first = rows.cover(0, 10), grown = rows.cover(5, 5000), low = rows.cover(-7, 3), same = rows.cover(1, 2);
  const auto too_wide = rows.cover(0, 8192);
  auto covers = [](const std::shared_ptr<const models::RopeRowTable>& t, int64_t lo, int64_t hi) {
    return t && t->base <= lo && hi < t->base + t->rows && t->rows <= 8192 && t->cols == 4;
  };
  if (!covers(first, 0, 10) || !covers(grown, 5, 5000) || !covers(low, -7, 3) || same != low || too_wide) {
    r.passed = false, r.note = "cover() returned a wrong table";
    return r;
  }
  const PosTable want = build(f, low->base, low->rows);
  if (std::memcmp(want.cos.data(), low->cos.data(), want.cos.size() * 4) != 0 ||
      std::memcmp(want.sin.data(), low->sin.data(), want.sin.size() * 4) != 0) {
    r.passed = false, r.note = "cached rows differ from rope_table_1d";
  }
  return r;
}

Result expect_reject(const std::string& what, RopeGatherParams p, const std::string& must_mention, bool use_guards = true) {
  Result r;
  r.op = "rope_gather", r.variant = "check", r.shape = what;
  Guarded<float> cos(static_cast<size_t>(std::max<int64_t>(p.T, 0) * std::max<int64_t>(p.half, 0)), unwritten());
  Guarded<float> sin(cos.size(), unwritten());
  if (use_guards) p.cos = cos.data(), p.sin = sin.data();
  try {
    ops::rope_gather(p, ExecContext(*default_pool()));
    r.passed = false, r.note = "accepted";
  } catch (const Error& e) {
    r.passed = e.code() == ErrorCode::Input && std::string(e.what()).find(must_mention) != std::string::npos;
    if (!r.passed) r.note = std::string("wrong error: ") + e.what();
  }
  bool untouched = cos.intact() && sin.intact();
  for (size_t i = 0; i < cos.size(); ++i) untouched = untouched && is_unwritten(cos[i]) && is_unwritten(sin[i]);
  r.guards_ok = untouched;
  if (!untouched) r.note = "wrote before rejecting";
  return r;
}

std::vector<Result> check_cases() {
  std::vector<Result> res;
  static std::vector<float> tc(6 * 4, 0.5f), ts(6 * 4, 0.25f);
  static const int64_t pos[2 * 5] = {10, 11, 12, 13, 14, 10, 15, 10, 10, 10};
  static const uint8_t axis[4] = {0, 0, 1, 1};
  static const int32_t column[4] = {0, 1, 2, 3};
  RopeGatherParams ok;
  ok.T = 5, ok.half = 4, ok.positions = pos, ok.axes = 2, ok.ldp = 5, ok.axis = axis, ok.column = column;
  ok.base = 10, ok.table_cos = tc.data(), ok.table_sin = ts.data(), ok.table_rows = 6, ok.table_cols = 4;
  RopeGatherParams p = ok;
  p.table_rows = 5;
  res.push_back(expect_reject("position past the table: rejected, untouched", p, "position 15 of token 1 on axis 1"));
  p = ok, p.base = 11;
  res.push_back(expect_reject("position below the table's base", p, "position 10 of token 0 on axis 0"));
  static const int64_t extreme[2 * 5] = {10, INT64_MIN, 12, 13, 14, 10, 10, 10, 10, INT64_MAX};
  p = ok, p.positions = extreme;
  res.push_back(expect_reject("position INT64_MIN", p, "of token 1 on axis 0"));
  static const int64_t extreme2[2 * 5] = {-5, -4, -3, -2, 0, 0, 0, 0, 0, INT64_MAX};
  p = ok, p.positions = extreme2, p.base = -5;
  res.push_back(expect_reject("position INT64_MAX over a negative base", p, "of token 4 on axis 1"));
  static const uint8_t bad_axis[4] = {0, 0, 2, 1};
  p = ok, p.axis = bad_axis;
  res.push_back(expect_reject("axis >= axes", p, "axis[2]"));
  static const int32_t bad_col[4] = {0, 1, 4, 3};
  p = ok, p.column = bad_col;
  res.push_back(expect_reject("column past the table", p, "column[2]"));
  static const int32_t neg_col[4] = {0, -1, 2, 3};
  p = ok, p.column = neg_col;
  res.push_back(expect_reject("negative column", p, "column[1]"));
  p = ok, p.ldp = 4;
  res.push_back(expect_reject("ldp < T", p, "ldp"));
  p = ok, p.axes = 4;
  res.push_back(expect_reject("axes 4", p, "axes"));
  p = ok, p.half = 0;
  res.push_back(expect_reject("half 0", p, "half"));
  p = ok, p.positions = nullptr;
  res.push_back(expect_reject("null positions", p, "positions"));
  p = ok, p.table_sin = nullptr;
  res.push_back(expect_reject("null table_sin", p, "table_sin"));
  {
    static std::vector<float> both(2 * 5 * 4);
    p = ok, p.cos = both.data(), p.sin = both.data() + 4;
    res.push_back(expect_reject("cos overlaps sin", p, "overlap", false));
    p = ok, p.cos = both.data(), p.sin = tc.data();
    res.push_back(expect_reject("sin over the table", p, "overlap", false));
  }
  res.push_back(expect_accepted("rope_gather", "valid and empty problems accepted", [&] {
    static std::vector<float> c(5 * 4), s(5 * 4);
    p = ok, p.cos = c.data(), p.sin = s.data();
    ops::check_rope_gather(p);
    // An axis no column reads may hold anything.
    static const uint8_t only0[4] = {0, 0, 0, 0};
    static const int64_t wild[2 * 5] = {10, 11, 12, 13, 14, -99, 1 << 30, 7, 7, 7};
    p.axis = only0, p.positions = wild;
    ops::check_rope_gather(p);
    p = ok, p.T = 0, p.positions = nullptr, p.table_cos = nullptr, p.table_sin = nullptr;
    ops::check_rope_gather(p);
  }));
  return res;
}

}  // namespace

std::vector<Result> parity_rope_gather(uint64_t seed) {
  Rng rng(seed);
  std::vector<Result> results = mrope_cases(rng);
  for (Result& r : vision_cases(rng)) results.push_back(std::move(r));
  for (Result& r : random_cases(rng)) results.push_back(std::move(r));
  results.push_back(cache_case());
  for (Result& r : check_cases()) results.push_back(std::move(r));
  return results;
}

}  // namespace qvl::parity
