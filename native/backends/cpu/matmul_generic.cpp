// Portable blocked matmul: plain C++ loops with fixed trip counts that the compiler turns into
// whatever SIMD the build targets (SSE2 on a baseline x86-64 build, NEON on arm64). It is the
// fallback for CPUs without AVX2 and the baseline the benchmarks measure the others against.
#include <cstring>
#include <type_traits>

#include "backends/cpu/matmul_cpu.h"

namespace qvl::cpu {

namespace {

using MatmulParams = DenseMatmul;  // the kernels read p.dense, the weights' element type

// A 2x32 tile measured fastest on x86-64's baseline SSE2 with GCC 12 (35 GFLOP/s on one Zen 5
// core against 9 for 4x8, whose unrolled form GCC spills); kLanes partial sums per weight row.
constexpr int kMr = 2, kNr = 32, kLanes = 8;

inline float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Branch-free f16 -> f32 (exact, subnormals and Inf/NaN included) so that loops over it
// vectorise: rebias the exponent, and let one float subtraction renormalise subnormals.
// core's f16_to_f32 is exact too, but a call with branches per element.
inline float half_to_f32(uint16_t h) {
  const uint32_t o = static_cast<uint32_t>(h & 0x7fffu) << 13;
  const uint32_t e = o & 0x0f800000u;
  const uint32_t inf_nan = 0u - static_cast<uint32_t>(e == 0x0f800000u);  // all ones or zero
  const uint32_t subnormal = 0u - static_cast<uint32_t>(e == 0);
  const uint32_t normal = o + ((127u - 15u) << 23) + (inf_nan & ((128u - 16u) << 23));
  const uint32_t sub = f32_bits(bits_to_f32(o + (113u << 23)) - bits_to_f32(113u << 23));
  const uint32_t u = (subnormal & sub) | (~subnormal & normal);
  return bits_to_f32(u | (static_cast<uint32_t>(h & 0x8000u) << 16));
}

// n f32 values of weight row `row` starting at column k0.
inline void load_weights(const MatmulParams& p, int64_t row, int64_t k0, int64_t n, float* out) {
  const int64_t off = row * p.w.ld + k0;
  switch (p.dense) {
    case DType::F32:
      std::memcpy(out, static_cast<const float*>(p.w.data) + off, n * sizeof(float));
      return;
    case DType::BF16: {
      const uint16_t* w = static_cast<const uint16_t*>(p.w.data) + off;
      for (int64_t i = 0; i < n; ++i) out[i] = bits_to_f32(static_cast<uint32_t>(w[i]) << 16);
      return;
    }
    case DType::F16: {
      const uint16_t* w = static_cast<const uint16_t*>(p.w.data) + off;
      for (int64_t i = 0; i < n; ++i) out[i] = half_to_f32(w[i]);
      return;
    }
    case DType::I32:
    case DType::I64:
    case DType::F8E4M3:
    case DType::U8: return;  // refused by dense_storage
  }
}

void pack(const MatmulParams& p, int64_t n0, int64_t nvalid, int64_t k0, int64_t kc, float* panel) {
  float row[256];
  for (int64_t j = 0; j < kNr; ++j) {
    for (int64_t kb = 0; kb < kc; kb += 256) {
      const int64_t len = kc - kb < 256 ? kc - kb : 256;
      if (j < nvalid) {
        load_weights(p, n0 + j, k0 + kb, len, row);
      } else {
        std::memset(row, 0, len * sizeof(float));
      }
      for (int64_t k = 0; k < len; ++k) panel[(kb + k) * kNr + j] = row[k];
    }
  }
}

template <int R>
void tile_rows(int64_t kc, const float* x, int64_t ldx, const float* panel, float* y, int64_t ldy, int64_t nvalid,
               const float* bias, bool first) {
  const float* xr[R];
  for (int r = 0; r < R; ++r) xr[r] = x + r * ldx;
  float c[R][kNr] = {};
  // kc >= 1. A do-while keeps GCC from giving the accumulators a home in memory.
  int64_t k = 0;
  do {
    const float* b = panel + k * kNr;
    for (int r = 0; r < R; ++r) {
      const float a = xr[r][k];
      for (int j = 0; j < kNr; ++j) c[r][j] += a * b[j];
    }
  } while (++k < kc);
  for (int r = 0; r < R; ++r) {
    const float* src = first ? bias : y + r * ldy;
    for (int j = 0; j < nvalid; ++j) y[r * ldy + j] = c[r][j] + (src ? src[j] : 0.0f);
  }
}

void tile(int rows, int64_t kc, const float* x, int64_t ldx, const float* panel, float* y, int64_t ldy,
          int64_t nvalid, const float* bias, bool first) {
  if (rows == 1) return tile_rows<1>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
  return tile_rows<2>(kc, x, ldx, panel, y, ldy, nvalid, bias, first);
}

template <DType DT>
using WeightT = std::conditional_t<DT == DType::F32, float, uint16_t>;

template <DType DT>
inline float widen(WeightT<DT> v) {
  if constexpr (DT == DType::F32) return v;
  else if constexpr (DT == DType::BF16) return bits_to_f32(static_cast<uint32_t>(v) << 16);
  else return half_to_f32(v);
}

// One weight row against one row of x, converted kLanes at a time into independent partial
// sums (GCC only vectorises a float reduction written that way). Rows of x are done one at a
// time: with several at once GCC 12 no longer vectorises it, and the weight row stays in L1
// between them anyway.
template <DType DT>
float dot(const WeightT<DT>* w, const float* x, int64_t K) {
  const int64_t kfull = K - K % kLanes;
  float acc[kLanes] = {};
  if (kfull > 0) {  // a do-while keeps GCC from giving the accumulators a home in memory
    int64_t k = 0;
    do {
      float wv[kLanes];
      for (int l = 0; l < kLanes; ++l) wv[l] = widen<DT>(w[k + l]);
      for (int l = 0; l < kLanes; ++l) acc[l] += x[k + l] * wv[l];
    } while ((k += kLanes) < kfull);
  }
  for (int64_t k = kfull; k < K; ++k) acc[k - kfull] += x[k] * widen<DT>(w[k]);
  float q = 0.0f;
  for (int l = 0; l < kLanes; ++l) q += acc[l];
  return q;
}

template <DType DT>
void rows_dt(const MatmulParams& p, int64_t m0, int count, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const WeightT<DT>* w = static_cast<const WeightT<DT>*>(p.w.data) + n * p.w.ld;
    for (int i = 0; i < count; ++i) {
      p.y[(m0 + i) * p.ldy + n] = (p.bias ? p.bias[n] : 0.0f) + dot<DT>(w, p.x + (m0 + i) * p.ldx, p.K);
    }
  }
}

// f16 rows are widened a block at a time first: the conversion's selects vectorise in a plain
// loop but not inside dot().
template <>
void rows_dt<DType::F16>(const MatmulParams& p, int64_t m0, int count, int64_t n0, int64_t n1) {
  constexpr int64_t kBlock = 512;
  float wf[kBlock];
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* w = static_cast<const uint16_t*>(p.w.data) + n * p.w.ld;
    float acc[4] = {};  // count <= small_m = 4
    for (int64_t k0 = 0; k0 < p.K; k0 += kBlock) {
      const int64_t len = p.K - k0 < kBlock ? p.K - k0 : kBlock;
      for (int64_t k = 0; k < len; ++k) wf[k] = half_to_f32(w[k0 + k]);
      for (int i = 0; i < count; ++i) acc[i] += dot<DType::F32>(wf, p.x + (m0 + i) * p.ldx + k0, len);
    }
    for (int i = 0; i < count; ++i) p.y[(m0 + i) * p.ldy + n] = (p.bias ? p.bias[n] : 0.0f) + acc[i];
  }
}

void rows(const MatmulParams& p, int64_t m0, int count, int64_t n0, int64_t n1) {
  switch (p.dense) {
    case DType::F32: return rows_dt<DType::F32>(p, m0, count, n0, n1);
    case DType::BF16: return rows_dt<DType::BF16>(p, m0, count, n0, n1);
    case DType::F16: return rows_dt<DType::F16>(p, m0, count, n0, n1);
    case DType::I32:
    case DType::I64:
    case DType::F8E4M3:
    case DType::U8: return;  // refused by dense_params
  }
}

const MatmulKernels kKernels = {kMr, kNr, /*kc=*/256, /*nc=*/128, /*mc=*/128, /*small_m=*/4, pack, tile, rows};

}  // namespace

void matmul_generic(const ops::MatmulParams& p, const ExecContext& ctx) { run_matmul(p, ctx, kKernels); }

}  // namespace qvl::cpu
