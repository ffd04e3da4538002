// The memory-read floor for `npm run bench`: every pool thread streams its share of one owned
// buffer (larger than the last-level cache), as a decode matmul streams its weights.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>

#include "core/error.h"
#include "core/read_stream.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "tests/bench.h"

namespace qvl::bench {

double read_seconds(int64_t bytes, int iters) {
  QVL_CHECK(bytes >= (int64_t{1} << 20) && bytes <= (int64_t{4} << 30), Input, "benchRead: bytes must be in [1 MiB, 4 GiB]");
  QVL_CHECK(iters >= 1 && iters <= 1000, Input, "benchRead: iters must be in [1, 1000]");
  Tensor buf = Tensor::empty(DType::U8, {bytes});
  unsigned char* p = buf.data<unsigned char>();
  const int64_t words = bytes / 8;
  const std::shared_ptr<ThreadPool> pool = default_pool();
  // Written first, on the threads that will read it: a large owned buffer is fresh anonymous
  // memory, whose unwritten pages all map the one shared zero page and would read from cache.
  pool->parallel_for(bytes, int64_t{1} << 21, [&](int64_t b, int64_t e) { std::memset(p + b, 1, static_cast<size_t>(e - b)); });
  std::atomic<uint64_t> sink{0};
  const int64_t grain = std::max<int64_t>(1 << 16, words / (pool->size() * 4));
  auto once = [&] {
    pool->parallel_for(words, grain, [&](int64_t b, int64_t e) { sink += read_stream(p + 8 * b, static_cast<size_t>(e - b) * 8); });
  };
  once();  // warm-up
  double best = 1e30;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    once();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return sink.load() == 1 ? best * 1.0000001 : best;  // the branch keeps the sum alive
}

}  // namespace qvl::bench
