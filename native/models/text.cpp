#include "models/text.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/embedding.h"
#include "ops/finite.h"
#include "ops/moe.h"
#include "ops/rope.h"
#include "ops/rows.h"

namespace qvl::models {

namespace {

// A NaN or infinity computed from finite weights and a valid request is the checkpoint's doing
// (weights that overflow float32 on this input): say so, rather than let a later op blame its input.
void check_produced_finite(const float* x, int64_t n, const char* what, const ExecContext& ctx) {
  ops::FiniteParams p;
  p.x = x;
  p.dtype = DType::F32;
  p.n = n;
  const int64_t at = ops::first_nonfinite(p, ctx);
  if (at >= 0)
    fail(ErrorCode::ModelFormat, std::string("the checkpoint's weights produced a non-finite value (NaN or infinity) in ") +
                                     what + " at element " + std::to_string(at) + ": the model overflows float32 on this input");
}

int64_t step_rows(const TextStep& step, const KvPool& cache) { return step.rows ? step.n_rows : cache.size(); }
int64_t cache_row(const TextStep& step, int64_t i) { return step.rows ? step.rows[i] : i; }

// Where each row's tokens start in x (B + 1 entries, the last one the token count): rows hold
// `steps` tokens each, or counts[i] (each >= 1) when the step gives counts.
std::vector<int64_t> token_offsets(const TextStep& step, int64_t B) {
  std::vector<int64_t> off(static_cast<size_t>(B + 1), 0);
  for (int64_t i = 0; i < B; ++i) {
    const int64_t c = step.counts ? step.counts[i] : step.steps;
    QVL_CHECK(c >= 1, Input, "row " + std::to_string(i) + " of a step has no tokens");
    off[static_cast<size_t>(i + 1)] = off[static_cast<size_t>(i)] + c;
  }
  return off;
}

// Rows must be distinct live sequences: two token streams writing one slot would corrupt it.
void check_step_rows(const TextStep& step, const KvPool& cache) {
  QVL_CHECK(step_rows(step, cache) >= 1, Input, "a step needs at least one row");
  std::vector<bool> taken(static_cast<size_t>(cache.size()), false);
  for (int64_t i = 0; i < step_rows(step, cache); ++i) {
    const int64_t b = cache_row(step, i);
    QVL_CHECK(cache.live(b), Input,
              "step row " + std::to_string(b) + " is not a live sequence of the session (" + std::to_string(cache.size()) + " ids)");
    QVL_CHECK(!taken[static_cast<size_t>(b)], Input, "step row " + std::to_string(b) + " is listed twice");
    taken[static_cast<size_t>(b)] = true;
  }
}

// The per-position RoPE table is kept for at most this many positions (32 MiB per table at
// head_dim 128); a step whose positions span more evaluates its own entries directly.
constexpr int64_t kMaxRopeRows = int64_t{1} << 18;

ops::RopeFreqs text_rope_freqs(const TextSpec& spec) {
  ops::RopeFreqs f;
  f.theta = spec.rope_theta;
  f.rotary_dim = spec.head_dim;
  return f;
}

// Rounds `count` new f32 values into a half-width slot tensor, from token row `at`.
void store_kv(const float* src, Tensor& slot, int64_t at, int64_t count, const ExecContext& ctx) {
  ops::ConvertParams c;
  c.src = src;
  c.src_dtype = DType::F32;
  c.dst = static_cast<char*>(slot.raw()) + at * slot.dim(1) * static_cast<int64_t>(dtype_size(slot.dtype()));
  c.dst_dtype = slot.dtype();
  c.n = count;
  ops::convert(c, ctx);
}

}  // namespace

TextDecoder::TextDecoder(const TextSpec& spec, const WeightStore& w, const std::string& prefix,
                         const std::string& lm_head, const WeightPlan& plan)
    : spec_(spec), rope_rows_(text_rope_freqs(spec), kMaxRopeRows) {
  const int64_t Hd = spec.hidden, D = spec.head_dim, Hq = spec.heads, Hkv = spec.kv_heads;
  QVL_CHECK(Hd > 0 && D > 0 && Hq > 0 && Hkv > 0 && Hq % Hkv == 0 && spec.layers > 0 && spec.vocab > 0, ModelFormat,
            "inconsistent text decoder dimensions");
  int64_t sec = 0;
  for (int64_t s : spec.mrope_section) sec += s;
  QVL_CHECK(spec.mrope_section.size() == 3 && sec == D / 2, ModelFormat, "mrope_section must have 3 entries summing to head_dim/2");
  rope_axis_.resize(static_cast<size_t>(D / 2));
  rope_column_.resize(static_cast<size_t>(D / 2));
  for (int64_t i = 0; i < D / 2; ++i) rope_column_[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  ops::rope_mrope_axes(spec.mrope_section.data(), D / 2, spec.rope_layout == RopeLayout::MRopeInterleaved,
                       rope_axis_.data());

  embed_ = w.get(prefix + "embed_tokens.weight", {spec.vocab, Hd});
  // A tied LM head quantized at load is a converted copy: the lookup keeps reading the stored
  // table (a few rows per step), the head's matmul (a large share of decode bytes at a 152k
  // vocabulary) reads the smaller format.
  lm_head_ = spec.tie_embeddings ? Linear(embed_, Hd, spec.vocab, {}, plan) : Linear(w, lm_head, Hd, spec.vocab, false, plan);
  final_norm_ = NormLayer(w, prefix + "norm", Hd, NormLayer::Kind::RmsNorm, spec.rms_eps, false);

  for (int64_t l = 0; l < spec.layers; ++l) {
    const std::string p = prefix + "layers." + std::to_string(l) + ".";
    Layer L;
    L.input_norm = NormLayer(w, p + "input_layernorm", Hd, NormLayer::Kind::RmsNorm, spec.rms_eps, false);
    L.post_norm = NormLayer(w, p + "post_attention_layernorm", Hd, NormLayer::Kind::RmsNorm, spec.rms_eps, false);
    L.q = Linear(w, p + "self_attn.q_proj", Hd, Hq * D, spec.qkv_bias, plan);
    L.k = Linear(w, p + "self_attn.k_proj", Hd, Hkv * D, spec.qkv_bias, plan);
    L.v = Linear(w, p + "self_attn.v_proj", Hd, Hkv * D, spec.qkv_bias, plan);
    L.o = Linear(w, p + "self_attn.o_proj", Hq * D, Hd, spec.o_bias, plan);
    if (spec.qk_norm) {
      L.q_norm = NormLayer(w, p + "self_attn.q_norm", D, NormLayer::Kind::RmsNorm, spec.rms_eps, false);
      L.k_norm = NormLayer(w, p + "self_attn.k_norm", D, NormLayer::Kind::RmsNorm, spec.rms_eps, false);
    }
    L.sparse = std::find(spec.sparse_layers.begin(), spec.sparse_layers.end(), l) != spec.sparse_layers.end();
    if (L.sparse) {
      const int64_t E = spec.experts, I = spec.moe_intermediate;
      // The router stays as stored (never quantized at load, and kept out of FP8 by the official
      // release's modules_to_not_convert): it is small (E × H, 0.1% of a layer's experts at
      // Qwen3-VL-30B's sizes), and its logits pick the experts, so an error there does not
      // perturb a product a little but can switch a token to another expert.
      L.router = Linear(w, p + "mlp.gate", Hd, E, false);
      L.experts_gate_up = convert_moe_experts(w, p + "mlp.experts", MoeProjection::GateUp, E, Hd, I, plan);
      L.experts_down = convert_moe_experts(w, p + "mlp.experts", MoeProjection::Down, E, Hd, I, plan);
    } else {
      L.gate = Linear(w, p + "mlp.gate_proj", Hd, spec.intermediate, false, plan);
      L.up = Linear(w, p + "mlp.up_proj", Hd, spec.intermediate, false, plan);
      L.down = Linear(w, p + "mlp.down_proj", spec.intermediate, Hd, false, plan);
    }
    layers_.push_back(std::move(L));
  }
}

KvPool TextDecoder::new_cache(int64_t batch, int64_t capacity, DType kv_dtype) const {
  KvPool pool(spec_.layers, spec_.kv_heads * spec_.head_dim, kv_dtype);
  for (int64_t b = 0; b < batch; ++b) pool.add(capacity);
  return pool;
}

void TextDecoder::embed(const int32_t* ids, int64_t n, float* out, const ExecContext& ctx) const {
  ops::EmbeddingParams p;
  p.ids = ids;
  p.ids_dtype = DType::I32;
  p.n = n;
  p.table = embed_.raw();
  p.table_dtype = embed_.dtype();
  p.vocab = spec_.vocab;
  p.hidden = spec_.hidden;
  p.ldt = spec_.hidden;
  p.out = out;
  p.ldo = spec_.hidden;
  ops::embedding(p, ctx);
}

void TextDecoder::attention_block(const Layer& L, int64_t li, float* x, const TextStep& step, KvPool& cache,
                                  const float* cos, const float* sin, const ExecContext& ctx) const {
  const int64_t Hd = spec_.hidden, D = spec_.head_dim, Hq = spec_.heads, Hkv = spec_.kv_heads;
  const int64_t B = step_rows(step, cache), kvd = Hkv * D;
  const std::vector<int64_t> off = token_offsets(step, B);
  const int64_t n = off[B];
  ArenaScope layer_scope(ctx.arena());  // this block's temporaries are the next block's
  Tensor h = ctx.temp(DType::F32, {n, Hd});
  L.input_norm.apply(x, Hd, n, h.data<float>(), Hd, ctx);

  Tensor q = ctx.temp(DType::F32, {n, Hq * D});
  // The step's new keys and values, every row at once ([n, kvd] each): q, k and v are one
  // matmul_group over the normed rows (one pool job at decode, and each weight read once however
  // many sequences the step holds); then each sequence's rows go into its slot, rounded to bf16
  // there for bf16 storage. A lone sequence with f32 storage writes straight into its slot.
  const bool wide = cache.dtype() == DType::F32;
  const bool direct = wide && B == 1;
  Tensor kn, vn;
  if (!direct) {
    kn = ctx.temp(DType::F32, {n, kvd});
    vn = ctx.temp(DType::F32, {n, kvd});
  }
  KvSlot& lone = cache.slot(cache_row(step, 0));
  float* kw = direct ? lone.k[li].data<float>() + lone.len * kvd : kn.data<float>();
  float* vw = direct ? lone.v[li].data<float>() + lone.len * kvd : vn.data<float>();
  const LinearOut qkv[3] = {{&L.q, q.data<float>(), Hq * D}, {&L.k, kw, kvd}, {&L.v, vw, kvd}};
  Linear::apply_group(qkv, 3, h.data<float>(), Hd, n, ctx, step.cancel);
  if (spec_.qk_norm) {
    L.q_norm.apply(q.data<float>(), D, n * Hq, q.data<float>(), D, ctx);
    L.k_norm.apply(kw, D, n * Hkv, kw, D, ctx);
  }
  ops::RopeParams r;
  r.T = n;
  r.D = D;
  r.rotary_dim = D;
  r.cos = cos;
  r.sin = sin;
  r.x = q.data<float>(), r.H = Hq, r.ld = Hq * D;
  ops::rope_apply(r, ctx);
  r.x = kw, r.H = Hkv, r.ld = kvd;
  ops::rope_apply(r, ctx);

  // One attention call covers every sequence, each a segment over its own slot (one dispatch per
  // layer however many sequences decode together); a bf16 slot is read as stored (attention widens
  // a tile at a time as it loads it), never copied wide.
  // Rows of left-padding queries are never written by attention and must read zero: the scratch
  // is zeroed only when this step holds such rows (a prompt's first chunk, never a decode step).
  bool has_padded_queries = false;
  for (int64_t i = 0; i < B; ++i) {
    const KvSlot& kv = cache.slot(cache_row(step, i));
    has_padded_queries = has_padded_queries || kv.pad > kv.len;
  }
  Tensor attn = ctx.temp(DType::F32, {n, Hq * D}, has_padded_queries);
  std::vector<ops::AttentionSegment> segs;
  int64_t Tk = 0;
  for (int64_t i = 0; i < B; ++i) {
    const int64_t S = off[i + 1] - off[i], o = off[i];
    KvSlot& kv = cache.slot(cache_row(step, i));
    if (!direct) {
      store_kv(kn.data<float>() + o * kvd, kv.k[li], kv.len, S * kvd, ctx);
      store_kv(vn.data<float>() + o * kvd, kv.v[li], kv.len, S * kvd, ctx);
    }
    // Queries that are themselves left padding attend to nothing (their output stays zero).
    const int64_t padded_here = std::clamp<int64_t>(kv.pad - kv.len, 0, S);
    if (padded_here == S) continue;
    // Keys [pad, len + S) of this sequence.
    segs.push_back({o + padded_here, o + S, kv.pad, kv.len + S, kv.k[li].raw(), kv.v[li].raw()});
    Tk = std::max(Tk, kv.len + S);
  }
  if (!segs.empty()) {
    ops::AttentionParams ap;
    ap.q = q.data<float>();
    ap.ldq = Hq * D;
    ap.ldk = ap.ldv = kvd;
    ap.kv_dtype = cache.dtype();
    ap.out = attn.data<float>();
    ap.ldo = Hq * D;
    ap.Tq = n;
    ap.Tk = Tk;
    ap.Hq = Hq;
    ap.Hkv = Hkv;
    ap.D = D;
    ap.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
    ap.causal = true;
    ap.segments = segs.data();
    ap.n_segments = static_cast<int64_t>(segs.size());
    ap.cancel = step.cancel;
    ops::attention(ap, ctx);
  }

  L.o.apply(attn.data<float>(), Hq * D, n, h.data<float>(), Hd, ctx, step.cancel);
  add_rows(x, Hd, h.data<float>(), Hd, n, Hd, ctx);
}

void TextDecoder::mlp_block(const Layer& L, float* x, int64_t n, const ExecContext& ctx, const CancelToken* cancel) const {
  const int64_t Hd = spec_.hidden;
  ArenaScope layer_scope(ctx.arena());
  Tensor h = ctx.temp(DType::F32, {n, Hd});
  L.post_norm.apply(x, Hd, n, h.data<float>(), Hd, ctx);
  Tensor out = ctx.temp(DType::F32, {n, Hd});
  if (L.sparse) {
    const int64_t E = spec_.experts;
    Tensor logits = ctx.temp(DType::F32, {n, E});
    L.router.apply(h.data<float>(), Hd, n, logits.data<float>(), E, ctx);
    check_produced_finite(logits.data<float>(), n * E, "the MoE router logits", ctx);
    ops::MoeParams m;
    m.T = n;
    m.E = E;
    m.k = spec_.experts_per_tok;
    m.H = Hd;
    m.I = spec_.moe_intermediate;
    m.norm_topk_prob = spec_.norm_topk_prob;
    m.router_logits = logits.data<float>();
    m.ld_logits = E;
    m.x = h.data<float>();
    m.ldx = Hd;
    m.gate_up = L.experts_gate_up.ref;
    m.down = L.experts_down.ref;
    m.out = out.data<float>();
    m.ldo = Hd;
    ops::moe(m, ctx);
  } else {
    const int64_t I = spec_.intermediate;
    Tensor gu = ctx.temp(DType::F32, {n, 2 * I});
    const LinearOut gate_up[2] = {{&L.gate, gu.data<float>(), 2 * I}, {&L.up, gu.data<float>() + I, 2 * I}};
    Linear::apply_group(gate_up, 2, h.data<float>(), Hd, n, ctx, cancel);
    swiglu_rows(gu.data<float>(), n, I, ctx);
    L.down.apply(gu.data<float>(), 2 * I, n, out.data<float>(), Hd, ctx, cancel);
  }
  add_rows(x, Hd, out.data<float>(), Hd, n, Hd, ctx);
}

void TextDecoder::forward(float* x, const TextStep& step, KvPool& cache, const ExecContext& ctx, Trace* trace) const {
  const int64_t B = step_rows(step, cache), Hd = spec_.hidden, half = spec_.head_dim / 2;
  QVL_CHECK(step.positions, Input, "forward needs its tokens' positions");
  check_step_rows(step, cache);
  const std::vector<int64_t> off = token_offsets(step, B);
  const int64_t n = off[B];
  for (int64_t i = 0; i < B; ++i) {
    const KvSlot& kv = cache.slot(cache_row(step, i));
    const int64_t S = off[i + 1] - off[i];
    if (kv.len + S > kv.capacity)
      fail(ErrorCode::ContextOverflow, "sequence of " + std::to_string(kv.len + S) +
                                           " tokens exceeds the context of " + std::to_string(kv.capacity));
  }
  // Step-long scratch: the layers' scopes open after these.
  Tensor cos = ctx.temp(DType::F32, {n, half}), sin = ctx.temp(DType::F32, {n, half});
  rope_tables(step.positions, n, cos.data<float>(), sin.data<float>(), ctx);

  const size_t n_deep = step.deepstack ? step.deepstack->size() : 0;
  for (int64_t l = 0; l < spec_.layers; ++l) {
    if (trace) trace->record("layer_input." + std::to_string(l), x, n, Hd, Hd);
    check_cancel(step.cancel, "a decoder layer");
    attention_block(layers_[l], l, x, step, cache, cos.data<float>(), sin.data<float>(), ctx);
    check_cancel(step.cancel, "a decoder layer");
    mlp_block(layers_[l], x, n, ctx, step.cancel);
    if (static_cast<size_t>(l) < n_deep && step.visual_rows) {
      const Tensor& ds = (*step.deepstack)[l];
      QVL_CHECK(ds.ndim() == 2 && ds.dim(1) == Hd, Input, "deepstack features must be [n, hidden]");
      // x[i] += ds[visual_rows[i]] for the visual tokens; the op rejects a row past ds.
      index_rows(ops::RowsKind::AddIndexed, x, ds.data<float>(), n, Hd, step.visual_rows, DType::I32, ds.dim(0), ctx);
    }
  }
  for (int64_t i = 0; i < B; ++i) cache.slot(cache_row(step, i)).len += off[i + 1] - off[i];
  if (trace) trace->record("last_layer_output", x, n, Hd, Hd);
  final_norm_.apply(x, Hd, n, x, Hd, ctx);
  if (trace) trace->record("final_hidden", x, n, Hd, Hd);
}

void TextDecoder::rope_tables(const int64_t* positions, int64_t n, float* cos, float* sin, const ExecContext& ctx) const {
  if (n == 0) return;
  const auto range = std::minmax_element(positions, positions + 3 * n);
  const std::shared_ptr<const RopeRowTable> table = rope_rows_.cover(*range.first, *range.second);
  if (!table) {
    // Positions spread wider than the cached table may grow: this step's entries directly.
    const ops::RopeFreqs f = text_rope_freqs(spec_);
    const int64_t sec[3] = {spec_.mrope_section[0], spec_.mrope_section[1], spec_.mrope_section[2]};
    if (spec_.rope_layout == RopeLayout::MRopeInterleaved) {
      ops::rope_table_mrope_interleaved(positions, n, sec, f, cos, sin);
    } else {
      ops::rope_table_mrope(positions, n, sec, f, cos, sin);
    }
    return;
  }
  gather_rope(*table, positions, 3, n, spec_.head_dim / 2, rope_axis_.data(), rope_column_.data(), cos, sin, ctx);
}

void TextDecoder::logits(const float* h, int64_t ldh, int64_t rows, float* out, const ExecContext& ctx) const {
  lm_head_.apply(h, ldh, rows, out, spec_.vocab, ctx);
  check_produced_finite(out, rows * spec_.vocab, "the logits", ctx);
}

}  // namespace qvl::models
