// Unpacking, plainly: word by word in file order, each field put where the layout says
// (ops/unpack_quant.h), one thread. The generic variant walks the outputs instead.
#include <vector>

#include "backends/cpu/convert_common.h"
#include "ops/unpack_quant.h"

namespace qvl::cpu {

namespace {

// AWQ GEMM: nibble p of a word holds column kAwqColumn[p] of its group of 8.
constexpr int kAwqColumn[8] = {0, 2, 4, 6, 1, 3, 5, 7};

void note_bad_zero(ops::UnpackQuantStatus* s, int64_t index, int64_t zero) {
  if (s->index < 0 || index < s->index) s->index = index, s->zero = zero;
}

void unpack_awq(const ops::UnpackQuantParams& p, ops::UnpackQuantStatus*) {
  const int64_t words = p.out / 8;
  for (int64_t i = 0; i < p.in; ++i) {
    for (int64_t w = 0; w < words; ++w) {
      const uint32_t word = p.qweight[i * words + w];
      for (int k = 0; k < 8; ++k) p.codes[(8 * w + kAwqColumn[k]) * p.in + i] = static_cast<uint8_t>((word >> (4 * k)) & 15u);
    }
  }
  for (int64_t g = 0; g < p.groups; ++g) {
    for (int64_t w = 0; w < words; ++w) {
      const uint32_t word = p.qzeros[g * words + w];
      for (int k = 0; k < 8; ++k) p.zeros[(8 * w + kAwqColumn[k]) * p.groups + g] = static_cast<uint8_t>((word >> (4 * k)) & 15u);
    }
  }
}

void unpack_gptq(const ops::UnpackQuantParams& p, ops::UnpackQuantStatus* s) {
  const int64_t per = 32 / p.bits;
  const uint32_t mask = (1u << p.bits) - 1;
  // Where each input channel goes: column j holds channel perm[j].
  std::vector<int64_t> column(static_cast<size_t>(p.in));
  for (int64_t j = 0; j < p.in; ++j) column[static_cast<size_t>(p.perm ? p.perm[j] : j)] = j;
  for (int64_t r = 0; r < p.in / per; ++r) {
    for (int64_t n = 0; n < p.out; ++n) {
      const uint32_t word = p.qweight[r * p.out + n];
      for (int64_t k = 0; k < per; ++k) {
        const int64_t v = (word >> (p.bits * k)) & mask;
        p.codes[n * p.in + column[static_cast<size_t>(r * per + k)]] = static_cast<uint8_t>(p.bits == 8 ? v - 128 : v);
      }
    }
  }
  for (int64_t g = 0; g < p.groups; ++g) {
    for (int64_t w = 0; w < p.out / per; ++w) {
      const uint32_t word = p.qzeros[g * (p.out / per) + w];
      for (int64_t k = 0; k < per; ++k) {
        const int64_t n = w * per + k;
        const int64_t z = static_cast<int64_t>((word >> (p.bits * k)) & mask) + p.zero_offset;
        if (p.bits == 4) p.zeros[n * p.groups + g] = static_cast<uint8_t>(z % 16);
        if (p.bits == 4 ? z > 15 : z != 128) note_bad_zero(s, n * p.groups + g, z);
      }
    }
  }
}

}  // namespace

ops::UnpackQuantStatus unpack_quant_ref(const ops::UnpackQuantParams& p, const ExecContext&) {
  ops::UnpackQuantStatus s;
  switch (p.packing) {
    case ops::QuantPacking::AwqGemm: unpack_awq(p, &s); break;
    case ops::QuantPacking::Gptq: unpack_gptq(p, &s); break;
    case ops::QuantPacking::Fp8Blocks:
      for (int64_t n = 0; n < p.out; ++n)
        for (int64_t g = 0; g < p.groups; ++g)
          p.row_scales[n * p.groups + g] = load_as_f32(p.scales, p.scales_dtype, (n / p.block_out) * p.groups + g);
      return s;
  }
  for (int64_t n = 0; n < p.out; ++n)
    for (int64_t g = 0; g < p.groups; ++g) p.row_scales[n * p.groups + g] = load_as_f32(p.scales, p.scales_dtype, g * p.out + n);
  return s;
}

}  // namespace qvl::cpu
