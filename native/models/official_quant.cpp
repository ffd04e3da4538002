#include "models/official_quant.h"

#include <string>
#include <vector>

#include "core/error.h"
#include "core/weight_quant.h"
#include "models/quant_pack.h"
#include "ops/dequant_groups.h"
#include "ops/unpack_quant.h"
#include "ops/weight_quant.h"

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

// Groups the q4/q8 formats cannot hold (not a multiple of their 32-wide blocks, e.g. GPTQ
// group_size 16 or -1 over an odd width): W in f32, losslessly ((q − z)·s with a small integer and
// an f16 scale is exact in f32).
ConvertedWeight dense_from_grouped(const GroupQuantized& g) {
  ConvertedWeight c;
  Tensor t = Tensor::empty(DType::F32, {g.out, g.in});
  ops::DequantGroupsParams p;
  p.format = g.format, p.out = g.out, p.in = g.in, p.group = g.group;
  p.codes = g.q.data(), p.scales = g.scales.data(), p.zeros = g.format == WeightFormat::Q4 ? g.zeros.data() : nullptr;
  p.dst = t.data<float>();
  ops::dequant_groups(p, ExecContext(*default_pool()));
  c.storage.push_back(t);
  c.ref = dense_weight(WeightFormat::F32, t.raw(), g.out, g.in, g.in);
  return c;
}

// q4/q8 where they hold the layer: groups of whole 32-blocks and scales f16 stores (every f16
// file's; bf16/f32 ones within f16's range, rounded there to nearest: core/weight_quant.h).
// Otherwise the lossless dense form.
ConvertedWeight from_grouped(const GroupQuantized& g) {
  if (g.group % kQuantBlock == 0 && ops::first_unstorable_scale(g.scales.data(), static_cast<int64_t>(g.scales.size())) < 0)
    return pack_group_quantized(g, *default_pool());
  return dense_from_grouped(g);
}

// The logical codes, scales and zero points (g.format, sizes and group set) of one layer's packed
// tensors; the first zero point the formats cannot hold, if any.
ops::UnpackQuantStatus unpack(GroupQuantized* g, ops::QuantPacking packing, int64_t bits, int64_t zero_offset,
                              const Tensor& qweight, const Tensor& qzeros, const Tensor& scales, const int32_t* perm) {
  const int64_t groups = g->in / g->group;
  g->q.resize(static_cast<size_t>(g->out * g->in));
  g->scales.resize(static_cast<size_t>(g->out * groups));
  if (bits == 4) g->zeros.resize(static_cast<size_t>(g->out * groups));
  ops::UnpackQuantParams p;
  p.packing = packing, p.bits = bits, p.out = g->out, p.in = g->in, p.group = g->group, p.groups = groups;
  p.zero_offset = zero_offset;
  p.qweight = reinterpret_cast<const uint32_t*>(qweight.data<int32_t>());
  p.qzeros = reinterpret_cast<const uint32_t*>(qzeros.data<int32_t>());
  p.perm = perm;
  p.scales = scales.raw(), p.scales_dtype = scales.dtype();
  p.codes = g->q.data(), p.row_scales = g->scales.data(), p.zeros = bits == 4 ? g->zeros.data() : nullptr;
  return ops::unpack_quant(p, ExecContext(*default_pool()));
}

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
  const Tensor& sc = w.get(prefix + ".scales", {groups, out});
  GroupQuantized g;
  g.format = WeightFormat::Q4, g.out = out, g.in = in, g.group = G;
  unpack(&g, ops::QuantPacking::AwqGemm, 4, 0, qw, qz, sc, nullptr);  // 4-bit AWQ zero points always fit
  for (const Tensor* t : {&qw, &qz, &sc}) release_source(*t);  // unpacked into g: no longer read as stored
  return from_grouped(g);
}

ConvertedWeight convert_gptq(const WeightStore& w, const std::string& prefix, int64_t in, int64_t out) {
  const QuantSpec& s = w.quant();
  const int64_t bits = s.bits;
  QVL_CHECK(bits == 4 || bits == 8, Unsupported, "layer " + prefix + ": GPTQ with " + n2s(bits) + " bits is not supported");
  const int64_t per = 32 / bits;
  const int64_t G = s.group > 0 ? s.group : in;
  const int64_t groups = (in + G - 1) / G;
  QVL_CHECK(in % per == 0 && out % per == 0, ModelFormat,
            "layer " + prefix + ": [" + n2s(out) + "," + n2s(in) + "] is not a whole number of " + n2s(per) +
                "-value words (GPTQ " + n2s(bits) + "-bit packing)");
  const Tensor& qw = w.get_typed(prefix + ".qweight", {in / per, out}, DType::I32);
  const Tensor& qz = w.get_typed(prefix + ".qzeros", {groups, out / per}, DType::I32);
  const Tensor& sc = w.get(prefix + ".scales", {groups, out});

  // Column order: input channels sorted by group (g_idx where the file has it, else i / G), so
  // each group is a contiguous run.
  const std::string gname = prefix + ".g_idx";
  const Tensor* gt = w.has(gname) ? &w.get_typed(gname, {in}, DType::I32) : nullptr;
  const int32_t* gidx = gt != nullptr ? gt->data<int32_t>() : nullptr;
  std::vector<int32_t> perm(static_cast<size_t>(in));
  const ops::ActOrderStatus order = ops::act_order_columns(gidx, in, G, groups, perm.data());
  QVL_CHECK(order.kind != ops::ActOrderStatus::OutOfRange, ModelFormat,
            "tensor " + gname + " in " + w.file_of(gname) + ": element " + n2s(order.at) + " is " + n2s(order.value) +
                ", outside the " + n2s(groups) + " groups of scales");
  QVL_CHECK(order.kind != ops::ActOrderStatus::UnequalGroup, Unsupported,
            "tensor " + gname + ": group " + n2s(order.at) + " does not hold exactly " + n2s(G) +
                " input channels (quantization_config.group_size); unequal act-order groups are not supported");

  GroupQuantized g;
  g.format = bits == 4 ? WeightFormat::Q4 : WeightFormat::Q8, g.out = out, g.in = in, g.group = G;
  QVL_CHECK(in % G == 0, Unsupported,
            "layer " + prefix + ": input width " + n2s(in) + " is not a multiple of group_size " + n2s(G) +
                " (a partial last group is not supported)");
  const ops::UnpackQuantStatus st =
      unpack(&g, ops::QuantPacking::Gptq, bits, s.zero_offset, qw, qz, sc, order.identity ? nullptr : perm.data());
  // Unpacked into g (g_idx into perm): the stored tensors are not read again.
  for (const Tensor* t : {&qw, &qz, &sc}) release_source(*t);
  if (gt != nullptr) release_source(*gt);
  if (st.index >= 0 && bits == 4)
    fail(ErrorCode::Unsupported, "layer " + prefix + ": GPTQ zero point " + n2s(st.zero) + " (tensor " + prefix +
                                     ".qzeros) does not fit 4 bits; such asymmetric checkpoints are not supported");
  if (st.index >= 0)
    fail(ErrorCode::Unsupported, "layer " + prefix + ": 8-bit GPTQ zero point " + n2s(st.zero) + " (tensor " + prefix +
                                     ".qzeros) is not 128; asymmetric 8-bit checkpoints are not supported");
  ConvertedWeight c = from_grouped(g);
  if (!order.identity) c.perm = std::move(perm);
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
  const Tensor& st = w.get(sname, {sr, sk});  // f32, bf16 or f16 (Qwen's own releases: bf16 or f16)
  // One scale per 128-block of each row (the file has one per bo rows).
  Tensor scales = Tensor::empty(DType::F32, {out, sk});
  ops::UnpackQuantParams u;
  u.packing = ops::QuantPacking::Fp8Blocks, u.out = out, u.in = in, u.groups = sk, u.block_out = bo;
  u.scales = st.raw(), u.scales_dtype = st.dtype(), u.row_scales = scales.data<float>();
  ops::unpack_quant(u, ExecContext(*default_pool()));
  release_source(st);  // expanded into `scales`
  ConvertedWeight c;
  if (in % bi != 0) {
    // Dense f32 with the F8 format's own rounding (one f32 product per element).
    Tensor d = Tensor::empty(DType::F32, {out, in});
    ops::DequantGroupsParams p;
    p.format = WeightFormat::F8, p.out = out, p.in = in, p.group = bi;
    p.codes = static_cast<const uint8_t*>(wt.raw()), p.scales = scales.data<float>(), p.dst = d.data<float>();
    ops::dequant_groups(p, ExecContext(*default_pool()));
    release_source(wt);  // dequantized into d
    c.storage.push_back(d);
    c.ref = dense_weight(WeightFormat::F32, d.raw(), out, in, in);
    return c;
  }
  // The weight stays a view of the file here (its pages are released by place() if it is copied).
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
