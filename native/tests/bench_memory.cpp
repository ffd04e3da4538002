// The memory-read floor for `npm run bench`: every pool thread streams its share of one owned
// buffer (larger than the last-level cache), as a decode matmul streams its weights.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include "core/cpu.h"
#include "core/error.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "tests/bench.h"

namespace qvl::bench {

namespace {

// Sum of the 64-bit words in [b, e): kept (through an atomic) so the reads cannot be dropped.
uint64_t sum_words(const uint64_t* w, int64_t b, int64_t e) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    s0 += w[i], s1 += w[i + 1], s2 += w[i + 2], s3 += w[i + 3];
    s4 += w[i + 4], s5 += w[i + 5], s6 += w[i + 6], s7 += w[i + 7];
  }
  for (; i < e; ++i) s0 += w[i];
  return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

// The same with 32-byte loads and a prefetch 2 KiB ahead: the fastest plain read this CPU does.
QVL_TARGET_AVX2 uint64_t sum_words_avx2(const uint64_t* w, int64_t b, int64_t e) {
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = b;
  for (; i + 16 <= e; i += 16) {
    _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(w + i) + 2048), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(w + i) + 2112), _MM_HINT_T0);
    s0 = _mm256_add_epi64(s0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
    s1 = _mm256_add_epi64(s1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 4)));
    s2 = _mm256_add_epi64(s2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 8)));
    s3 = _mm256_add_epi64(s3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 12)));
  }
  alignas(32) uint64_t t[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3)));
  return t[0] + t[1] + t[2] + t[3] + sum_words(w, i, e);
}

}  // namespace

double read_seconds(int64_t bytes, int iters) {
  QVL_CHECK(bytes >= (int64_t{1} << 20) && bytes <= (int64_t{4} << 30), Input, "benchRead: bytes must be in [1 MiB, 4 GiB]");
  QVL_CHECK(iters >= 1 && iters <= 1000, Input, "benchRead: iters must be in [1, 1000]");
  Tensor buf = Tensor::empty(DType::U8, {bytes});  // zero-filled: every page is resident
  const uint64_t* w = buf.data<uint64_t>();
  const int64_t words = bytes / 8;
  const std::shared_ptr<ThreadPool> pool = default_pool();
  std::atomic<uint64_t> sink{0};
  const int64_t grain = std::max<int64_t>(1 << 16, words / (pool->size() * 4));
  const bool avx2 = isa_available(Isa::Avx2);
  auto once = [&] {
    pool->parallel_for(words, grain, [&](int64_t b, int64_t e) { sink += avx2 ? sum_words_avx2(w, b, e) : sum_words(w, b, e); });
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
