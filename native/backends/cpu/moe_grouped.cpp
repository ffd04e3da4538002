// MoE through the matmul op: route in fp32, group the (token, slot) pairs by expert, then per
// active expert one matmul over all its tokens for gate+up, SwiGLU in place, one matmul for down,
// and finally a weighted sum per token in slot order (deterministic whatever the threading).
#include <algorithm>
#include <cmath>
#include <exception>
#include <mutex>
#include <vector>

#include "backends/cpu/call_scratch.h"
#include "ops/matmul.h"
#include "ops/moe.h"

namespace qvl::cpu {

namespace {

// Same ranking as the reference: larger logit first, of equal logits the lower expert id first
// (strict comparisons keep the earlier id in front). E is small (<= a few hundred), so an
// insertion into a k-long sorted list beats any sort.
void route(const ops::MoeParams& p, int32_t* ids, float* wts) {
  const int64_t E = p.E, k = p.k;
  std::vector<int32_t> best(static_cast<size_t>(k));
  std::vector<float> ex(static_cast<size_t>(k));
  for (int64_t t = 0; t < p.T; ++t) {
    const float* lg = p.router_logits + t * p.ld_logits;
    int64_t n = 0;
    for (int64_t e = 0; e < E; ++e) {
      const float v = lg[e];
      int64_t pos;
      if (n < k) {
        pos = n++;
      } else if (v > lg[best[k - 1]]) {
        pos = k - 1;
      } else {
        continue;
      }
      while (pos > 0 && lg[best[pos - 1]] < v) {
        best[pos] = best[pos - 1];
        --pos;
      }
      best[pos] = static_cast<int32_t>(e);
    }
    const float mx = lg[best[0]];
    float sel = 0;
    for (int64_t j = 0; j < k; ++j) sel += (ex[j] = std::exp(lg[best[j]] - mx));
    float denom = sel;
    if (!p.norm_topk_prob) {
      denom = 0;
      for (int64_t e = 0; e < E; ++e) denom += std::exp(lg[e] - mx);
    }
    for (int64_t j = 0; j < k; ++j) {
      ids[t * k + j] = best[j];
      wts[t * k + j] = ex[j] / denom;
    }
  }
}

// One expert over its c routed rows (rows[r] = t*k + slot); writes y [c, H].
void run_expert(const ops::MoeParams& p, int64_t e, const int64_t* rows, int64_t c, float* y, const ExecContext& ctx) {
  const int64_t H = p.H, I = p.I, k = p.k;
  thread_local std::vector<float> xs, g;
  // Decode and k == E route consecutive tokens: read them where they are.
  const int64_t t0 = rows[0] / k;
  bool consecutive = true;
  for (int64_t r = 1; r < c && consecutive; ++r) consecutive = rows[r] / k == t0 + r;
  const float* xe = p.x + t0 * p.ldx;
  int64_t ldxe = p.ldx;
  if (!consecutive) {
    xs.resize(static_cast<size_t>(c * H));
    for (int64_t r = 0; r < c; ++r) std::copy_n(p.x + (rows[r] / k) * p.ldx, H, xs.data() + r * H);
    xe = xs.data();
    ldxe = H;
  }
  g.resize(static_cast<size_t>(c * 2 * I));

  ops::MatmulParams mm;
  mm.M = c;
  mm.N = 2 * I;
  mm.K = H;
  mm.x = xe;
  mm.ldx = ldxe;
  mm.w = ops::moe_expert_weight(p.gate_up, e, 2 * I);
  mm.y = g.data();
  mm.ldy = 2 * I;
  ops::matmul(mm, ctx);

  // SwiGLU in place: h[r][i] overwrites the gate half, so the down product reads g with stride 2I.
  for (int64_t r = 0; r < c; ++r) {
    float* gr = g.data() + r * 2 * I;
    for (int64_t i = 0; i < I; ++i) {
      const float a = gr[i];
      gr[i] = a / (1.0f + std::exp(-a)) * gr[I + i];
    }
  }

  mm.N = H;
  mm.K = I;
  mm.x = g.data();
  mm.ldx = 2 * I;
  mm.w = ops::moe_expert_weight(p.down, e, H);
  mm.y = y;
  mm.ldy = H;
  ops::matmul(mm, ctx);
}

}  // namespace

void moe_grouped(const ops::MoeParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  const int64_t T = p.T, E = p.E, k = p.k, H = p.H, n = T * k;
  if (T == 0) return;
  std::vector<int32_t> ids_own;
  std::vector<float> wts_own;
  int32_t* ids = p.topk_ids;
  float* wts = p.topk_weights;
  if (!ids) ids_own.resize(static_cast<size_t>(n)), ids = ids_own.data();
  if (!wts) wts_own.resize(static_cast<size_t>(n)), wts = wts_own.data();
  route(p, ids, wts);

  std::vector<int64_t> counts(static_cast<size_t>(E)), offsets(static_cast<size_t>(E + 1)), rows(static_cast<size_t>(n));
  ops::moe_group(ids, T, k, E, counts.data(), offsets.data(), rows.data());
  std::vector<int64_t> active;
  for (int64_t e = 0; e < E; ++e) if (counts[e] > 0) active.push_back(e);
  // Largest first, so the dynamic hand-out ends with the small jobs.
  std::stable_sort(active.begin(), active.end(), [&](int64_t a, int64_t b) { return counts[a] > counts[b]; });

  // Expert outputs in grouped order: expert e owns rows [offsets[e], offsets[e+1]).
  CallScratch scratch(ctx);
  float* y = scratch.take<float>(static_cast<size_t>(n * H), "moe: expert outputs");
  // The expert matmuls run under a nested context: unprofiled (this op's time includes them).
  const ExecContext mm_ctx = ctx.nested(pool);
  auto expert = [&](int64_t e) {
    run_expert(p, e, rows.data() + offsets[e], counts[e], y + offsets[e] * H, mm_ctx);
  };
  const int64_t na = static_cast<int64_t>(active.size());
  if (na >= 2 * pool.size()) {
    // Enough experts to keep every thread busy: one expert per task; the matmul inside a task runs
    // on that thread alone (the pool runs nested jobs inline).
    std::exception_ptr err;
    std::mutex mu;
    pool.parallel_for(na, 1, [&](int64_t a0, int64_t a1) {
      try {
        for (int64_t a = a0; a < a1; ++a) expert(active[a]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!err) err = std::current_exception();
      }
    });
    if (err) std::rethrow_exception(err);
  } else {
    // Few experts (decode on many threads, or one expert taking most tokens): thread each matmul.
    for (int64_t e : active) expert(e);
  }

  std::vector<int64_t> pos(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) pos[rows[i]] = i;
  pool.parallel_for(T, 16, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* o = p.out + t * p.ldo;
      const float* y0 = y + pos[t * k] * H;
      const float w0 = wts[t * k];
      for (int64_t h = 0; h < H; ++h) o[h] = w0 * y0[h];
      for (int64_t j = 1; j < k; ++j) {
        const float* yj = y + pos[t * k + j] * H;
        const float wj = wts[t * k + j];
        for (int64_t h = 0; h < H; ++h) o[h] += wj * yj[h];
      }
    }
  });
}

}  // namespace qvl::cpu
