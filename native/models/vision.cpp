#include "models/vision.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "models/vision_window.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/rope.h"
#include "ops/rows.h"
#include "ops/vision_pos_embed.h"

namespace qvl::models {

namespace {

bool contains(const std::vector<int64_t>& v, int64_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

static_assert(sizeof(std::array<int64_t, 3>) == 3 * sizeof(int64_t), "grids are passed to ops as [n][3] int64");

// Grid lists whose layout stays cached (a chat usually repeats one image size), and the bytes
// their RoPE tables may hold together (a long video's layout is rebuilt rather than kept).
constexpr size_t kCachedLayouts = 4;
constexpr int64_t kCachedLayoutBytes = int64_t{64} << 20;
// Positions the per-position 2-D RoPE table holds at most (a grid side in patches).
constexpr int64_t kMaxVisionRopeRows = int64_t{1} << 16;

ops::RopeFreqs vision_rope_freqs(int64_t head_dim) {
  ops::RopeFreqs f;
  f.theta = 10000.0;
  f.rotary_dim = head_dim / 2;  // VisionRotaryEmbedding(head_dim / 2)
  return f;
}

// Rows [dst] = [src] permuted by whole groups of `cols` floats: Gather (dst[i] = src[order[i]]) or
// Scatter (dst[order[i]] = src[i]).
void permute(ops::RowsKind kind, const float* src, float* dst, const std::vector<int64_t>& order, int64_t cols,
             const ExecContext& ctx) {
  const int64_t n = static_cast<int64_t>(order.size());
  index_rows(kind, dst, src, n, cols, order.data(), DType::I64, n, ctx);
}

}  // namespace

VisionTower::Merger VisionTower::load_merger(const WeightStore& w, const std::string& p, const std::string& norm,
                                             const std::string& fc1, const std::string& fc2, bool postshuffle,
                                             const WeightPlan& plan) const {
  const int64_t E = spec_.hidden, merged = E * spec_.merge * spec_.merge;
  const bool rms = recipe_.rms_norm;
  Merger m;
  m.postshuffle = postshuffle;
  m.norm = NormLayer(w, p + norm, postshuffle ? merged : E, rms ? NormLayer::Kind::RmsNorm : NormLayer::Kind::LayerNorm,
                     spec_.norm_eps, !rms);
  m.fc1 = Linear(w, p + fc1, merged, merged, true, plan);
  m.fc2 = Linear(w, p + fc2, merged, spec_.out_hidden, true, plan);
  return m;
}

VisionTower::VisionTower(const VisionSpec& spec, const VisionRecipe& recipe, const WeightStore& w,
                         const std::string& prefix, const WeightPlan& plan)
    : spec_(spec),
      recipe_(recipe),
      rope_rows_(vision_rope_freqs(spec.heads > 0 ? spec.hidden / spec.heads : 0), kMaxVisionRopeRows) {
  QVL_CHECK(spec.hidden > 0 && spec.heads > 0 && spec.hidden % spec.heads == 0, ModelFormat,
            "vision hidden size must be a multiple of the head count");
  head_dim_ = spec.hidden / spec.heads;
  QVL_CHECK(head_dim_ % 4 == 0, ModelFormat, "vision head_dim must be a multiple of 4 for 2-D rotary");
  const int64_t quarter = head_dim_ / 4;
  for (int64_t a = 0; a < 2; ++a) {
    for (int64_t j = 0; j < quarter; ++j) {
      rope_axis_.push_back(static_cast<uint8_t>(a));
      rope_column_.push_back(static_cast<int32_t>(j));
    }
  }
  const int64_t E = spec.hidden;
  const int64_t patch_dim = spec.in_channels * spec.temporal_patch * spec.patch * spec.patch;
  const Tensor& pw = w.get(prefix + "patch_embed.proj.weight",
                           {E, spec.in_channels, spec.temporal_patch, spec.patch, spec.patch});
  // Conv3d with kernel == stride over exactly one patch is a matmul with the flattened kernel.
  patch_embed_ = recipe.patch_bias ? Linear(pw, patch_dim, E, load_vector(w, prefix + "patch_embed.proj.bias", E), plan)
                                   : Linear(pw, patch_dim, E, {}, plan);
  if (recipe.learned_pos_embed) {
    QVL_CHECK(spec.num_position_embeddings > 0, ModelFormat, "vision config needs num_position_embeddings");
    pos_embed_ = w.get(prefix + "pos_embed.weight", {spec.num_position_embeddings, E});
    int64_t side = 0;
    while ((side + 1) * (side + 1) <= spec.num_position_embeddings) ++side;
    QVL_CHECK(side * side == spec.num_position_embeddings, ModelFormat,
              "pos_embed table has " + std::to_string(spec.num_position_embeddings) +
                  " rows, not a square grid (num_position_embeddings)");
    const DType pd = pos_embed_.dtype();
    QVL_CHECK(pd == DType::F32 || pd == DType::BF16 || pd == DType::F16, ModelFormat,
              std::string("pos_embed table must be F32, BF16 or F16, got ") + dtype_name(pd));
  }
  if (recipe.window_attention) QVL_CHECK(spec.window_size > 0, ModelFormat, "vision config needs window_size");
  // An activation the kernels lack is refused here, at load, not by every request.
  const ops::ActKind act = act_kind(spec.hidden_act);

  const bool rms = recipe.rms_norm;
  const auto nk = rms ? NormLayer::Kind::RmsNorm : NormLayer::Kind::LayerNorm;
  for (int64_t i = 0; i < spec.depth; ++i) {
    const std::string p = prefix + "blocks." + std::to_string(i) + ".";
    Block b;
    b.norm1 = NormLayer(w, p + "norm1", E, nk, spec.norm_eps, !rms);
    b.norm2 = NormLayer(w, p + "norm2", E, nk, spec.norm_eps, !rms);
    b.qkv = Linear(w, p + "attn.qkv", E, 3 * E, true, plan);
    b.proj = Linear(w, p + "attn.proj", E, E, true, plan);
    if (recipe.gated_mlp) {
      QVL_CHECK(act == ops::ActKind::Silu, Unsupported,
                "gated vision MLP with hidden_act '" + spec.hidden_act + "' is not supported");
      b.gated = true;
      b.gate = Linear(w, p + "mlp.gate_proj", E, spec.intermediate, true, plan);
      b.up = Linear(w, p + "mlp.up_proj", E, spec.intermediate, true, plan);
      b.down = Linear(w, p + "mlp.down_proj", spec.intermediate, E, true, plan);
    } else {
      b.fc1 = Linear(w, p + recipe.fc1, E, spec.intermediate, true, plan);
      b.fc2 = Linear(w, p + recipe.fc2, spec.intermediate, E, true, plan);
    }
    blocks_.push_back(std::move(b));
  }
  merger_ = load_merger(w, prefix + "merger.", recipe.merger_norm, recipe.merger_fc1, recipe.merger_fc2, false, plan);
  if (recipe.deepstack) {
    for (size_t i = 0; i < spec.deepstack_indexes.size(); ++i) {
      QVL_CHECK(spec.deepstack_indexes[i] >= 0 && spec.deepstack_indexes[i] < spec.depth, ModelFormat,
                "deepstack_visual_indexes entry out of range");
      deepstack_.push_back(load_merger(w, prefix + "deepstack_merger_list." + std::to_string(i) + ".",
                                       recipe.merger_norm, recipe.merger_fc1, recipe.merger_fc2, true, plan));
    }
  }
}

void VisionTower::run_block(const Block& b, float* x, int64_t n, const float* cos, const float* sin,
                            const std::vector<int64_t>& seg_bounds, const ExecContext& ctx, const CancelToken* cancel) const {
  const int64_t E = spec_.hidden, H = spec_.heads, D = head_dim_;
  ArenaScope block_scope(ctx.arena());  // this block's temporaries are the next block's
  Tensor h = ctx.temp(DType::F32, {n, E});
  b.norm1.apply(x, E, n, h.data<float>(), E, ctx);

  // Fused q|k|v rows: [n, 3E]; q and k heads are adjacent, so one rope call rotates both.
  Tensor qkv = ctx.temp(DType::F32, {n, 3 * E});
  float* qkvp = qkv.data<float>();
  b.qkv.apply(h.data<float>(), E, n, qkvp, 3 * E, ctx, cancel);
  ops::RopeParams rp;
  rp.x = qkvp;
  rp.T = n;
  rp.H = 2 * H;
  rp.D = D;
  rp.ld = 3 * E;
  rp.rotary_dim = D;
  rp.cos = cos;
  rp.sin = sin;
  ops::rope_apply(rp, ctx);

  std::vector<ops::AttentionSegment> segs;
  for (size_t i = 0; i + 1 < seg_bounds.size(); ++i) {
    segs.push_back({seg_bounds[i], seg_bounds[i + 1], seg_bounds[i], seg_bounds[i + 1]});
  }
  ops::AttentionParams ap;
  ap.q = qkvp;
  ap.k = qkvp + E;
  ap.v = qkvp + 2 * E;
  ap.ldq = ap.ldk = ap.ldv = 3 * E;
  ap.out = h.data<float>();  // norm1's output is no longer needed
  ap.ldo = E;
  ap.Tq = ap.Tk = n;
  ap.Hq = ap.Hkv = H;
  ap.D = D;
  ap.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  ap.causal = false;
  ap.segments = segs.data();
  ap.n_segments = static_cast<int64_t>(segs.size());
  ap.cancel = cancel;
  ops::attention(ap, ctx);

  Tensor o = ctx.temp(DType::F32, {n, E});
  b.proj.apply(h.data<float>(), E, n, o.data<float>(), E, ctx, cancel);
  add_rows(x, E, o.data<float>(), E, n, E, ctx);

  check_cancel(cancel, "a vision block");
  b.norm2.apply(x, E, n, h.data<float>(), E, ctx);
  const int64_t I = spec_.intermediate;
  if (b.gated) {
    QVL_CHECK(act_kind(spec_.hidden_act) == ops::ActKind::Silu, Unsupported,
              "gated vision MLP with hidden_act '" + spec_.hidden_act + "' is not supported");
    Tensor gu = ctx.temp(DType::F32, {n, 2 * I});
    float* g = gu.data<float>();
    b.gate.apply(h.data<float>(), E, n, g, 2 * I, ctx, cancel);
    b.up.apply(h.data<float>(), E, n, g + I, 2 * I, ctx, cancel);
    swiglu_rows(g, n, I, ctx);
    b.down.apply(g, 2 * I, n, o.data<float>(), E, ctx, cancel);
  } else {
    Tensor mid = ctx.temp(DType::F32, {n, I});
    b.fc1.apply(h.data<float>(), E, n, mid.data<float>(), I, ctx, cancel);
    activate_rows(act_kind(spec_.hidden_act), mid.data<float>(), n, I, I, ctx);
    b.fc2.apply(mid.data<float>(), I, n, o.data<float>(), E, ctx, cancel);
  }
  add_rows(x, E, o.data<float>(), E, n, E, ctx);
}

Tensor VisionTower::run_merger(const Merger& m, const float* x, int64_t n, const ExecContext& ctx) const {
  const int64_t E = spec_.hidden, g = spec_.merge * spec_.merge;
  const int64_t groups = n / g, merged = E * g;
  // Patches arrive merge-group contiguous, so [n, E] viewed as [n/g, g·E] is the merger's input.
  // The merger's output outlives the encode (vision features, deepstack): owned, taken first.
  Tensor out = Tensor::empty(DType::F32, {groups, spec_.out_hidden});
  ArenaScope merger_scope(ctx.arena());
  Tensor h = ctx.temp(DType::F32, {n, E});
  if (m.postshuffle) {
    m.norm.apply(x, merged, groups, h.data<float>(), merged, ctx);
  } else {
    m.norm.apply(x, E, n, h.data<float>(), E, ctx);
  }
  Tensor mid = ctx.temp(DType::F32, {groups, merged});
  m.fc1.apply(h.data<float>(), merged, groups, mid.data<float>(), merged, ctx);
  activate_rows(ops::ActKind::GeluErf, mid.data<float>(), groups, merged, merged, ctx);
  m.fc2.apply(mid.data<float>(), merged, groups, out.data<float>(), spec_.out_hidden, ctx);
  return out;
}

std::shared_ptr<const VisionTower::GridLayout> VisionTower::grid_layout(const std::vector<std::array<int64_t, 3>>& grids,
                                                                       const ExecContext& ctx) const {
  {
    std::lock_guard<std::mutex> lock(layouts_mu_);
    for (auto it = layouts_.begin(); it != layouts_.end(); ++it) {
      if ((*it)->grids != grids) continue;
      std::shared_ptr<const GridLayout> hit = *it;
      layouts_.erase(it);
      layouts_.push_front(hit);
      return hit;
    }
  }
  std::shared_ptr<const GridLayout> built = build_layout(grids, ctx);
  const auto bytes = [](const GridLayout& L) { return 2 * L.cos.numel() * static_cast<int64_t>(sizeof(float)); };
  if (bytes(*built) > kCachedLayoutBytes) return built;
  std::lock_guard<std::mutex> lock(layouts_mu_);
  layouts_.push_front(built);
  int64_t held = 0;
  for (const auto& L : layouts_) held += bytes(*L);
  while (layouts_.size() > kCachedLayouts || held > kCachedLayoutBytes) {
    held -= bytes(*layouts_.back());
    layouts_.pop_back();
  }
  return built;
}

std::shared_ptr<const VisionTower::GridLayout> VisionTower::build_layout(const std::vector<std::array<int64_t, 3>>& grids,
                                                                        const ExecContext& ctx) const {
  const int64_t m = spec_.merge, unit = m * m;
  auto L = std::make_shared<GridLayout>();
  L->grids = grids;
  // Patch coordinates in the processor's order: per frame, merge blocks row-major, and inside a
  // block its m x m patches row-major. Each frame is one attention segment. hw holds every
  // patch's row, then every patch's column (the rope_gather op's two position axes).
  std::vector<int64_t> hpos, wpos;
  L->frames.push_back(0);
  int64_t total = 0, side = 1;
  for (const auto& g : grids) {
    const int64_t t = g[0], gh = g[1], gw = g[2];
    QVL_CHECK(t >= 1 && gh >= 1 && gw >= 1 && gh % m == 0 && gw % m == 0, Input,
              "grid (" + std::to_string(t) + "," + std::to_string(gh) + "," + std::to_string(gw) +
                  ") is not a positive multiple of the merge size");
    QVL_CHECK(t * gh * gw <= (int64_t(1) << 31), Input, "grid too large");
    side = std::max({side, gh, gw});
    for (int64_t f = 0; f < t; ++f) {
      for (int64_t bh = 0; bh < gh / m; ++bh)
        for (int64_t bw = 0; bw < gw / m; ++bw)
          for (int64_t r = 0; r < m; ++r)
            for (int64_t c = 0; c < m; ++c) {
              hpos.push_back(bh * m + r);
              wpos.push_back(bw * m + c);
            }
      total += gh * gw;
      L->frames.push_back(total);
    }
  }
  const int64_t n = total, half = head_dim_ / 2;
  L->n = n;
  L->cos = Tensor::empty(DType::F32, {n, half});
  L->sin = Tensor::empty(DType::F32, {n, half});
  const std::shared_ptr<const RopeRowTable> table = rope_rows_.cover(0, side - 1);
  if (table) {
    std::vector<int64_t> hw(hpos);
    hw.insert(hw.end(), wpos.begin(), wpos.end());
    gather_rope(*table, hw.data(), 2, n, half, rope_axis_.data(), rope_column_.data(), L->cos.data<float>(),
                L->sin.data<float>(), ctx);
  } else {
    ops::RopeFreqs f;
    f.theta = 10000.0;
    f.rotary_dim = head_dim_;
    ops::rope_table_vision_2d(hpos.data(), wpos.data(), n, f, L->cos.data<float>(), L->sin.data<float>());
  }
  // Qwen2.5-VL attends within windows: the tower runs on merge groups reordered window by window
  // (frames stay contiguous), so the table rows take that order too.
  if (recipe_.window_attention) {
    L->window = window_layout(grids, spec_.window_size, spec_.patch, m);
    Tensor cos = Tensor::empty(DType::F32, {n, half}), sin = Tensor::empty(DType::F32, {n, half});
    permute(ops::RowsKind::Gather, L->cos.data<float>(), cos.data<float>(), L->window.order, unit * half, ctx);
    permute(ops::RowsKind::Gather, L->sin.data<float>(), sin.data<float>(), L->window.order, unit * half, ctx);
    L->cos = cos;
    L->sin = sin;
  }
  return L;
}

VisionOutput VisionTower::forward(const VisionInput& in, const ExecContext& ctx, Trace* trace) const {
  const int64_t E = spec_.hidden, m = spec_.merge, unit = m * m;
  const int64_t patch_dim = spec_.in_channels * spec_.temporal_patch * spec_.patch * spec_.patch;
  QVL_CHECK(in.patch_dim == patch_dim, Input,
            "pixel values have " + std::to_string(in.patch_dim) + " values per patch, the vision tower expects " +
                std::to_string(patch_dim));
  QVL_CHECK(!in.grids.empty(), Input, "no image or video grids given");
  const std::shared_ptr<const GridLayout> layout = grid_layout(in.grids, ctx);
  QVL_CHECK(layout->n == in.n_patches, Input,
            "grids describe " + std::to_string(layout->n) + " patches but pixel values hold " +
                std::to_string(in.n_patches));
  const int64_t n = layout->n;

  // The encode's hidden states live in its scratch arena; only the merger outputs are owned.
  Tensor x = ctx.temp(DType::F32, {n, E});
  patch_embed_.apply(in.pixels, patch_dim, n, x.data<float>(), E, ctx, in.cancel);
  if (trace) trace->record("vision_patch_embed", x.data<float>(), n, E, E);
  if (pos_embed_.defined()) {
    ArenaScope pos_scope(ctx.arena());
    Tensor pos = ctx.temp(DType::F32, {n, E});
    ops::VisionPosEmbedParams pe;
    pe.table = pos_embed_.raw();
    pe.table_dtype = pos_embed_.dtype();
    pe.table_rows = pos_embed_.dim(0);
    pe.hidden = E;
    pe.ldt = pos_embed_.strides()[0];
    pe.grids = in.grids.front().data();
    pe.n_grids = static_cast<int64_t>(in.grids.size());
    pe.merge = m;
    pe.out = pos.data<float>();
    pe.ldo = E;
    ops::vision_pos_embed(pe, ctx);
    add_rows(x.data<float>(), E, pos.data<float>(), E, n, E, ctx);
  }

  // Window attention: merge groups into window order before the blocks, back after the merger.
  const bool windowed = recipe_.window_attention;
  if (windowed) {
    Tensor permuted = ctx.temp(DType::F32, {n, E});
    permute(ops::RowsKind::Gather, x.data<float>(), permuted.data<float>(), layout->window.order, unit * E, ctx);
    x = permuted;
  }

  VisionOutput out;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const bool full = !windowed || contains(spec_.fullatt_blocks, static_cast<int64_t>(i));
    check_cancel(in.cancel, "a vision block");
    run_block(blocks_[i], x.data<float>(), n, layout->cos.data<float>(), layout->sin.data<float>(),
              full ? layout->frames : layout->window.window_bounds, ctx, in.cancel);
    if (trace) trace->record("vision_block_" + std::to_string(i), x.data<float>(), n, E, E);
    for (size_t d = 0; d < deepstack_.size(); ++d) {
      if (spec_.deepstack_indexes[d] != static_cast<int64_t>(i)) continue;
      check_cancel(in.cancel, "a vision merger");
      out.deepstack.push_back(run_merger(deepstack_[d], x.data<float>(), n, ctx));
    }
  }
  check_cancel(in.cancel, "the vision merger");
  out.embeds = run_merger(merger_, x.data<float>(), n, ctx);
  if (windowed) {
    Tensor restored = Tensor::empty(DType::F32, out.embeds.shape());
    permute(ops::RowsKind::Scatter, out.embeds.data<float>(), restored.data<float>(), layout->window.order,
            spec_.out_hidden, ctx);
    out.embeds = restored;
  }
  return out;
}

}  // namespace qvl::models
