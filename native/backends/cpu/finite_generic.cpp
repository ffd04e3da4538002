// Non-finite scan over threads: a value is NaN or ±inf exactly when its exponent bits are all
// ones, so each piece tests masks branch-free (the compiler vectorises the OR-reduction) and only
// a piece that holds a bad value is searched for its first one. Pieces past an already-found
// index are skipped, so the answer is the first bad index whatever the scheduling.
#include <algorithm>
#include <atomic>
#include <cstring>

#include "ops/finite.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kPiece = 1 << 16;

template <class U>
int64_t first_in(const U* x, int64_t n, U mask) {
  U any = 0;
  for (int64_t i = 0; i < n; ++i) any |= static_cast<U>(((x[i] & mask) == mask) ? 1 : 0);
  if (!any) return -1;
  for (int64_t i = 0; i < n; ++i) {
    if ((x[i] & mask) == mask) return i;
  }
  return -1;
}

int64_t scan(const void* x, DType t, int64_t begin, int64_t len) {
  if (t == DType::F32) return first_in(static_cast<const uint32_t*>(x) + begin, len, uint32_t{0x7f800000u});
  // float8_e4m3fn has no infinity: its NaNs are exactly the patterns with all 7 low bits set.
  if (t == DType::F8E4M3) return first_in(static_cast<const uint8_t*>(x) + begin, len, uint8_t{0x7fu});
  const uint16_t mask = t == DType::BF16 ? 0x7f80u : 0x7c00u;
  return first_in(static_cast<const uint16_t*>(x) + begin, len, mask);
}

}  // namespace

int64_t finite_generic(const ops::FiniteParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  const int64_t pieces = (p.n + kPiece - 1) / kPiece;
  std::atomic<int64_t> first{p.n};
  pool.parallel_for(pieces, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t begin = k * kPiece;
      if (begin >= first.load(std::memory_order_relaxed)) return;
      const int64_t at = scan(p.x, p.dtype, begin, std::min(kPiece, p.n - begin));
      if (at < 0) continue;
      int64_t cur = first.load(std::memory_order_relaxed);
      while (begin + at < cur && !first.compare_exchange_weak(cur, begin + at)) {
      }
      return;
    }
  });
  const int64_t f = first.load();
  return f == p.n ? -1 : f;
}

}  // namespace qvl::cpu
