// vision_pos_embed parity: every variant of the op against a plain transcription of transformers'
// Qwen3VLVisionModel.fast_pos_embed_interpolate (corner index and weight lists over the h×w grid in
// row-major order, gather, weight, sum, repeat over t, then the merge-block permutation as an
// explicit 6-D index map), bit for bit. Also: torch.linspace's float32 values against an exact
// double emulation of its formula (catches a compiler fusing the multiply-add), the identity grid
// (h = w = side reproduces the table), and the input checks, which must reject before writing.
#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "ops/vision_pos_embed.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

using Grids = std::vector<std::array<int64_t, 3>>;

// Every float32 product and sum rounded on its own, as the separate torch ops do.
float r32(float v) {
  volatile float x = v;
  return x;
}

// torch.linspace(start, end, steps) on the CPU in float32 (aten linspace_kernel, scalar path).
std::vector<float> ref_linspace(float start, float end, int64_t steps) {
  std::vector<float> v(static_cast<size_t>(steps));
  if (steps == 1) {
    v[0] = start;
    return v;
  }
  const float step = r32(r32(end - start) / static_cast<float>(steps - 1));
  for (int64_t i = 0; i < steps; ++i) {
    v[i] = i < steps / 2 ? r32(start + r32(step * static_cast<float>(i)))
                         : r32(end - r32(step * static_cast<float>(steps - i - 1)));
  }
  return v;
}

struct Table {
  DType dtype;
  int64_t n, hidden;
  std::vector<float> f;       // the values as float32 (exact upcast)
  std::vector<uint16_t> h;    // the stored halves for BF16/F16
  const void* ptr() const { return dtype == DType::F32 ? static_cast<const void*>(f.data()) : h.data(); }
};

// The op's parameters for a contiguous table and output.
ops::VisionPosEmbedParams params(const Table& t, const Grids& grids, int64_t merge, float* out) {
  ops::VisionPosEmbedParams p;
  p.table = t.ptr();
  p.table_dtype = t.dtype;
  p.table_rows = t.n;
  p.hidden = t.hidden;
  p.ldt = t.hidden;
  p.grids = grids.empty() ? nullptr : grids.front().data();
  p.n_grids = static_cast<int64_t>(grids.size());
  p.merge = merge;
  p.out = out;
  p.ldo = t.hidden;
  return p;
}

Table make_table(DType dt, int64_t n, int64_t hidden, Rng& rng) {
  Table t{dt, n, hidden, {}, {}};
  t.f.resize(static_cast<size_t>(n * hidden));
  if (dt != DType::F32) t.h.resize(t.f.size());
  for (size_t i = 0; i < t.f.size(); ++i) {
    const float v = 0.1f * rng.normal();
    if (dt == DType::F32) {
      t.f[i] = v;
    } else if (dt == DType::BF16) {
      t.h[i] = f32_to_bf16(v), t.f[i] = bf16_to_f32(t.h[i]);
    } else {
      t.h[i] = f32_to_f16(v), t.f[i] = f16_to_f32(t.h[i]);
    }
  }
  return t;
}

// The Python, step by step, on the float32 table.
std::vector<float> reference(const Table& tab, const Grids& grids, int64_t m) {
  const int64_t side = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(tab.n))));
  const int64_t E = tab.hidden;
  std::vector<int64_t> idx[4];
  std::vector<float> wt[4];
  for (const auto& g : grids) {
    const int64_t h = g[1], w = g[2];
    const std::vector<float> hi = ref_linspace(0.0f, static_cast<float>(side - 1), h);
    const std::vector<float> wi = ref_linspace(0.0f, static_cast<float>(side - 1), w);
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        const int64_t hf = static_cast<int32_t>(hi[y]), wf = static_cast<int32_t>(wi[x]);
        const int64_t hc = std::min(hf + 1, side - 1), wc = std::min(wf + 1, side - 1);
        const float dh = r32(hi[y] - static_cast<float>(hf)), dw = r32(wi[x] - static_cast<float>(wf));
        idx[0].push_back(hf * side + wf), wt[0].push_back(r32(r32(1.0f - dh) * r32(1.0f - dw)));
        idx[1].push_back(hf * side + wc), wt[1].push_back(r32(r32(1.0f - dh) * dw));
        idx[2].push_back(hc * side + wf), wt[2].push_back(r32(dh * r32(1.0f - dw)));
        idx[3].push_back(hc * side + wc), wt[3].push_back(r32(dh * dw));
      }
    }
  }
  const size_t P = idx[0].size();
  std::vector<float> sum(P * E);
  for (size_t p = 0; p < P; ++p) {
    for (int64_t c = 0; c < E; ++c) {
      float s = r32(tab.f[idx[0][p] * E + c] * wt[0][p]);
      for (int k = 1; k < 4; ++k) s = r32(s + r32(tab.f[idx[k][p] * E + c] * wt[k][p]));
      sum[p * E + c] = s;
    }
  }
  std::vector<float> out;
  size_t split = 0;
  for (const auto& g : grids) {
    const int64_t t = g[0], h = g[1], w = g[2];
    // repeat(t, 1).view(t, h/m, m, w/m, m, E).permute(0, 1, 3, 2, 4, 5).flatten(0, 4)
    for (int64_t f = 0; f < t; ++f)
      for (int64_t a = 0; a < h / m; ++a)
        for (int64_t b = 0; b < w / m; ++b)
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < m; ++j) {
              const size_t src = split + static_cast<size_t>((a * m + i) * w + (b * m + j));
              out.insert(out.end(), sum.begin() + src * E, sum.begin() + (src + 1) * E);
            }
    split += static_cast<size_t>(h * w);
  }
  return out;
}

struct Case {
  int64_t side, hidden, merge;
  DType dtype;
  Grids grids;
};

std::string describe(const Case& c) {
  std::string s = "side=" + std::to_string(c.side) + " hidden=" + std::to_string(c.hidden) + " merge=" +
                  std::to_string(c.merge) + " table=" + dtype_name(c.dtype) + " grids=";
  for (const auto& g : c.grids) {
    s += "(" + std::to_string(g[0]) + "," + std::to_string(g[1]) + "," + std::to_string(g[2]) + ")";
  }
  return s;
}

std::vector<Case> cases() {
  return {
      {48, 32, 2, DType::BF16, {{1, 16, 16}}},                      // the fixture's image
      {48, 32, 2, DType::F32, {{4, 6, 8}}},                         // the fixture's video
      {48, 33, 2, DType::F32, {{1, 2, 2}, {1, 2, 4}, {2, 4, 2}}},   // h or w of 2
      {48, 17, 2, DType::BF16, {{1, 100, 96}, {3, 22, 14}}},        // grids larger than the side
      {48, 8, 2, DType::F16, {{1, 15 * 2, 23 * 2}, {1, 62, 58}}},   // linspace sizes where FMA would differ
      {7, 3, 1, DType::F32, {{1, 1, 1}, {2, 1, 5}, {1, 9, 1}}},     // single samples (steps = 1)
      {5, 1, 3, DType::F16, {{2, 9, 12}, {1, 3, 3}}},               // merge 3
      {1, 5, 2, DType::F32, {{1, 4, 6}}},                           // one-row table
      {2, 31, 2, DType::BF16, {{5, 2, 2}, {1, 8, 10}}},
      {32, 64, 2, DType::F32, {{2, 34, 30}, {1, 2, 64}}},
  };
}

Result expect_reject(const char* what, const ops::VisionPosEmbedParams& p, Guarded<float>* buf) {
  Result r;
  r.op = "vision_pos_embed", r.variant = "check", r.shape = what;
  try {
    ops::vision_pos_embed(p, ExecContext(*default_pool()));
    r.passed = false, r.note = "accepted";
  } catch (const Error& e) {
    r.passed = e.code() == ErrorCode::Input;
    if (!r.passed) r.note = std::string("wrong code: ") + e.what();
  }
  bool untouched = buf->intact();
  for (size_t i = 0; i < buf->size(); ++i) untouched = untouched && is_unwritten((*buf)[i]);
  r.guards_ok = untouched;
  if (!untouched) r.note = "wrote before rejecting";
  return r;
}

std::vector<Result> check_cases(Rng& rng) {
  std::vector<Result> res;
  Table sq = make_table(DType::F32, 16, 4, rng);
  Table odd = make_table(DType::F32, 15, 4, rng);
  Guarded<float> buf(4 * 4 * 4, unwritten());
  const Grids ok = {{1, 2, 2}};
  res.push_back(expect_reject("N=15 not square", params(odd, ok, 2, buf.data()), &buf));
  ops::VisionPosEmbedParams p = params(sq, ok, 2, buf.data());
  p.table_dtype = DType::I32;
  res.push_back(expect_reject("I32 table", p, &buf));
  p = params(sq, ok, 2, buf.data()), p.ldt = 3;
  res.push_back(expect_reject("ldt < hidden", p, &buf));
  p = params(sq, ok, 2, buf.data()), p.ldo = 3;
  res.push_back(expect_reject("ldo < hidden", p, &buf));
  p = params(sq, ok, 2, buf.data()), p.table = nullptr;
  res.push_back(expect_reject("null table", p, &buf));
  p = params(sq, ok, 2, buf.data()), p.table_rows = 0;
  res.push_back(expect_reject("empty table", p, &buf));
  const Grids h3 = {{1, 2, 2}, {1, 3, 2}}, t0 = {{0, 2, 2}}, wneg = {{1, 2, -2}};
  res.push_back(expect_reject("h=3 not a multiple of merge 2", params(sq, h3, 2, buf.data()), &buf));
  res.push_back(expect_reject("t=0", params(sq, t0, 2, buf.data()), &buf));
  res.push_back(expect_reject("w=-2", params(sq, wneg, 2, buf.data()), &buf));
  res.push_back(expect_reject("merge=0", params(sq, ok, 0, buf.data()), &buf));
  res.push_back(expect_reject("null out", params(sq, ok, 2, nullptr), &buf));
  p = params(sq, ok, 2, buf.data()), p.grids = nullptr;
  res.push_back(expect_reject("null grids", p, &buf));
  const Grids huge = {{int64_t{1} << 40, int64_t{1} << 20, int64_t{1} << 20}};
  res.push_back(expect_reject("overflowing grid", params(sq, huge, 2, buf.data()), &buf));
  // out overlapping the table: a 4 x 4 output written over the table itself.
  p = params(sq, ok, 2, sq.f.data());
  res.push_back(expect_reject("out overlaps the table", p, &buf));
  Result r;
  r.op = "vision_pos_embed", r.variant = "check", r.shape = "no grids: nothing written";
  try {
    ops::vision_pos_embed(params(sq, {}, 2, nullptr), ExecContext(*default_pool()));
    const Grids two = {{3, 4, 6}, {1, 2, 2}};
    r.passed = ops::vision_pos_embed_rows(nullptr, 0, 2) == 0 && ops::vision_pos_embed_rows(two.front().data(), 2, 2) == 76;
  } catch (const Error& e) {
    r.passed = false, r.note = e.what();
  }
  res.push_back(r);
  return res;
}

// linspace_f32 against the formula evaluated in double and rounded once per float32 op: a
// product of two floats is exact in double, and so are these same-sign sums and differences.
Result linspace_case() {
  Result r;
  r.op = "vision_pos_embed", r.variant = "linspace", r.shape = "end in {0,1,47,63,95}, n=1..700";
  const float ends[] = {0.0f, 1.0f, 47.0f, 63.0f, 95.0f};
  for (float end : ends) {
    for (int64_t n = 1; n <= 700 && r.passed; ++n) {
      std::vector<float> got(static_cast<size_t>(n));
      ops::linspace_f32(0.0f, end, n, got.data());
      const float step = n > 1 ? static_cast<float>(static_cast<double>(end) / static_cast<double>(n - 1)) : 0.0f;
      for (int64_t i = 0; i < n; ++i) {
        float want;
        if (n == 1) {
          want = 0.0f;
        } else if (i < n / 2) {
          want = static_cast<float>(static_cast<double>(static_cast<float>(double(step) * double(i))));
        } else {
          const float p = static_cast<float>(double(step) * double(n - 1 - i));
          want = static_cast<float>(double(end) - double(p));
        }
        if (std::memcmp(&want, &got[i], 4) != 0) {
          r.passed = false, r.max_abs_err = std::fabs(double(want) - double(got[i]));
          r.note = "end=" + std::to_string(end) + " n=" + std::to_string(n) + " i=" + std::to_string(i);
          break;
        }
      }
    }
  }
  return r;
}

// h = w = side samples every table row exactly once with weight 1.
Result identity_case(Rng& rng) {
  Result r;
  r.op = "vision_pos_embed", r.variant = "identity", r.shape = "side=48 hidden=32 grid=(2,48,48) merge=2";
  Table tab = make_table(DType::BF16, 48 * 48, 32, rng);
  std::vector<float> out(2 * 48 * 48 * 32);
  ops::vision_pos_embed(params(tab, {{2, 48, 48}}, 2, out.data()), ExecContext(*default_pool()));
  size_t k = 0;
  for (int f = 0; f < 2; ++f)
    for (int a = 0; a < 24; ++a)
      for (int b = 0; b < 24; ++b)
        for (int i = 0; i < 2; ++i)
          for (int j = 0; j < 2; ++j, k += 32) {
            const float* want = &tab.f[static_cast<size_t>(((a * 2 + i) * 48 + b * 2 + j) * 32)];
            if (r.passed && std::memcmp(want, &out[k], 32 * 4) != 0) {
              r.passed = false, r.note = "row " + std::to_string(k / 32) + " is not table row";
            }
          }
  return r;
}

}  // namespace

std::vector<Result> parity_vision_pos_embed(uint64_t seed) {
  Rng rng(seed);
  ThreadPool one(1), three(3);
  ThreadPool* pools[] = {default_pool().get(), &one, &three};
  std::vector<Result> results;
  int index = 0;
  for (const Case& c : cases()) {
    Table tab = make_table(c.dtype, c.side * c.side, c.hidden, rng);
    const std::vector<float> want = reference(tab, c.grids, c.merge);
    for (const auto& v : ops::vision_pos_embed_family().runnable()) {
      ThreadPool& pool = *pools[index++ % 3];
      // Odd cases write with a padded row stride: the padding must stay unwritten.
      const int64_t ldo = c.hidden + (index % 2 ? 3 : 0), rows = static_cast<int64_t>(want.size()) / c.hidden;
      Guarded<float> out(static_cast<size_t>(rows * ldo), unwritten());
      Result r;
      r.op = "vision_pos_embed", r.variant = v.name;
      r.device = device_name(v.device);
      r.shape = describe(c) + (ldo > c.hidden ? " strided" : "") + " threads=" + std::to_string(pool.size());
      r.tolerance = 0;
      try {
        ops::VisionPosEmbedParams p = params(tab, c.grids, c.merge, out.data());
        p.ldo = ldo;
        ops::check_vision_pos_embed(p);
        v.fn(p, ExecContext(pool));
        bool pad_ok = true;
        for (int64_t row = 0; row < rows && r.passed; ++row) {
          for (int64_t k = 0; k < c.hidden; ++k) {
            if (std::memcmp(&want[static_cast<size_t>(row * c.hidden + k)], &out[static_cast<size_t>(row * ldo + k)], 4) != 0) {
              r.passed = false, r.max_abs_err = 1;
              r.note = "bits differ at row " + std::to_string(row) + " element " + std::to_string(k);
              break;
            }
          }
          for (int64_t k = c.hidden; row + 1 < rows && k < ldo; ++k) pad_ok = pad_ok && is_unwritten(out[static_cast<size_t>(row * ldo + k)]);
        }
        r.guards_ok = out.intact() && pad_ok;
        if (!pad_ok) r.note = "wrote into the row padding of out";
      } catch (const Error& e) {
        r.passed = false, r.note = e.what();
      }
      results.push_back(r);
    }
  }
  results.push_back(linspace_case());
  results.push_back(identity_case(rng));
  for (Result& r : check_cases(rng)) results.push_back(std::move(r));
  return results;
}

}  // namespace qvl::parity
