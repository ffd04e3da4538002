// matmul_group against one matmul() per part: the group must give the same bits (it runs the same
// variant on the same row runs, ops/matmul_group.h), in every weight format, with parts of awkward
// sizes (1, 5, 17, 37, 300 rows: tails of the 4- and 16-row kernel blocks and of the group's
// 16-row pieces), empty parts, bias on some, strided rows, 1 to 4 rows (one job) and 0 and 7
// (one matmul() per part), on the default pool and on an odd-sized one.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/cancel.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/matmul_group.h"
#include "tests/parity.h"
#include "tests/parity_matmul_cases.h"

namespace qvl::parity {

namespace {

struct GroupCase {
  int64_t M;
  std::vector<int64_t> N;  // one entry per part
};

const GroupCase kCases[] = {
    {1, {37, 5, 300}}, {1, {1536, 256, 256}}, {2, {17, 64}}, {3, {300, 1}}, {4, {5, 0, 37}},
    {1, {16, 16, 16, 16, 16}}, {1, {1}}, {0, {17, 5}}, {7, {37, 17}},
};

// K for format f: a few whole blocks, an odd count of them for the dense formats' 1-blocks.
int64_t k_for(WeightFormat f) {
  const int64_t block = weight_format_traits(f).block;
  return block == 1 ? 67 : block * (block >= 128 ? 2 : 7);
}

Result group_case(const GroupCase& c, WeightFormat f, bool mixed, ThreadPool& pool, Rng& rng, int index) {
  const int64_t K = k_for(f);
  std::vector<MatmulProblem> probs;
  std::string desc = "M=" + std::to_string(c.M) + " K=" + std::to_string(K) + " N=";
  for (size_t i = 0; i < c.N.size(); ++i) {
    // Mixed: every other part in q8 (a layer's projections may differ in format).
    const WeightFormat fi = mixed && i % 2 == 1 ? WeightFormat::Q8 : f;
    const int64_t Ki = weight_format_traits(fi).block == weight_format_traits(f).block ? K : k_for(fi);
    probs.push_back(make_matmul_problem({c.M, Ki, c.N[i]}, fi, (index + i) % 2 == 0, (index + i) % 3 != 0, rng));
    desc += (i ? "," : "") + std::to_string(c.N[i]) + (fi != f ? "(q8)" : "");
  }
  Result r;
  r.op = "matmul_group", r.variant = "group", r.device = "cpu";
  r.format = weight_format_name(f);
  r.shape = desc + " w=" + weight_format_name(f) + " threads=" + std::to_string(pool.size());
  run_case(r, [&] {
    std::vector<ops::MatmulParams> parts;
    std::vector<std::unique_ptr<Guarded<float>>> want, got;
    for (MatmulProblem& pr : probs) {
      ops::MatmulParams p = pr.p;
      const size_t ext = y_extent(p);
      want.push_back(std::make_unique<Guarded<float>>(ext));
      got.push_back(std::make_unique<Guarded<float>>(ext));
      fill_unwritten(*want.back());
      fill_unwritten(*got.back());
      p.y = ext ? want.back()->data() : nullptr;
      ops::matmul(p, ExecContext(pool));
      p.y = ext ? got.back()->data() : nullptr;
      parts.push_back(p);
    }
    ops::matmul_group(parts.data(), static_cast<int64_t>(parts.size()), ExecContext(pool));
    for (size_t i = 0; i < parts.size() && r.passed; ++i) {
      const Guarded<float>& g = *got[i];
      if (g.size() > 0 && std::memcmp(g.data(), want[i]->data(), g.size() * sizeof(float)) != 0) {
        r.passed = false;
        r.max_abs_err = 1;
        r.note = "part " + std::to_string(i) + " differs from its own matmul() (bits)";
      }
      r.guards_ok = r.guards_ok && g.intact() && padding_intact(parts[i], g);
    }
  });
  return r;
}

}  // namespace

std::vector<Result> parity_matmul_group(uint64_t seed) {
  Rng rng(seed);
  const std::shared_ptr<ThreadPool> dflt = default_pool();
  ThreadPool three(3);
  std::vector<Result> results;
  int index = 0;
  for (const GroupCase& c : kCases) {
    for (const WeightFormat f : kWeightFormats) {
      ThreadPool& pool = index % 2 ? three : *dflt;
      results.push_back(group_case(c, f, false, pool, rng, index++));
    }
    results.push_back(group_case(c, WeightFormat::Q4, true, index % 2 ? three : *dflt, rng, index));
    ++index;
  }
  // A bad part is refused (E_INPUT); a set token stops the group as it stops matmul() (E_ABORTED).
  MatmulProblem a = make_matmul_problem({1, 32, 5}, WeightFormat::F32, false, false, rng);
  MatmulProblem b = make_matmul_problem({1, 32, 7}, WeightFormat::Q4, false, false, rng);
  std::vector<float> ya(5), yb(7);
  a.p.y = ya.data(), b.p.y = yb.data();
  ops::MatmulParams bad[2] = {a.p, b.p};
  bad[1].ldy = 3;
  results.push_back(expect_rejected("matmul_group", "a part with ldy < N", [&] { ops::matmul_group(bad, 2, ExecContext(three)); }));
  CancelToken aborted;
  aborted.cancel(CancelToken::Reason::Aborted);
  ops::MatmulParams stopped[2] = {a.p, b.p};
  stopped[1].cancel = &aborted;
  results.push_back(expect_rejected("matmul_group", "a part with a set cancel token",
                                    [&] { ops::matmul_group(stopped, 2, ExecContext(three)); }, ErrorCode::Aborted));
  return results;
}

}  // namespace qvl::parity
