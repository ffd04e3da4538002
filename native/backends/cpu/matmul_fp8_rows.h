// The fp8 decode rows (M <= kFp8SmallM), compiled once per ISA: include inside the including
// file's anonymous namespace, after defining QVL_FP8_TARGET (the function target attribute),
// QVL_FP8_REGS (the ISA's vector register count) and, with that target:
//   struct Vec;                   // one f32 vector of Vec::kLanes lanes, as a member `v`
//   Vec vzero();
//   Vec vset1(float s);            // s in every lane
//   Vec vload(const float* x);    // kLanes activations
//   Vec vfma(Vec a, Vec b, Vec c); // a·b + c
//   void widen2(const uint8_t* w, Vec* lo, Vec* hi);  // 2·kLanes e4m3 bytes as values · 2^-8
//   float vsum(Vec v);
// (No includes: the including file includes <immintrin.h>, backends/cpu/matmul_fp8.h and
// backends/cpu/row_streams.h first.)
//
// float8_e4m3fn widens to f16 by moving its 7 exponent+mantissa bits up 7 places (exponent bias
// 7 against f16's 15: the f16 is the value times 2^-8, subnormals included) and vcvtph2ps widens
// that exactly; the 2^8 is folded into the block's scale (a power of two, so exact). NaN bytes are
// refused at load (WeightStore::check_finite), so they never reach here. check_matmul holds K to
// whole 128-blocks, so no step needs a mask.
#ifndef QVL_FP8_TARGET
#error "define QVL_FP8_TARGET, QVL_FP8_REGS and the vector functions before including matmul_fp8_rows.h"
#endif

// The same position of the stream's next row into L1, and of the row after into L2, once per
// cache line (each stream reads consecutive rows: rows_r). A fixed 1 KiB ahead left K = 1536 rows
// at 43% of the read floor on 2 Sapphire Rapids threads (1.5 KiB rows: the next row's first lines
// were never requested early). Integer arithmetic: the address may lie past the end of the
// weights (a prefetch never faults).
QVL_FP8_TARGET inline void prefetch_rows(const uint8_t* w, int64_t row_bytes) {
  const uintptr_t at = reinterpret_cast<uintptr_t>(w) + static_cast<uintptr_t>(row_bytes);
  _mm_prefetch(reinterpret_cast<const char*>(at), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(at + static_cast<uintptr_t>(row_bytes)), _MM_HINT_T1);
}

// R rows of x against NR weight rows (n0, n0 + rs, ..., n0 + (NR - 1)·rs) at a time: each x
// vector is loaded once for NR weight rows and the R·NR block sums are independent FMA chains
// (one chain alone is latency-bound).
template <int R, int NR>
QVL_FP8_TARGET void rows_rn(const ops::MatmulParams& p, int64_t m0, int64_t n0, int64_t rs) {
  constexpr int64_t kStep = 2 * Vec::kLanes;  // bytes per widen2
  static_assert(kFp8Block % kStep == 0 && 64 % kStep == 0);
  const int64_t blocks_per_row = p.w.ld / kFp8Block;
  const float* x[R];
  for (int r = 0; r < R; ++r) x[r] = p.x + (m0 + r) * p.ldx;
  const uint8_t* w[NR];
  const float* s[NR];
  for (int j = 0; j < NR; ++j) {
    w[j] = static_cast<const uint8_t*>(p.w.data) + (n0 + j * rs) * p.w.ld;
    s[j] = static_cast<const float*>(p.w.scales) + (n0 + j * rs) * blocks_per_row;
  }
  Vec total[R][NR];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NR; ++j) total[r][j] = vzero();
  for (int64_t k0 = 0, b = 0; k0 < p.K; k0 += kFp8Block, ++b) {
    Vec acc[R][NR];
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < NR; ++j) acc[r][j] = vzero();
    for (int64_t k = k0; k < k0 + kFp8Block; k += kStep) {
      Vec x_lo[R], x_hi[R];
      for (int r = 0; r < R; ++r) x_lo[r] = vload(x[r] + k), x_hi[r] = vload(x[r] + k + Vec::kLanes);
      if (k % 64 == 0) {
        for (int j = 0; j < NR; ++j) prefetch_rows(w[j] + k, p.w.ld);
      }
      for (int j = 0; j < NR; ++j) {
        Vec w_lo, w_hi;
        widen2(w[j] + k, &w_lo, &w_hi);
        for (int r = 0; r < R; ++r) acc[r][j] = vfma(x_hi[r], w_hi, vfma(x_lo[r], w_lo, acc[r][j]));
      }
    }
    for (int j = 0; j < NR; ++j) {
      const Vec sv = vset1(s[j][b] * 256.0f);
      for (int r = 0; r < R; ++r) total[r][j] = vfma(acc[r][j], sv, total[r][j]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NR; ++j) p.y[(m0 + r) * p.ldy + n0 + j * rs] = (p.bias ? p.bias[n0 + j * rs] : 0.0f) + vsum(total[r][j]);
}

template <int R>
QVL_FP8_TARGET void rows_r(const ops::MatmulParams& p, int64_t m0, int64_t n0, int64_t n1) {
  // acc and total (2·R·NR), x (2·R) and the two widened weights stay within the registers.
  constexpr int NR = QVL_FP8_REGS >= 32 ? (R <= 2 ? 4 : 2) : (R == 1 ? 4 : R == 2 ? 2 : 1);
  // The run as NR streams (row_streams.h): an fp8 decode step at the 2B shapes, 2 Sapphire Rapids
  // threads, 68 -> 63 ms against NR adjacent rows (the kernel is close to compute-bound here:
  // 25 GB/s).
  row_streams<NR>(n0, n1, [&](int64_t n, int64_t part) { rows_rn<R, NR>(p, m0, n, part); },
                  [&](int64_t n) { rows_rn<R, 1>(p, m0, n, 1); });
}

void rows(const ops::MatmulParams& p, int64_t m0, int count, int64_t n0, int64_t n1) {
  if (count == 1) return rows_r<1>(p, m0, n0, n1);
  if (count == 2) return rows_r<2>(p, m0, n0, n1);
  if (count == 3) return rows_r<3>(p, m0, n0, n1);
  return rows_r<4>(p, m0, n0, n1);  // count <= kFp8SmallM = 4
}
