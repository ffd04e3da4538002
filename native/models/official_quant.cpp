#include "models/official_quant.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/weight_quant.h"
#include "models/quant_pack.h"

namespace qvl::models {

const char* quant_method_name(QuantMethod m) {
  switch (m) {
    case QuantMethod::None: return "none";
    case QuantMethod::Awq: return "awq";
    case QuantMethod::Gptq: return "gptq";
    case QuantMethod::Fp8: return "fp8";
  }
  return "?";
}

namespace {

std::string n2s(int64_t v) { return std::to_string(v); }

// A float tensor (f32/bf16/f16) of the expected shape, as f32 values.
std::vector<float> float_values(const WeightStore& w, const std::string& name, const std::vector<int64_t>& shape) {
  const Tensor& t = w.get(name, shape);
  const int64_t n = t.numel();
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    switch (t.dtype()) {
      case DType::F32: v[i] = t.data<float>()[i]; break;
      case DType::BF16: v[i] = bf16_to_f32(t.data<uint16_t>()[i]); break;
      case DType::F16: v[i] = f16_to_f32(t.data<uint16_t>()[i]); break;
      case DType::I32:
      case DType::I64:
      case DType::U8:
      case DType::F8E4M3: break;  // refused by get()
    }
  }
  return v;
}

// Groups the q4/q8 formats cannot hold (not a multiple of their 32-wide blocks, e.g. GPTQ
// group_size 16 or -1 over an odd width): W in f32, losslessly ((q − z)·s with a small integer and
// an f16 scale is exact in f32).
ConvertedWeight dense_from_grouped(const GroupQuantized& g, ThreadPool& pool) {
  ConvertedWeight c;
  Tensor t = Tensor::empty(DType::F32, {g.out, g.in});
  float* d = t.data<float>();
  const int64_t groups = g.in / g.group;
  pool.parallel_for(g.out, 16, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      for (int64_t i = 0; i < g.in; ++i) {
        const int64_t gi = n * groups + i / g.group;
        const uint8_t q = g.q[n * g.in + i];
        const float v = g.format == WeightFormat::Q4 ? static_cast<float>(static_cast<int>(q) - static_cast<int>(g.zeros[gi]))
                                                     : static_cast<float>(static_cast<int8_t>(q));
        d[n * g.in + i] = v * g.scales[gi];
      }
    }
  });
  c.storage.push_back(t);
  c.ref = dense_weight(WeightFormat::F32, t.raw(), g.out, g.in, g.in);
  return c;
}

ConvertedWeight from_grouped(const GroupQuantized& g) {
  ThreadPool& pool = *default_pool();
  if (g.group % kQuantBlock == 0) return pack_group_quantized(g, pool);
  return dense_from_grouped(g, pool);
}

// AWQ GEMM: nibble p (bits 4p..4p+3) of a word holds column kAwqColumn[p] of its group of 8.
constexpr int kAwqNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};  // column c -> nibble

ConvertedWeight convert_awq(const WeightStore& w, const std::string& prefix, int64_t in, int64_t out) {
  const QuantSpec& s = w.quant();
  QVL_CHECK(s.bits == 4, Unsupported, "layer " + prefix + ": AWQ with " + n2s(s.bits) + " bits is not supported");
  const int64_t G = s.group;
  QVL_CHECK(G > 0 && in % G == 0, ModelFormat,
            "layer " + prefix + ": input width " + n2s(in) + " is not a multiple of quantization_config.group_size " + n2s(G));
  QVL_CHECK(out % 8 == 0, ModelFormat, "layer " + prefix + ": output width " + n2s(out) + " is not a multiple of 8 (AWQ packs 8 per int32)");
  const int64_t groups = in / G, words = out / 8;
  const Tensor& qw = w.get_typed(prefix + ".qweight", {in, words}, DType::I32);
  const Tensor& qz = w.get_typed(prefix + ".qzeros", {groups, words}, DType::I32);
  const std::vector<float> sc = float_values(w, prefix + ".scales", {groups, out});
  const uint32_t* qwp = reinterpret_cast<const uint32_t*>(qw.data<int32_t>());
  const uint32_t* qzp = reinterpret_cast<const uint32_t*>(qz.data<int32_t>());
  GroupQuantized g;
  g.format = WeightFormat::Q4, g.out = out, g.in = in, g.group = G;
  g.q.resize(static_cast<size_t>(out * in));
  g.scales.resize(static_cast<size_t>(out * groups));
  g.zeros.resize(static_cast<size_t>(out * groups));
  default_pool()->parallel_for(out, 8, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      const int shift = 4 * kAwqNibble[n % 8];
      for (int64_t i = 0; i < in; ++i) g.q[n * in + i] = static_cast<uint8_t>((qwp[i * words + n / 8] >> shift) & 15u);
      for (int64_t gi = 0; gi < groups; ++gi) {
        g.zeros[n * groups + gi] = static_cast<uint8_t>((qzp[gi * words + n / 8] >> shift) & 15u);
        g.scales[n * groups + gi] = sc[gi * out + n];
      }
    }
  });
  return from_grouped(g);
}

ConvertedWeight convert_gptq(const WeightStore& w, const std::string& prefix, int64_t in, int64_t out) {
  const QuantSpec& s = w.quant();
  const int64_t bits = s.bits;
  QVL_CHECK(bits == 4 || bits == 8, Unsupported, "layer " + prefix + ": GPTQ with " + n2s(bits) + " bits is not supported");
  const int64_t per = 32 / bits;
  const uint32_t mask = (1u << bits) - 1;
  const int64_t G = s.group > 0 ? s.group : in;
  const int64_t groups = (in + G - 1) / G;
  QVL_CHECK(in % per == 0 && out % per == 0, ModelFormat,
            "layer " + prefix + ": [" + n2s(out) + "," + n2s(in) + "] is not a whole number of " + n2s(per) +
                "-value words (GPTQ " + n2s(bits) + "-bit packing)");
  const Tensor& qw = w.get_typed(prefix + ".qweight", {in / per, out}, DType::I32);
  const Tensor& qz = w.get_typed(prefix + ".qzeros", {groups, out / per}, DType::I32);
  const std::vector<float> sc = float_values(w, prefix + ".scales", {groups, out});
  const uint32_t* qwp = reinterpret_cast<const uint32_t*>(qw.data<int32_t>());
  const uint32_t* qzp = reinterpret_cast<const uint32_t*>(qz.data<int32_t>());

  // The group of each input channel: g_idx where the file has it, else i / G.
  std::vector<int32_t> gidx(static_cast<size_t>(in));
  const std::string gname = prefix + ".g_idx";
  if (w.has(gname)) {
    const Tensor& gt = w.get_typed(gname, {in}, DType::I32);
    for (int64_t i = 0; i < in; ++i) {
      const int32_t v = gt.data<int32_t>()[i];
      QVL_CHECK(v >= 0 && v < groups, ModelFormat,
                "tensor " + gname + " in " + w.file_of(gname) + ": element " + n2s(i) + " is " + n2s(v) +
                    ", outside the " + n2s(groups) + " groups of scales");
      gidx[i] = v;
    }
  } else {
    for (int64_t i = 0; i < in; ++i) gidx[i] = static_cast<int32_t>(i / G);
  }
  // Column order: input channels sorted by group (stable), so each group is a contiguous run.
  std::vector<int32_t> perm(static_cast<size_t>(in));
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(), [&](int32_t a, int32_t b) { return gidx[a] < gidx[b]; });
  bool identity = true;
  for (int64_t j = 0; j < in; ++j) {
    // Group j / G must hold exactly the channels in [j·G, min(in, (j+1)·G)) of the sorted order.
    QVL_CHECK(gidx[perm[j]] == j / G, Unsupported,
              "tensor " + gname + ": group " + n2s(j / G) + " does not hold exactly " + n2s(G) +
                  " input channels (quantization_config.group_size); unequal act-order groups are not supported");
    identity = identity && perm[j] == j;
  }

  GroupQuantized g;
  g.format = bits == 4 ? WeightFormat::Q4 : WeightFormat::Q8, g.out = out, g.in = in, g.group = G;
  QVL_CHECK(in % G == 0, Unsupported,
            "layer " + prefix + ": input width " + n2s(in) + " is not a multiple of group_size " + n2s(G) +
                " (a partial last group is not supported)");
  g.q.resize(static_cast<size_t>(out * in));
  g.scales.resize(static_cast<size_t>(out * groups));
  if (bits == 4) g.zeros.resize(static_cast<size_t>(out * groups));
  std::vector<int64_t> bad_zero(static_cast<size_t>(out), -1);
  default_pool()->parallel_for(out, 8, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      for (int64_t j = 0; j < in; ++j) {
        const int64_t i = perm[j];
        g.q[n * in + j] = static_cast<uint8_t>((qwp[(i / per) * out + n] >> (bits * (i % per))) & mask);
      }
      for (int64_t gi = 0; gi < groups; ++gi) {
        const int64_t z = static_cast<int64_t>((qzp[gi * (out / per) + n / per] >> (bits * (n % per))) & mask) + s.zero_offset;
        g.scales[n * groups + gi] = sc[gi * out + n];
        if (bits == 4) {
          if (z > 15 && bad_zero[n] < 0) bad_zero[n] = z;
          g.zeros[n * groups + gi] = static_cast<uint8_t>(z & 15);
        } else if (z != 128 && bad_zero[n] < 0) {
          bad_zero[n] = z;
        }
      }
      // 8-bit, symmetric: (q − 128) is the int8 code.
      if (bits == 8)
        for (int64_t j = 0; j < in; ++j) g.q[n * in + j] = static_cast<uint8_t>(static_cast<int>(g.q[n * in + j]) - 128);
    }
  });
  for (int64_t n = 0; n < out; ++n) {
    if (bad_zero[n] < 0) continue;
    if (bits == 4)
      fail(ErrorCode::Unsupported, "layer " + prefix + ": GPTQ zero point " + n2s(bad_zero[n]) +
                                       " (tensor " + prefix + ".qzeros) does not fit 4 bits; such asymmetric checkpoints are not supported");
    fail(ErrorCode::Unsupported, "layer " + prefix + ": 8-bit GPTQ zero point " + n2s(bad_zero[n]) + " (tensor " + prefix +
                                     ".qzeros) is not 128; asymmetric 8-bit checkpoints are not supported");
  }
  ConvertedWeight c = from_grouped(g);
  if (!identity) c.perm = std::move(perm);
  return c;
}

ConvertedWeight convert_fp8(const WeightStore& w, const std::string& prefix, int64_t in, int64_t out) {
  const QuantSpec& s = w.quant();
  const int64_t bo = s.block_out, bi = s.block_in;
  QVL_CHECK(bo > 0 && bi == 128, Unsupported,
            "layer " + prefix + ": FP8 weight_block_size [" + n2s(bo) + ", " + n2s(bi) + "] is not supported (input block 128)");
  const std::string name = prefix + ".weight", sname = prefix + ".weight_scale_inv";
  const Tensor& wt = w.get_typed(name, {out, in}, DType::F8E4M3);
  const int64_t sr = (out + bo - 1) / bo, sk = (in + bi - 1) / bi;
  const Tensor& st = w.get_typed(sname, {sr, sk}, DType::F32);
  const float* sv = st.data<float>();
  ConvertedWeight c;
  if (in % bi != 0) {
    // Dense f32 with the F8 format's own rounding (one f32 product per element).
    Tensor d = Tensor::empty(DType::F32, {out, in});
    const uint8_t* b = static_cast<const uint8_t*>(wt.raw());
    for (int64_t n = 0; n < out; ++n)
      for (int64_t k = 0; k < in; ++k)
        d.data<float>()[n * in + k] = f8e4m3_to_f32(b[n * in + k]) * sv[(n / bo) * sk + k / bi];
    c.storage.push_back(d);
    c.ref = dense_weight(WeightFormat::F32, d.raw(), out, in, in);
    return c;
  }
  // One scale per 128-block of each row (the file has one per bo rows).
  Tensor scales = Tensor::empty(DType::F32, {out, sk});
  for (int64_t n = 0; n < out; ++n)
    for (int64_t kb = 0; kb < sk; ++kb) scales.data<float>()[n * sk + kb] = sv[(n / bo) * sk + kb];
  c.storage.push_back(wt);
  c.storage.push_back(scales);
  c.ref = dense_weight(WeightFormat::F8, wt.raw(), out, in, in);
  c.ref.scales = scales.data<float>();
  c.ref.group = bi;
  return c;
}

}  // namespace

bool convert_official_linear(const WeightStore& w, const std::string& prefix, int64_t in, int64_t out,
                             ConvertedWeight* c) {
  const QuantMethod m = w.quant().method;
  const std::string qname = prefix + ".qweight", wname = prefix + ".weight";
  const Tensor* dense = w.find(wname);
  if (w.has(qname)) {
    QVL_CHECK(m == QuantMethod::Awq || m == QuantMethod::Gptq, ModelFormat,
              "tensor " + qname + " in " + w.file_of(qname) + " is AWQ/GPTQ data, but config.json's quantization is " +
                  quant_method_name(m));
    QVL_CHECK(dense == nullptr, ModelFormat, "layer " + prefix + " has both " + wname + " and " + qname);
    *c = m == QuantMethod::Awq ? convert_awq(w, prefix, in, out) : convert_gptq(w, prefix, in, out);
    return true;
  }
  if (dense != nullptr && dense->dtype() == DType::F8E4M3) {
    QVL_CHECK(m == QuantMethod::Fp8, ModelFormat,
              "tensor " + wname + " in " + w.file_of(wname) + " is float8, but config.json's quantization is " +
                  quant_method_name(m));
    *c = convert_fp8(w, prefix, in, out);
    return true;
  }
  return false;
}

}  // namespace qvl::models
