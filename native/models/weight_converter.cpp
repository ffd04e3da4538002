#include "models/weight_converter.h"

#include "core/error.h"
#include "core/storage.h"
#include "models/official_quant.h"
#include "models/quant_pack.h"
#include "ops/moe.h"
#include "models/weight_cache.h"
#include "ops/weight_quant.h"

namespace qvl::models {

void release_source(const Tensor& t) { t.storage()->release(t.raw(), t.nbytes()); }

namespace {

void release_dense(const ConvertedWeight& dense) { release_source(dense.storage.front()); }

ThreadPool& pool_of(const WeightPlan& plan) { return plan.pool ? *plan.pool : *default_pool(); }

// Each of the weight's tensors that is a view of a mapped file, copied into owned memory when the
// plan says so (the mapped pages released after each copy); its references follow the copies.
ConvertedWeight place(ConvertedWeight c, const WeightPlan& plan) {
  if (!plan.copy_stored) return c;
  for (Tensor& t : c.storage) {
    if (placement_of(*t.storage()) != Placement::Mmap) continue;
    Tensor copy = owned_copy(t, plan.pages, pool_of(plan));
    if (c.ref.data == t.raw()) c.ref.data = copy.raw();
    if (c.ref.scales == t.raw()) c.ref.scales = copy.raw();
    if (c.ref.zeros == t.raw()) c.ref.zeros = copy.raw();
    release_source(t);
    t = copy;
  }
  return c;
}

// The stored weight `dense` quantized per the plan (or placed as is when the plan keeps it).
ConvertedWeight apply_plan(ConvertedWeight dense, const WeightPlan& plan, const std::string& name) {
  if (!plan.quantize || dense.ref.in % plan.group != 0) return place(std::move(dense), plan);
  ConvertedWeight cached;
  if (plan.cache && plan.cache->take(name, plan.format, dense.ref.out, dense.ref.in, plan.group, plan.pages, &cached)) {
    plan.cache->record(name, cached);
    release_dense(dense);
    if (plan.on_converted) plan.on_converted(static_cast<uint64_t>(dense.storage.front().nbytes()));
    return cached;
  }
  ConvertedWeight q = empty_group_quantized(plan.format, dense.ref.out, dense.ref.in, plan.group, plan.pages);
  const int64_t bad = ops::quantize_weight(dense.ref, plan.format, plan.group, q.storage[0].raw(), q.storage[1].raw(),
                                           q.storage.size() > 2 ? q.storage[2].raw() : nullptr, pool_of(plan));
  const int64_t groups = dense.ref.in / plan.group;
  QVL_CHECK(bad < 0, Unsupported,
            name + ": row " + std::to_string(bad / groups) + ", group " + std::to_string(bad % groups) + " has weights too large for " +
                weight_format_name(plan.format) + " (its scale overflows f16, the format's scale type); keep it as stored ('bf16' weights/visionWeights)");
  if (plan.cache) plan.cache->record(name, q);
  release_dense(dense);
  if (plan.on_converted) plan.on_converted(static_cast<uint64_t>(dense.storage.front().nbytes()));
  return q;
}

}  // namespace

ConvertedWeight convert_dense_weight(const Tensor& t, const std::string& what, int64_t in, int64_t out,
                                     const WeightPlan& plan) {
  WeightFormat f;
  QVL_CHECK(weight_format_from_dtype(t.dtype(), &f), Unsupported,
            what + " is " + dtype_name(t.dtype()) + ", which is not a weight format (f32, bf16 or f16)");
  QVL_CHECK(t.numel() == in * out, ModelFormat,
            what + " " + t.shape_string() + " cannot be viewed as [" + std::to_string(out) + "," + std::to_string(in) + "]");
  ConvertedWeight c;
  c.storage.push_back(t.reshape({out, in}));
  c.ref = dense_weight(f, c.storage.back().raw(), out, in, in);
  return apply_plan(std::move(c), plan, what);
}

ConvertedWeight convert_linear_weight(const WeightStore& w, const std::string& prefix, int64_t in, int64_t out,
                                      const WeightPlan& plan) {
  ConvertedWeight q;
  // Official quantized layouts are already quantized: the on-load plan does not apply to them,
  // only its placement of what stays a view of the mapped file.
  if (convert_official_linear(w, prefix, in, out, &q)) return place(std::move(q), plan);
  const std::string name = prefix + ".weight";
  return convert_dense_weight(w.get(name, {out, in}), "tensor " + name, in, out, plan);
}

ConvertedExperts convert_moe_experts(const WeightStore& w, const std::string& name, int64_t E, int64_t R, int64_t C,
                                     ThreadPool& pool, Pages pages) {
  const Tensor& src = w.get(name, {E, R, C});
  ConvertedExperts c;
  QVL_CHECK(weight_format_from_dtype(src.dtype(), &c.format), Unsupported,
            "tensor " + name + " is " + dtype_name(src.dtype()) + ", which is not a weight format (f32, bf16 or f16)");
  c.packed = Tensor::empty(src.dtype(), {E, C, R}, pages);
  ops::moe_pack_experts(src.raw(), c.packed.raw(), c.format, E, R, C, pool);
  release_source(src);
  return c;
}

}  // namespace qvl::models
