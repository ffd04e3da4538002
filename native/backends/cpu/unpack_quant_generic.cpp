// Unpacking over threads, one output row at a time: each row's codes, zero points and scales are
// gathered from the packed words with the row's shift worked out once (AWQ: the nibble holding
// column n; GPTQ: channel i's place in its word). Pure bit movement, so identical to the reference.
#include <algorithm>
#include <atomic>

#include "backends/cpu/convert_common.h"
#include "ops/unpack_quant.h"

namespace qvl::cpu {

namespace {

// AWQ GEMM: column c of a group of 8 sits in nibble kAwqNibble[c] (the inverse of 0,2,4,6,1,3,5,7).
constexpr int kAwqNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};

// Row n's scales, widened: the file holds them transposed, [groups, out].
void row_scales(const ops::UnpackQuantParams& p, int64_t n) {
  float* d = p.row_scales + n * p.groups;
  switch (p.scales_dtype) {
    case DType::F32:
      for (int64_t g = 0; g < p.groups; ++g) d[g] = static_cast<const float*>(p.scales)[g * p.out + n];
      return;
    case DType::BF16:
      for (int64_t g = 0; g < p.groups; ++g) d[g] = bf16_to_f32(static_cast<const uint16_t*>(p.scales)[g * p.out + n]);
      return;
    case DType::F16:
    case DType::I32:
    case DType::I64:
    case DType::U8:
    case DType::F8E4M3: break;  // check_unpack_quant allowed only f16 besides the two above
  }
  for (int64_t g = 0; g < p.groups; ++g) d[g] = load_as_f32(p.scales, p.scales_dtype, g * p.out + n);
}

// FP8 row n's scales: the file's row of its block of block_out rows, widened (bf16/f16 exactly).
void fp8_row_scales(const ops::UnpackQuantParams& p, int64_t n) {
  const int64_t r = (n / p.block_out) * p.groups;
  float* d = p.row_scales + n * p.groups;
  if (p.scales_dtype == DType::F32) {
    const float* s = static_cast<const float*>(p.scales) + r;
    std::copy(s, s + p.groups, d);
    return;
  }
  for (int64_t g = 0; g < p.groups; ++g) d[g] = load_as_f32(p.scales, p.scales_dtype, r + g);
}

// Row n's codes and zero points (AWQ zero points are 4-bit values: always fit).
void awq_row(const ops::UnpackQuantParams& p, int64_t n) {
  const int64_t words = p.out / 8, w = n / 8;
  const int shift = 4 * kAwqNibble[n % 8];
  uint8_t* q = p.codes + n * p.in;
  for (int64_t i = 0; i < p.in; ++i) q[i] = static_cast<uint8_t>((p.qweight[i * words + w] >> shift) & 15u);
  for (int64_t g = 0; g < p.groups; ++g) p.zeros[n * p.groups + g] = static_cast<uint8_t>((p.qzeros[g * words + w] >> shift) & 15u);
}

int64_t gptq_zero(const ops::UnpackQuantParams& p, int64_t n, int64_t g) {
  const int64_t per = 32 / p.bits;
  const uint32_t word = p.qzeros[g * (p.out / per) + n / per];
  return static_cast<int64_t>((word >> (p.bits * (n % per))) & ((1u << p.bits) - 1)) + p.zero_offset;
}

bool zero_fits(const ops::UnpackQuantParams& p, int64_t z) { return p.bits == 4 ? z <= 15 : z == 128; }

// Row n's codes and zero points; the group of its first unfit zero point, or -1.
int64_t gptq_row(const ops::UnpackQuantParams& p, int64_t n) {
  const int64_t per = 32 / p.bits;
  const uint32_t mask = (1u << p.bits) - 1;
  const uint32_t flip = p.bits == 8 ? 128u : 0u;  // 8-bit: q − 128 as an int8 bit pattern
  uint8_t* q = p.codes + n * p.in;
  for (int64_t j = 0; j < p.in; ++j) {
    const int64_t i = p.perm ? p.perm[j] : j;
    q[j] = static_cast<uint8_t>(((p.qweight[(i / per) * p.out + n] >> (p.bits * (i % per))) & mask) - flip);
  }
  int64_t bad = -1;
  for (int64_t g = 0; g < p.groups; ++g) {
    const int64_t z = gptq_zero(p, n, g);
    if (p.bits == 4) p.zeros[n * p.groups + g] = static_cast<uint8_t>(z & 15);
    if (bad < 0 && !zero_fits(p, z)) bad = g;
  }
  return bad;
}

}  // namespace

ops::UnpackQuantStatus unpack_quant_generic(const ops::UnpackQuantParams& p, const ExecContext& ctx) {
  std::atomic<int64_t> first{-1};  // row-major index of the first unfit zero point
  ctx.pool().parallel_for(p.out, 8, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      if (p.packing == ops::QuantPacking::Fp8Blocks) {
        fp8_row_scales(p, n);
        continue;
      }
      row_scales(p, n);
      if (p.packing == ops::QuantPacking::AwqGemm) {
        awq_row(p, n);
        continue;
      }
      const int64_t g = gptq_row(p, n);
      if (g < 0) continue;
      const int64_t at = n * p.groups + g;
      int64_t cur = first.load();
      while ((cur < 0 || at < cur) && !first.compare_exchange_weak(cur, at)) {
      }
    }
  });
  ops::UnpackQuantStatus s;
  s.index = first.load();
  if (s.index >= 0) s.zero = gptq_zero(p, s.index / p.groups, s.index % p.groups);
  return s;
}

}  // namespace qvl::cpu
