// vision_window self-check: window_layout against a literal emulation of transformers'
// Qwen2.5-VL get_window_index (a -100 padded index grid, reshape, permute(0,1,3,2,4), filter,
// cumulative seqlens, unique_consecutive) and of its forward (groups gathered by window_index,
// merger rows restored by argsort(window_index)). The emulation deliberately follows the Python
// step by step, including its quirk of adding a whole empty window row/column when a side is
// already a multiple of the window; window_layout computes the same thing directly.
#include <algorithm>
#include <exception>
#include <array>
#include <numeric>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "models/vision_window.h"
#include "ops/rows.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

using Grids = std::vector<std::array<int64_t, 3>>;
constexpr int64_t kPad = -100;

struct RefLayout {
  std::vector<int64_t> window_index;
  std::vector<int64_t> cu_window;  // after unique_consecutive
  std::vector<int64_t> cu_frames;
};

// Contiguous copy of a row-major tensor of shape `dims` with its axes permuted (torch permute +
// contiguous).
std::vector<int64_t> permute_nd(const std::vector<int64_t>& x, const std::vector<int64_t>& dims,
                                const std::vector<int>& perm) {
  const size_t nd = dims.size();
  std::vector<int64_t> stride(nd, 1);
  for (size_t i = nd - 1; i > 0; --i) stride[i - 1] = stride[i] * dims[i];
  std::vector<int64_t> odims(nd), ostride(nd);
  for (size_t i = 0; i < nd; ++i) odims[i] = dims[static_cast<size_t>(perm[i])], ostride[i] = stride[static_cast<size_t>(perm[i])];
  std::vector<int64_t> out;
  out.reserve(x.size());
  std::vector<int64_t> idx(nd, 0);
  for (size_t n = 0; n < x.size(); ++n) {
    int64_t off = 0;
    for (size_t i = 0; i < nd; ++i) off += idx[i] * ostride[i];
    out.push_back(x[static_cast<size_t>(off)]);
    for (size_t i = nd; i-- > 0;) {
      if (++idx[i] < odims[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}

RefLayout reference(const Grids& grids, int64_t window_size, int64_t patch, int64_t merge) {
  RefLayout r;
  const int64_t vms = window_size / merge / patch, unit = merge * merge;
  std::vector<int64_t> cu{0};
  int64_t id = 0;
  for (const auto& g : grids) {
    const int64_t t = g[0], lh = g[1] / merge, lw = g[2] / merge;
    const int64_t pad_h = vms - lh % vms, pad_w = vms - lw % vms;
    const int64_t ph = lh + pad_h, pw = lw + pad_w;
    const int64_t nwh = ph / vms, nww = pw / vms;
    // F.pad(index, (0, pad_w, 0, pad_h), value=-100) on the (t, lh, lw) arange.
    std::vector<int64_t> padded(static_cast<size_t>(t * ph * pw), kPad);
    for (int64_t f = 0; f < t; ++f)
      for (int64_t y = 0; y < lh; ++y)
        for (int64_t x = 0; x < lw; ++x) padded[static_cast<size_t>((f * ph + y) * pw + x)] = (f * lh + y) * lw + x;
    // reshape (t, nwh, vms, nww, vms) -> permute(0,1,3,2,4) -> (t, nwh*nww, vms, vms).
    const std::vector<int64_t> win = permute_nd(padded, {t, nwh, vms, nww, vms}, {0, 1, 3, 2, 4});
    const int64_t per_window = vms * vms, n_windows = t * nwh * nww;
    std::vector<int64_t> seqlens(static_cast<size_t>(n_windows), 0);
    for (int64_t w = 0; w < n_windows; ++w)
      for (int64_t k = 0; k < per_window; ++k)
        if (win[static_cast<size_t>(w * per_window + k)] != kPad) ++seqlens[static_cast<size_t>(w)];
    for (int64_t v : win)
      if (v != kPad) r.window_index.push_back(v + id);
    const int64_t last = cu.back();
    int64_t run = 0;
    for (int64_t s : seqlens) {
      run += s;
      cu.push_back(run * unit + last);
    }
    id += t * lh * lw;
  }
  for (size_t i = 0; i < cu.size(); ++i)
    if (i == 0 || cu[i] != cu[i - 1]) r.cu_window.push_back(cu[i]);
  // repeat_interleave(h*w, t).cumsum, padded with a leading 0.
  r.cu_frames.push_back(0);
  for (const auto& g : grids)
    for (int64_t f = 0; f < g[0]; ++f) r.cu_frames.push_back(r.cu_frames.back() + g[1] * g[2]);
  return r;
}

std::string describe(const Grids& grids, int64_t window_size, int64_t patch, int64_t merge) {
  std::string s = "ws=" + std::to_string(window_size) + " p=" + std::to_string(patch) + " m=" + std::to_string(merge) + " grids";
  for (const auto& g : grids) s += " " + std::to_string(g[0]) + "x" + std::to_string(g[1]) + "x" + std::to_string(g[2]);
  return s;
}

Result make(const std::string& variant, const std::string& shape) {
  Result r;
  r.op = "vision_window";
  r.variant = variant;
  r.shape = shape;
  return r;
}

void expect_equal(const std::vector<int64_t>& got, const std::vector<int64_t>& want, const char* what, Result* r) {
  if (!r->passed) return;
  if (got.size() != want.size()) {
    r->passed = false;
    r->note = std::string(what) + ": " + std::to_string(got.size()) + " entries, expected " + std::to_string(want.size());
    return;
  }
  compare_exact(got.data(), want.data(), got.size(), r);
  if (!r->passed) r->note = std::string(what) + ": " + r->note;
}

// Properties the tower relies on beyond matching HF: order is a permutation, every frame keeps
// its own groups in a contiguous range, and every frame boundary is a window boundary.
void check_invariants(const models::WindowLayout& L, int64_t unit, Result* r) {
  if (!r->passed) return;
  const int64_t groups = static_cast<int64_t>(L.order.size());
  std::vector<char> seen(static_cast<size_t>(groups), 0);
  for (int64_t o : L.order) {
    if (o < 0 || o >= groups || seen[static_cast<size_t>(o)]) {
      r->passed = false, r->note = "order is not a permutation";
      return;
    }
    seen[static_cast<size_t>(o)] = 1;
  }
  for (size_t k = 0; k + 1 < L.frame_bounds.size(); ++k) {
    const int64_t lo = L.frame_bounds[k] / unit, hi = L.frame_bounds[k + 1] / unit;
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t o = L.order[static_cast<size_t>(i)];
      if (o < lo || o >= hi) {
        r->passed = false, r->note = "frame " + std::to_string(k) + " is not contiguous in the new order";
        return;
      }
    }
    if (!std::binary_search(L.window_bounds.begin(), L.window_bounds.end(), L.frame_bounds[k + 1])) {
      r->passed = false, r->note = "frame boundary " + std::to_string(L.frame_bounds[k + 1]) + " splits a window";
      return;
    }
  }
  for (size_t k = 0; k + 1 < L.window_bounds.size(); ++k) {
    if (L.window_bounds[k + 1] <= L.window_bounds[k] || L.window_bounds[k + 1] % unit != 0) {
      r->passed = false, r->note = "window bounds not strictly increasing in whole groups";
      return;
    }
  }
  if (L.window_bounds.back() != groups * unit || L.frame_bounds.back() != groups * unit) {
    r->passed = false, r->note = "bounds do not end at the patch count";
  }
}

Result layout_case(const Grids& grids, int64_t window_size, int64_t patch, int64_t merge) {
  Result r = make("layout", describe(grids, window_size, patch, merge));
  const RefLayout ref = reference(grids, window_size, patch, merge);
  const models::WindowLayout L = models::window_layout(grids, window_size, patch, merge);
  expect_equal(L.order, ref.window_index, "order", &r);
  expect_equal(L.window_bounds, ref.cu_window, "window_bounds", &r);
  expect_equal(L.frame_bounds, ref.cu_frames, "frame_bounds", &r);
  check_invariants(L, merge * merge, &r);
  return r;
}

// The hand-computed example documented in vision_window.cpp.
Result known_case() {
  Result r = make("layout", "hand-computed 2x4x6 ws=56 p=14 m=2");
  const models::WindowLayout L = models::window_layout({{2, 4, 6}}, 56, 14, 2);
  expect_equal(L.order, {0, 1, 3, 4, 2, 5, 6, 7, 9, 10, 8, 11}, "order", &r);
  expect_equal(L.window_bounds, {0, 16, 24, 40, 48}, "window_bounds", &r);
  expect_equal(L.frame_bounds, {0, 24, 48}, "frame_bounds", &r);
  return r;
}

// The tower's moves, as it makes them: a rows-op Gather (dst[i] = src[order[i]]) or Scatter
// (dst[order[i]] = src[i]) of groups of group_rows x cols floats.
void permute_groups(const float* src, float* dst, int64_t groups, int64_t group_rows, int64_t cols,
                    const std::vector<int64_t>& order, bool inverse) {
  ops::RowsParams p;
  p.kind = inverse ? ops::RowsKind::Scatter : ops::RowsKind::Gather;
  p.n = groups;
  p.cols = group_rows * cols;
  p.dst = dst;
  p.ldd = p.cols;
  p.src = src;
  p.lds = p.cols;
  p.indexed_rows = groups;
  p.idx = order.data();
  p.idx_dtype = DType::I64;
  if (static_cast<int64_t>(order.size()) != groups) fail(ErrorCode::Input, "order has the wrong length");
  ops::rows(p, ExecContext(*default_pool()));
}

// The tower's data movement: rows gathered per group by window_index before the blocks
// (x.reshape(seq/unit, unit, -1)[window_index]), and merger rows put back with
// argsort(window_index); plus inverse(forward(x)) == x at patch granularity.
Result permute_case(const Grids& grids, int64_t window_size, int64_t cols, Rng& rng) {
  const int64_t patch = 14, merge = 2, unit = 4;
  Result r = make("permute", describe(grids, window_size, patch, merge) + " cols=" + std::to_string(cols));
  const models::WindowLayout L = models::window_layout(grids, window_size, patch, merge);
  const int64_t groups = static_cast<int64_t>(L.order.size()), n = groups * unit;
  std::vector<float> x(static_cast<size_t>(n * cols));
  for (auto& v : x) v = rng.normal();

  Guarded<float> fwd(static_cast<size_t>(n * cols)), back(static_cast<size_t>(n * cols));
  permute_groups(x.data(), fwd.data(), groups, unit, cols, L.order, false);
  std::vector<float> want(x.size());
  for (int64_t i = 0; i < groups; ++i)
    for (int64_t u = 0; u < unit; ++u)
      for (int64_t c = 0; c < cols; ++c)
        want[static_cast<size_t>((i * unit + u) * cols + c)] =
            x[static_cast<size_t>((L.order[static_cast<size_t>(i)] * unit + u) * cols + c)];
  compare_exact(fwd.data(), want.data(), want.size(), &r);
  if (!r.passed) r.note = "forward gather: " + r.note;

  permute_groups(fwd.data(), back.data(), groups, unit, cols, L.order, true);
  if (r.passed) {
    compare_exact(back.data(), x.data(), x.size(), &r);
    if (!r.passed) r.note = "inverse(forward(x)) != x: " + r.note;
  }

  // Merger output: one row per group in window order; HF restores it with argsort(window_index).
  std::vector<int64_t> rev(static_cast<size_t>(groups));
  std::iota(rev.begin(), rev.end(), int64_t{0});
  std::sort(rev.begin(), rev.end(), [&](int64_t a, int64_t b) { return L.order[static_cast<size_t>(a)] < L.order[static_cast<size_t>(b)]; });
  std::vector<float> merged(static_cast<size_t>(groups * cols));
  for (auto& v : merged) v = rng.normal();
  Guarded<float> restored(merged.size());
  permute_groups(merged.data(), restored.data(), groups, 1, cols, L.order, true);
  std::vector<float> want_m(merged.size());
  for (int64_t j = 0; j < groups; ++j)
    for (int64_t c = 0; c < cols; ++c)
      want_m[static_cast<size_t>(j * cols + c)] = merged[static_cast<size_t>(rev[static_cast<size_t>(j)] * cols + c)];
  if (r.passed) {
    compare_exact(restored.data(), want_m.data(), want_m.size(), &r);
    if (!r.passed) r.note = "argsort restore: " + r.note;
  }
  r.guards_ok = fwd.intact() && back.intact() && restored.intact();
  return r;
}

// A throw from the code under test is a failed case, not a crashed suite.
template <class F>
Result guarded(const std::string& variant, const std::string& shape, F&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    Result r = make(variant, shape);
    r.passed = false;
    r.note = std::string("threw: ") + e.what();
    return r;
  }
}

template <class F>
Result rejects(const std::string& what, F&& fn) {
  Result r = make("check", what);
  try {
    fn();
    r.passed = false;
    r.note = "accepted";
  } catch (const Error& e) {
    r.passed = e.code() == ErrorCode::Input;
    if (!r.passed) r.note = "wrong error code";
  }
  return r;
}

std::vector<Result> check_cases() {
  std::vector<Result> out;
  out.push_back(rejects("odd grid height", [] { models::window_layout({{1, 5, 4}}, 112, 14, 2); }));
  out.push_back(rejects("zero frames", [] { models::window_layout({{0, 4, 4}}, 112, 14, 2); }));
  out.push_back(rejects("negative width", [] { models::window_layout({{1, 4, -4}}, 112, 14, 2); }));
  out.push_back(rejects("window smaller than a merged patch", [] { models::window_layout({{1, 4, 4}}, 27, 14, 2); }));
  out.push_back(rejects("merge 0", [] { models::window_layout({{1, 4, 4}}, 112, 14, 0); }));
  out.push_back(rejects("patch 0", [] { models::window_layout({{1, 4, 4}}, 112, 0, 2); }));
  out.push_back(rejects("huge grid", [] { models::window_layout({{1 << 20, 1 << 20, 1 << 20}}, 112, 14, 2); }));
  float a[8] = {}, b[8] = {};
  out.push_back(rejects("order too short", [&] { permute_groups(a, b, 2, 2, 2, {0}, false); }));
  out.push_back(rejects("scatter order repeats", [&] { permute_groups(a, b, 2, 2, 2, {1, 1}, true); }));
  out.push_back(rejects("order out of range", [&] { permute_groups(a, b, 2, 2, 2, {0, 2}, true); }));
  out.push_back(rejects("in place", [&] { permute_groups(a, a, 2, 2, 2, {1, 0}, false); }));
  out.push_back(rejects("null src", [&] { permute_groups(nullptr, b, 2, 2, 2, {1, 0}, false); }));
  // Empty input is valid: nothing to lay out.
  Result e = make("layout", "no grids");
  const models::WindowLayout L = models::window_layout({}, 112, 14, 2);
  e.passed = L.order.empty() && L.window_bounds == std::vector<int64_t>{0} && L.frame_bounds == std::vector<int64_t>{0};
  out.push_back(e);
  return out;
}

Grids random_grids(Rng& rng, int64_t merge, int64_t max_side) {
  Grids g(static_cast<size_t>(rng.range(1, 4)));
  for (auto& x : g) {
    x[0] = rng.range(0, 2) == 0 ? rng.range(2, 3) : 1;
    x[1] = merge * rng.range(1, max_side);
    x[2] = merge * rng.range(1, max_side);
  }
  return g;
}

}  // namespace

std::vector<Result> parity_vision_window(uint64_t seed) {
  Rng rng(seed);
  std::vector<Result> results = check_cases();
  results.push_back(guarded("layout", "hand-computed", [] { return known_case(); }));
  // Fixed cases: Qwen2.5-VL's real geometry (ws 112 -> 4 x 4 merged windows), sides exactly a
  // multiple of the window (HF's extra empty windows), single-group images, a video.
  struct Fixed {
    Grids grids;
    int64_t ws, patch, merge;
  };
  const Fixed fixed[] = {
      {{{1, 2, 2}}, 112, 14, 2},
      {{{1, 16, 16}}, 112, 14, 2},
      {{{1, 8, 24}}, 112, 14, 2},
      {{{1, 36, 50}}, 112, 14, 2},
      {{{4, 18, 30}, {1, 2, 64}, {1, 64, 2}}, 112, 14, 2},
      {{{1, 10, 14}}, 28, 14, 2},   // 1 x 1 windows: order is the identity
      {{{2, 7, 9}}, 50, 16, 1},     // merge 1, window side 3
      {{{1, 12, 21}}, 130, 14, 3},  // merge 3, floored side 3
  };
  for (const Fixed& f : fixed) {
    results.push_back(guarded("layout", describe(f.grids, f.ws, f.patch, f.merge),
                              [&] { return layout_case(f.grids, f.ws, f.patch, f.merge); }));
  }
  const int64_t sizes[] = {28, 56, 84, 100, 112, 140, 224};
  for (int i = 0; i < 40; ++i) {
    const int64_t merge = i % 8 == 7 ? 1 : 2, patch = i % 5 == 4 ? 16 : 14;
    int64_t ws = sizes[rng.range(0, 6)];
    if (ws < merge * patch) ws = merge * patch;
    const Grids g = random_grids(rng, merge, 23);
    results.push_back(guarded("layout", describe(g, ws, patch, merge), [&] { return layout_case(g, ws, patch, merge); }));
  }
  for (int i = 0; i < 8; ++i) {
    const int64_t cols = i == 0 ? 1 : rng.range(1, 37);
    const Grids g = random_grids(rng, 2, 15);
    const int64_t ws = sizes[rng.range(0, 6)];
    results.push_back(guarded("permute", describe(g, ws, 14, 2), [&] { return permute_case(g, ws, cols, rng); }));
  }
  return results;
}

}  // namespace qvl::parity
