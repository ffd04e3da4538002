// Timed row quantization for `npm run bench`: one quantize_row variant over a weight-sized block
// of rows, single-threaded (the load runs it row-parallel, so per-thread speed is what scales).
#include <algorithm>
#include <chrono>
#include <vector>

#include "core/error.h"
#include "core/weight_quant.h"
#include "ops/quantize_row.h"
#include "tests/bench.h"

namespace qvl::bench {

double quantize_row_seconds(const QuantizeRowCase& c) {
  const char* who = "benchQuantizeRow";
  QVL_CHECK(c.format == "q8" || c.format == "q4", Input, std::string(who) + ": format must be 'q8' or 'q4' (got '" + c.format + "')");
  const WeightFormat f = c.format == "q8" ? WeightFormat::Q8 : WeightFormat::Q4;
  QVL_CHECK(c.rows >= 1 && c.rows <= 65536 && c.n >= 32 && c.n <= (int64_t{1} << 20), Input,
            std::string(who) + ": rows must be in [1, 65536] and n in [32, 2^20]");
  QVL_CHECK(c.group >= kQuantBlock && c.group % kQuantBlock == 0 && c.n % c.group == 0, Input,
            std::string(who) + ": group must be a multiple of 32 dividing n");
  QVL_CHECK(c.iters >= 1 && c.iters <= 1000, Input, std::string(who) + ": iters must be in [1, 1000]");
  const auto& variant = find_variant(ops::quantize_row_family(), c.variant, who);
  std::vector<float> src(static_cast<size_t>(c.rows * c.n));
  fill_values(src.data(), src.size(), 17);
  for (float& v : src) v *= 0.02f;  // weight-sized
  const int64_t groups = c.n / c.group;
  std::vector<uint8_t> codes(static_cast<size_t>(c.rows * c.n)), zeros(static_cast<size_t>(c.rows * q4_zero_bytes(groups)));
  std::vector<uint16_t> scales(static_cast<size_t>(c.rows * groups));
  const auto pass = [&] {
    int64_t bad = -1;
    for (int64_t r = 0; r < c.rows; ++r) {
      ops::QuantizeRowParams p;
      p.format = f, p.n = c.n, p.group = c.group, p.src = src.data() + r * c.n, p.dst = codes.data() + r * c.n;
      p.scales = scales.data() + r * groups, p.zeros = f == WeightFormat::Q4 ? zeros.data() + r * q4_zero_bytes(groups) : nullptr;
      bad = std::max(bad, variant.fn(p));
    }
    QVL_CHECK(bad < 0, Native, std::string(who) + ": a bench row overflowed its scale");
  };
  pass();  // warm-up
  double best = 1e30;
  for (int i = 0; i < c.iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    pass();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace qvl::bench
