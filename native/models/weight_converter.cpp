#include "models/weight_converter.h"

#include "core/error.h"
#include "core/weight_quant.h"
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

// The cached conversion of weight `name` ([out, in] in the plan's format, `group` elements per
// scale; converted from checkpoint tensor `source`, "" when that is not its sole source), when the
// plan's cache holds it: recorded for the next cache file, the stored source released (`release`),
// progress reported for `source_bytes`.
bool take_cached(const WeightPlan& plan, const std::string& name, const std::string& source, int64_t out, int64_t in,
                 int64_t group, uint64_t source_bytes, const std::function<void()>& release, ConvertedWeight* cached) {
  if (!plan.cache || !plan.cache->take(name, source, plan.format, out, in, group, plan.pages, cached)) return false;
  plan.cache->record(name, source, *cached);
  release();
  if (plan.on_converted) plan.on_converted(source_bytes);
  return true;
}

// After quantizing weight `name` into q: refuses a scale overflow (`bad`, the first row-major
// group, as ops::quantize_weight reports it), records q in the cache and reports progress.
void finish_quantized(const WeightPlan& plan, const std::string& name, const std::string& source, int64_t bad,
                      int64_t groups_per_row, const ConvertedWeight& q, uint64_t source_bytes) {
  QVL_CHECK(bad < 0, Unsupported,
            name + ": row " + std::to_string(bad / groups_per_row) + ", group " + std::to_string(bad % groups_per_row) +
                " has weights too large for " + weight_format_name(plan.format) +
                " (its scale overflows f16, the format's scale type); keep it as stored ('bf16' weights/visionWeights)");
  if (plan.cache) plan.cache->record(name, source, q);
  if (plan.on_converted) plan.on_converted(source_bytes);
}

// The stored weight `dense` (checkpoint tensor `source`, or "") quantized per the plan (or placed
// as is when the plan keeps it).
ConvertedWeight apply_plan(ConvertedWeight dense, const WeightPlan& plan, const std::string& name,
                           const std::string& source) {
  const int64_t group = plan.quantize ? q_load_group(plan.format, dense.ref.in) : 0;
  if (group == 0) return place(std::move(dense), plan);
  const uint64_t bytes = static_cast<uint64_t>(dense.storage.front().nbytes());
  ConvertedWeight q;
  if (take_cached(plan, name, source, dense.ref.out, dense.ref.in, group, bytes, [&] { release_dense(dense); }, &q))
    return q;
  q = empty_group_quantized(plan.format, dense.ref.out, dense.ref.in, group, plan.pages);
  const int64_t bad = ops::quantize_weight(dense.ref, plan.format, group, q.storage[0].raw(), q.storage[1].raw(),
                                           q.storage.size() > 2 ? q.storage[2].raw() : nullptr, pool_of(plan));
  release_dense(dense);
  finish_quantized(plan, name, source, bad, dense.ref.in / group, q, bytes);
  return q;
}

// Owned, uninitialised storage for `rows` rows shaped like `like` (format, row length, group).
ConvertedWeight empty_rows_like(const WeightRef& like, int64_t rows, Pages pages) {
  const WeightFormatTraits& t = weight_format_traits(like.format);
  switch (like.format) {
    case WeightFormat::Q8:
    case WeightFormat::Q4: return empty_group_quantized(like.format, rows, like.in, like.group, pages);
    case WeightFormat::F32:
    case WeightFormat::F16:
    case WeightFormat::BF16:
    case WeightFormat::F8: break;
  }
  ConvertedWeight c;
  c.storage.push_back(Tensor::empty(t.storage, {rows, like.in}, pages));
  c.ref = dense_weight(like.format, c.storage[0].raw(), rows, like.in, like.in);
  if (t.has_scales) {  // f8: one f32 scale per 128-block of a row (core/weight_format.h)
    c.storage.push_back(Tensor::empty(DType::F32, {rows, like.in / t.block}, pages));
    c.ref.scales = c.storage[1].raw();
    c.ref.group = like.group;
  }
  return c;
}

}  // namespace

ConvertedWeight convert_dense_weight(const Tensor& t, const std::string& what, int64_t in, int64_t out,
                                     const WeightPlan& plan, const std::string& source) {
  WeightFormat f;
  QVL_CHECK(weight_format_from_dtype(t.dtype(), &f), Unsupported,
            what + " is " + dtype_name(t.dtype()) + ", which is not a weight format (f32, bf16 or f16)");
  QVL_CHECK(t.numel() == in * out, ModelFormat,
            what + " " + t.shape_string() + " cannot be viewed as [" + std::to_string(out) + "," + std::to_string(in) + "]");
  ConvertedWeight c;
  c.storage.push_back(t.reshape({out, in}));
  c.ref = dense_weight(f, c.storage.back().raw(), out, in, in);
  return apply_plan(std::move(c), plan, what, source);
}

ConvertedWeight convert_linear_weight(const WeightStore& w, const std::string& prefix, int64_t in, int64_t out,
                                      const WeightPlan& plan) {
  ConvertedWeight q;
  // Official quantized layouts are already quantized: the on-load plan does not apply to them,
  // only its placement of what stays a view of the mapped file.
  if (convert_official_linear(w, prefix, in, out, &q)) return place(std::move(q), plan);
  const std::string name = prefix + ".weight";
  return convert_dense_weight(w.get(name, {out, in}), "tensor " + name, in, out, plan, name);
}

namespace {

// The fused "x @ W" tensor `name` [E, R, C] in the op's stacked [E·C, R] form: quantized at load
// when the plan says so, R is a whole number of 32-blocks and C of 16-row panels (so that every
// expert's rows start a panel, core/weight_quant.h; any C for one expert), else repacked as stored.
ConvertedWeight convert_fused_experts(const WeightStore& w, const std::string& name, int64_t E, int64_t R, int64_t C,
                                      const WeightPlan& plan) {
  const Tensor* stored = w.find(name);
  QVL_CHECK(stored == nullptr || stored->dtype() != DType::F8E4M3, Unsupported,
            "tensor " + name + " holds fused float8 experts; the official FP8 release stores its experts one by one "
            "(<experts>.N.gate_proj.weight with weight_scale_inv), and no fused float8 scale layout is known");
  const Tensor& src = w.get(name, {E, R, C});
  WeightFormat f;
  QVL_CHECK(weight_format_from_dtype(src.dtype(), &f), Unsupported,
            "tensor " + name + " is " + dtype_name(src.dtype()) + ", which is not a weight format (f32, bf16 or f16)");
  const uint64_t bytes = static_cast<uint64_t>(src.nbytes());
  const int64_t group = plan.quantize ? q_load_group(plan.format, R) : 0;
  if (group > 0 && (E == 1 || C % kQPanelRows == 0)) {
    ConvertedWeight q;
    if (take_cached(plan, name, name, E * C, R, group, bytes, [&] { release_source(src); }, &q)) return q;
    q = empty_group_quantized(plan.format, E * C, R, group, plan.pages);
    const int64_t expert_bytes = static_cast<int64_t>(bytes) / E;
    const char* base = static_cast<const char*>(src.raw());
    // Each expert's mapped pages go as soon as it is quantized: the load never holds the stored
    // experts and their quantized copy at once (ops::moe_quantize_experts calls back per expert).
    const int64_t bad = ops::moe_quantize_experts(
        src.raw(), f, E, R, C, plan.format, group, q.storage[0].raw(), q.storage[1].raw(),
        q.storage.size() > 2 ? q.storage[2].raw() : nullptr, pool_of(plan),
        [&](int64_t e) { src.storage()->release(base + e * expert_bytes, static_cast<size_t>(expert_bytes)); });
    release_source(src);
    finish_quantized(plan, name, name, bad, R / group, q, bytes);
    return q;
  }
  ConvertedWeight c;
  c.storage.push_back(Tensor::empty(src.dtype(), {E * C, R}, plan.pages));
  ops::moe_pack_experts(src.raw(), c.storage[0].raw(), f, E, R, C, pool_of(plan));
  c.ref = dense_weight(f, c.storage[0].raw(), E * C, R, R);
  release_source(src);
  return c;
}

// Experts stored one by one as nn.Linear layers (`<prefix>.<e>.<proj>`, [out, in] each; the
// official FP8 release's layout, see lib/model/quantization.ts), each converted as the linear
// layers of its checkpoint are (official layouts, or dense kept as stored), then stacked in
// expert order, projections of an expert one after the other (gate rows, then up rows).
ConvertedWeight convert_split_experts(const WeightStore& w, const std::string& prefix, const std::vector<std::string>& projs,
                                      int64_t E, int64_t in, int64_t out, const WeightPlan& plan) {
  std::vector<ConvertedWeight> parts;
  std::vector<WeightRef> refs;
  uint64_t bytes = 0;
  for (int64_t e = 0; e < E; ++e) {
    for (const std::string& proj : projs) {
      const std::string p = prefix + "." + std::to_string(e) + "." + proj;
      ConvertedWeight c;
      if (!convert_official_linear(w, p, in, out, &c)) c = convert_dense_weight(w.get(p + ".weight", {out, in}), "tensor " + p + ".weight", in, out);
      QVL_CHECK(c.perm.empty(), Unsupported, "layer " + p + ": reordered (act-order) experts are not supported");
      QVL_CHECK(refs.empty() || (c.ref.format == refs[0].format && c.ref.group == refs[0].group), ModelFormat,
                "layer " + p + " is stored as " + weight_format_name(c.ref.format) + ", unlike " + prefix + ".0." + projs[0] +
                    " (" + weight_format_name(refs[0].format) + "): one layer's experts must share a format");
      bytes += static_cast<uint64_t>(c.storage.front().nbytes());
      refs.push_back(c.ref);
      parts.push_back(std::move(c));
    }
  }
  ConvertedWeight s = empty_rows_like(refs[0], E * static_cast<int64_t>(projs.size()) * out, plan.pages);
  s.ref = ops::moe_stack_expert_rows(refs.data(), static_cast<int64_t>(refs.size()), s.storage[0].raw(),
                                     s.storage.size() > 1 ? s.storage[1].raw() : nullptr,
                                     s.storage.size() > 2 ? s.storage[2].raw() : nullptr, pool_of(plan));
  for (const ConvertedWeight& c : parts)
    for (const Tensor& t : c.storage) release_source(t);
  if (plan.on_converted) plan.on_converted(bytes);
  return s;
}

}  // namespace

ConvertedWeight convert_moe_experts(const WeightStore& w, const std::string& prefix, MoeProjection which, int64_t E,
                                    int64_t H, int64_t I, const WeightPlan& plan) {
  const bool gate_up = which == MoeProjection::GateUp;
  const std::string fused = prefix + (gate_up ? ".gate_up_proj" : ".down_proj");
  if (w.has(fused) || !w.has(prefix + ".0." + (gate_up ? "gate_proj" : "down_proj") + ".weight")) {
    return gate_up ? convert_fused_experts(w, fused, E, H, 2 * I, plan) : convert_fused_experts(w, fused, E, I, H, plan);
  }
  return gate_up ? convert_split_experts(w, prefix, {"gate_proj", "up_proj"}, E, H, I, plan)
                 : convert_split_experts(w, prefix, {"down_proj"}, E, I, H, plan);
}

}  // namespace qvl::models
