#include "models/weight_converter.h"

#include "core/error.h"
#include "models/official_quant.h"
#include "ops/moe.h"

namespace qvl::models {

ConvertedWeight convert_dense_weight(const Tensor& t, const std::string& what, int64_t in, int64_t out) {
  WeightFormat f;
  QVL_CHECK(weight_format_from_dtype(t.dtype(), &f), Unsupported,
            what + " is " + dtype_name(t.dtype()) + ", which is not a weight format (f32, bf16 or f16)");
  QVL_CHECK(t.numel() == in * out, ModelFormat,
            what + " " + t.shape_string() + " cannot be viewed as [" + std::to_string(out) + "," + std::to_string(in) + "]");
  ConvertedWeight c;
  c.storage.push_back(t.reshape({out, in}));
  c.ref = dense_weight(f, c.storage.back().raw(), out, in, in);
  return c;
}

ConvertedWeight convert_linear_weight(const WeightStore& w, const std::string& prefix, int64_t in, int64_t out) {
  ConvertedWeight q;
  if (convert_official_linear(w, prefix, in, out, &q)) return q;
  const std::string name = prefix + ".weight";
  return convert_dense_weight(w.get(name, {out, in}), "tensor " + name, in, out);
}

ConvertedExperts convert_moe_experts(const WeightStore& w, const std::string& name, int64_t E, int64_t R, int64_t C,
                                     ThreadPool& pool) {
  const Tensor& src = w.get(name, {E, R, C});
  ConvertedExperts c;
  QVL_CHECK(weight_format_from_dtype(src.dtype(), &c.format), Unsupported,
            "tensor " + name + " is " + dtype_name(src.dtype()) + ", which is not a weight format (f32, bf16 or f16)");
  c.packed = Tensor::empty(src.dtype(), {E, C, R});
  ops::moe_pack_experts(src.raw(), c.packed.raw(), c.format, E, R, C, pool);
  return c;
}

}  // namespace qvl::models
