// Models and sessions for JS. Handles are Napi::External wrapping shared_ptrs: a job in flight
// holds its own reference, so dispose() from JS never frees memory a worker is using.
//   loadModel(spec, names, files[, {checkFinite, precision, weights, visionWeights, placement, onConverted}]) -> Promise<handle>
//   modelEncodeVision(handle, pixels, patchDim, grids, trace, cancel?, profile?) -> Promise<{embeds, deepstack, trace, profile?}>
//   modelEncodeFeatures(handle, {images?, videos?}, cancel?) -> Promise<{features, imageTokens, tokens, levels, hidden}>
//     (each run {pixels, patchDim, grids}; `features` is a handle sessionForward takes, the rows never copied to JS)
//   modelNewSession(handle, batch, capacity[, {kvDtype}]) -> session
//   sessionForward(session, args) -> Promise<{logits?, tokens?, trace}>   (args.cancel: a cancel token)
//   sessionSampling(session, {params[], seed, history, rows?, constraints?[]}); sessionStats(session) -> {forwards, rowsComputed}; sessionScratch(session) -> arena stats
//   sessionAddSequence / sessionGrowSequence / sessionFreeSequence / sessionCopyPrefix: the session's KV pool
//   newCancelToken() -> token;  cancelToken(token, 'abort' | 'dispose')
//   disposeHandle(handle)   (model, session, vision features or cancel token; idempotent)
// A call given a cancel token stops within one layer once the token is set, rejecting with
// E_ABORTED or E_DISPOSED (the token's first reason).
#include <napi.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <chrono>
#include <mutex>

#include "core/arena.h"
#include "core/cancel.h"
#include "core/exec_context.h"
#include "core/error.h"
#include "core/placement.h"
#include "core/threadpool.h"
#include "models/family.h"
#include "models/model.h"
#include "models/step.h"
#include "models/vision_features.h"
#include "napi/async.h"
#include "napi/errors.h"
#include "napi/exports.h"
#include "napi/tensor_js.h"

namespace qvl::napi {

namespace {

using models::KvPool;
using models::VlModel;

// A session runs one forward pass at a time (`busy`), so the step's scratch arena and op profiler
// belong to the session: the worker running the pass is their only user, and the arena is reset
// when the pass ends. Vision encodes have no session: each builds its own arena.
struct SessionState {
  std::shared_ptr<VlModel> model;
  KvPool cache;
  std::unique_ptr<models::SessionSampling> sampling;  // set by sessionSampling; used by logits 'sample'
  Arena arena;            // the step's intermediates; reset after every pass
  OpProfiler profiler;    // filled by a pass run with {profile: true}
  std::atomic<bool> busy{false};
  std::atomic<int64_t> forwards{0}, rows_computed{0};
  SessionState(std::shared_ptr<VlModel> m, KvPool c) : model(std::move(m)), cache(std::move(c)) {}
};

// What a JS handle points at: a typed shared_ptr, reset on dispose. `kind` keeps a model handle
// from being used as a session and vice versa.
struct Handle {
  std::shared_ptr<void> ptr;
  const char* kind;
};
template <class T> const char* kind_of();
template <> const char* kind_of<VlModel>() { return "model"; }
template <> const char* kind_of<SessionState>() { return "session"; }
template <> const char* kind_of<CancelToken>() { return "cancel token"; }
template <> const char* kind_of<models::VisionFeatures>() { return "vision features"; }

template <class T>
Napi::External<Handle> wrap(Napi::Env env, std::shared_ptr<T> p) {
  return Napi::External<Handle>::New(env, new Handle{std::move(p), kind_of<T>()},
                                     [](Napi::Env, Handle* h) { delete h; });
}

Handle* handle_of(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsExternal()) throw make_error(env, "E_INPUT", std::string(what) + " is not a handle");
  return v.As<Napi::External<Handle>>().Data();
}

template <class T>
std::shared_ptr<T> unwrap(Napi::Env env, Napi::Value v, const char* what) {
  Handle* h = handle_of(env, v, what);
  if (!h || std::strcmp(h->kind, kind_of<T>()) != 0) throw make_error(env, "E_INPUT", std::string(what) + " is not a " + kind_of<T>() + " handle");
  if (!h->ptr) throw make_error(env, "E_DISPOSED", std::string(what) + " has been disposed");
  return std::static_pointer_cast<T>(h->ptr);
}

// An optional cancel token argument: undefined means the call cannot be cancelled.
std::shared_ptr<CancelToken> cancel_arg(Napi::Env env, Napi::Value v) {
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  return unwrap<CancelToken>(env, v, "cancel");
}

std::string str_field(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw make_error(o.Env(), "E_INPUT", std::string("spec field ") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}
int64_t int_field(Napi::Object o, const char* key, int64_t def = -1) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (def >= 0) return def;
    throw make_error(o.Env(), "E_INPUT", std::string("spec field ") + key + " is required");
  }
  return static_cast<int64_t>(size_arg(v, key));
}
double num_field(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw make_error(o.Env(), "E_INPUT", std::string("spec field ") + key + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}
bool bool_field(Napi::Object o, const char* key) { return o.Get(key).ToBoolean().Value(); }
std::vector<int64_t> ints_field(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return {};
  return shape_arg(v, key);
}

models::ModelSpec parse_spec(Napi::Object s) {
  models::ModelSpec spec;
  spec.family = str_field(s, "family");
  Napi::Value tv = s.Get("text"), vv = s.Get("vision");
  if (!tv.IsObject() || !vv.IsObject()) throw make_error(s.Env(), "E_INPUT", "spec needs text and vision objects");
  Napi::Object t = tv.As<Napi::Object>(), v = vv.As<Napi::Object>();
  auto& T = spec.text;
  T.hidden = int_field(t, "hidden");
  T.layers = int_field(t, "layers");
  T.heads = int_field(t, "heads");
  T.kv_heads = int_field(t, "kvHeads");
  T.head_dim = int_field(t, "headDim");
  T.intermediate = int_field(t, "intermediate");
  T.vocab = int_field(t, "vocab");
  T.rms_eps = num_field(t, "rmsEps");
  T.rope_theta = num_field(t, "ropeTheta");
  T.mrope_section = ints_field(t, "mropeSection");
  T.rope_layout = bool_field(t, "mropeInterleaved") ? models::RopeLayout::MRopeInterleaved : models::RopeLayout::MRope;
  T.qkv_bias = bool_field(t, "qkvBias");
  T.o_bias = bool_field(t, "oBias");
  T.qk_norm = bool_field(t, "qkNorm");
  T.tie_embeddings = bool_field(t, "tieEmbeddings");
  T.experts = int_field(t, "experts", 0);
  T.experts_per_tok = int_field(t, "expertsPerTok", 0);
  T.moe_intermediate = int_field(t, "moeIntermediate", 0);
  T.norm_topk_prob = bool_field(t, "normTopkProb");
  T.sparse_layers = ints_field(t, "sparseLayers");
  auto& V = spec.vision;
  V.depth = int_field(v, "depth");
  V.hidden = int_field(v, "hidden");
  V.heads = int_field(v, "heads");
  V.intermediate = int_field(v, "intermediate");
  V.in_channels = int_field(v, "inChannels");
  V.patch = int_field(v, "patch");
  V.temporal_patch = int_field(v, "temporalPatch");
  V.merge = int_field(v, "merge");
  V.out_hidden = int_field(v, "outHidden");
  V.hidden_act = str_field(v, "hiddenAct");
  V.norm_eps = num_field(v, "normEps");
  V.window_size = int_field(v, "windowSize", 0);
  V.fullatt_blocks = ints_field(v, "fullattBlocks");
  V.num_position_embeddings = int_field(v, "numPositionEmbeddings", 0);
  V.deepstack_indexes = ints_field(v, "deepstackIndexes");
  Napi::Value qv = s.Get("quant");
  if (!qv.IsUndefined()) {
    if (!qv.IsObject()) throw make_error(s.Env(), "E_INPUT", "spec.quant must be an object");
    Napi::Object q = qv.As<Napi::Object>();
    const std::string method = str_field(q, "method");
    auto& Q = spec.quant;
    if (method == "none") Q.method = models::QuantMethod::None;
    else if (method == "awq") Q.method = models::QuantMethod::Awq;
    else if (method == "gptq") Q.method = models::QuantMethod::Gptq;
    else if (method == "fp8") Q.method = models::QuantMethod::Fp8;
    else throw make_error(s.Env(), "E_INPUT", "spec.quant.method " + method + " is unknown");
    Q.bits = int_field(q, "bits", 0);
    Q.group = int_field(q, "group", 0);
    Q.zero_offset = int_field(q, "zeroOffset", 0);
    Q.block_out = int_field(q, "blockOut", 0);
    Q.block_in = int_field(q, "blockIn", 0);
  }
  return spec;
}

std::vector<models::WeightFile> parse_files(Napi::Array files) {
  std::vector<models::WeightFile> out;
  for (uint32_t i = 0; i < files.Length(); ++i) {
    if (!files.Get(i).IsObject() || !files.Get(i).As<Napi::Object>().Get("tensors").IsArray())
      throw make_error(files.Env(), "E_INPUT", "files[" + std::to_string(i) + "] must be {path, tensors: [...]}");
    Napi::Object f = files.Get(i).As<Napi::Object>();
    models::WeightFile wf;
    wf.path = str_field(f, "path");
    Napi::Array ts = f.Get("tensors").As<Napi::Array>();
    for (uint32_t j = 0; j < ts.Length(); ++j) {
      if (!ts.Get(j).IsObject()) throw make_error(files.Env(), "E_INPUT", "tensor entries must be objects");
      Napi::Object t = ts.Get(j).As<Napi::Object>();
      models::WeightEntry e;
      e.name = str_field(t, "name");
      e.dtype = dtype_arg(t.Get("dtype"), "tensor dtype");
      e.shape = shape_arg(t.Get("shape"), "tensor shape");
      e.byte_offset = size_arg(t.Get("byteOffset"), "byteOffset");
      e.byte_length = size_arg(t.Get("byteLength"), "byteLength");
      wf.tensors.push_back(std::move(e));
    }
    out.push_back(std::move(wf));
  }
  return out;
}

Napi::Value trace_to_js(Napi::Env env, models::Trace& trace) {
  Napi::Array arr = Napi::Array::New(env, trace.items().size());
  uint32_t i = 0;
  for (auto& [name, t] : trace.items()) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, name);
    pair.Set(1u, to_js(env, t));
    arr.Set(i++, pair);
  }
  return arr;
}

// A JS progress callback callable from the loader's thread; released (from whichever thread drops
// the last reference) once the load is over, so it never keeps the event loop alive.
// The thread-safe function's calls and the load's completion reach the event loop through
// different queues, so a quick load could resolve before any report arrived (and the caller,
// done loading, dropped them). The completion therefore delivers the last total itself when the
// queue has not yet (`delivered` is touched on the JS thread only).
struct ProgressFn {
  Napi::ThreadSafeFunction fn;
  Napi::FunctionReference cb;
  std::atomic<uint64_t> done{0};
  uint64_t delivered = 0;
  ~ProgressFn() { fn.Release(); }
  void deliver(Napi::Env env, uint64_t total) {
    if (total <= delivered) return;
    delivered = total;
    cb.Call({Napi::Number::New(env, static_cast<double>(total))});
  }
};

// One part's weights option: "stored" keeps the checkpoint's format, "q8"/"q4" quantize at load
// (TypeScript resolves 'bf16' and 'auto' to these).
models::WeightPlan weight_plan_arg(Napi::Env env, Napi::Object o, const char* key) {
  models::WeightPlan plan;
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return plan;
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "stored") return plan;
  if (s != "q8" && s != "q4") throw make_error(env, "E_INPUT", std::string("loadModel: ") + key + " must be 'stored', 'q8' or 'q4'");
  plan.quantize = true;
  plan.format = s == "q8" ? WeightFormat::Q8 : WeightFormat::Q4;
  return plan;
}

models::LoadPlan load_plan_arg(Napi::Env env, Napi::Value arg, std::shared_ptr<ProgressFn>* progress) {
  if (!arg.IsObject()) throw make_error(env, "E_INPUT", "loadModel: options must be an object");
  Napi::Object o = arg.As<Napi::Object>();
  models::LoadPlan plan;
  Napi::Value cf = o.Get("checkFinite");
  if (!cf.IsUndefined()) {
    if (!cf.IsBoolean()) throw make_error(env, "E_INPUT", "loadModel: checkFinite must be a boolean");
    plan.check_finite = cf.As<Napi::Boolean>().Value();
  }
  // 'exact' (default) or 'fast' (large matmuls in bf16; core/exec_context.h).
  Napi::Value pr = o.Get("precision");
  if (!pr.IsUndefined()) {
    const std::string v = pr.IsString() ? pr.As<Napi::String>().Utf8Value() : "";
    if (v != "exact" && v != "fast") throw make_error(env, "E_INPUT", "loadModel: precision must be 'exact' or 'fast'");
    plan.precision = v == "fast" ? Precision::Fast : Precision::Exact;
  }
  // 'auto' (default: the fastest the placement probe measured), 'mmap', 'owned' or 'huge'.
  Napi::Value pl = o.Get("placement");
  if (!pl.IsUndefined()) {
    const std::string v = pl.IsString() ? pl.As<Napi::String>().Utf8Value() : "";
    Placement p;
    if (v != "auto" && !placement_from_name(v, &p))
      throw make_error(env, "E_INPUT", "loadModel: placement must be 'auto', 'mmap', 'owned' or 'huge'");
    if (v != "auto") plan.placement = p;
  }
  plan.text = weight_plan_arg(env, o, "weights");
  plan.vision = weight_plan_arg(env, o, "visionWeights");
  Napi::Value cache = o.Get("cache");
  if (!cache.IsUndefined()) {
    if (!cache.IsObject()) throw make_error(env, "E_INPUT", "loadModel: cache must be {path, key}");
    Napi::Object c = cache.As<Napi::Object>();
    if (!c.Get("path").IsString() || !c.Get("key").IsString())
      throw make_error(env, "E_INPUT", "loadModel: cache.path and cache.key must be strings");
    plan.cache_path = c.Get("path").As<Napi::String>().Utf8Value();
    plan.cache_key = c.Get("key").As<Napi::String>().Utf8Value();
  }
  Napi::Value cb = o.Get("onConverted");
  if (!cb.IsUndefined()) {
    if (!cb.IsFunction()) throw make_error(env, "E_INPUT", "loadModel: onConverted must be a function");
    auto p = std::make_shared<ProgressFn>();
    p->fn = Napi::ThreadSafeFunction::New(env, cb.As<Napi::Function>(), "qwenvl.loadProgress", 0, 1);
    p->cb = Napi::Persistent(cb.As<Napi::Function>());
    std::weak_ptr<ProgressFn> weak = p;
    // Called on the loader's thread after each converted weight with the stored bytes it read.
    auto report = [weak](uint64_t bytes) {
      auto fn = weak.lock();
      if (!fn) return;
      const uint64_t total = fn->done += bytes;
      fn->fn.NonBlockingCall([weak, total](Napi::Env e, Napi::Function) {
        if (auto live = weak.lock()) live->deliver(e, total);
      });
    };
    plan.text.on_converted = report;
    plan.vision.on_converted = report;
    *progress = std::move(p);
  }
  return plan;
}

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsObject() || !info[2].IsArray())
      throw make_error(env, "E_INPUT", "loadModel(spec, names, files[, options])");
    models::ModelSpec spec = parse_spec(info[0].As<Napi::Object>());
    Napi::Object n = info[1].As<Napi::Object>();
    models::WeightNames names{str_field(n, "textPrefix"), str_field(n, "visionPrefix"), str_field(n, "lmHead")};
    std::vector<models::WeightFile> files = parse_files(info[2].As<Napi::Array>());
    // Optional 4th argument {checkFinite, precision, weights, visionWeights, onConverted}: see load_plan_arg.
    models::LoadPlan plan;
    std::shared_ptr<ProgressFn> progress;
    if (info.Length() > 3 && !info[3].IsUndefined()) plan = load_plan_arg(env, info[3], &progress);
    models::find_family(spec.family);  // E_UNSUPPORTED before any file is mapped
    using P = std::shared_ptr<VlModel>;
    return run_async<P>(
        env, [spec, names, files, plan, progress] { return std::make_shared<VlModel>(spec, names, files, plan); },
        [progress](Napi::Env env, P& m) -> Napi::Value {
          if (progress) progress->deliver(env, progress->done.load());
          return wrap(env, m);
        });
  });
}

// A pass's wall time and op families' times (a pass run with an OpProfiler in its context).
struct PassProfile {
  bool taken = false;
  uint64_t step_ns = 0;
  std::vector<OpProfiler::Counter> ops;
};

// Runs `pass` under `profiler` when `want` (cleared first), timing it.
template <typename Fn>
PassProfile profiled_pass(bool want, OpProfiler& profiler, ExecContext& ctx, Fn&& pass) {
  PassProfile p;
  if (want) {
    profiler.clear();
    ctx.with_profiler(&profiler);
  }
  const auto t0 = std::chrono::steady_clock::now();
  pass();
  if (want) {
    p.taken = true;
    p.step_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
    p.ops = profiler.counters();
  }
  return p;
}

// {stepNs, ops: {<op family>: {ns, calls}}} on `o` as `profile`, when the pass was profiled.
void set_profile(Napi::Env env, Napi::Object o, const PassProfile& p) {
  if (!p.taken) return;
  Napi::Object prof = Napi::Object::New(env);
  prof.Set("stepNs", static_cast<double>(p.step_ns));
  Napi::Object ops = Napi::Object::New(env);
  for (const OpProfiler::Counter& c : p.ops) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("ns", static_cast<double>(c.ns));
    e.Set("calls", static_cast<double>(c.calls));
    ops.Set(c.op, e);
  }
  prof.Set("ops", ops);
  o.Set("profile", prof);
}

struct VisionResult {
  models::VisionOutput out;
  std::shared_ptr<models::Trace> trace;
  PassProfile profile;
};

// One run of the vision tower from JS values: pixels [patches·patchDim] and (t, h, w) grids.
// `px` keeps the pixels' tensor (a view of the JS array, which the caller keeps alive).
models::VisionInput vision_input_arg(Napi::Env env, Napi::Value pixels, Napi::Value patch_dim_v, Napi::Value grids, Tensor& px) {
  const int64_t patch_dim = static_cast<int64_t>(size_arg(patch_dim_v, "patchDim"));
  if (patch_dim == 0) throw make_error(env, "E_INPUT", "patchDim must be positive");
  if (!pixels.IsTypedArray()) throw make_error(env, "E_INPUT", "pixels must be a Float32Array");
  const int64_t len = static_cast<int64_t>(pixels.As<Napi::TypedArray>().ElementLength());
  if (len % patch_dim != 0) throw make_error(env, "E_INPUT", "pixel values are not a whole number of patches");
  px = from_js(pixels, DType::F32, {len / patch_dim, patch_dim}, "pixels");
  if (!grids.IsTypedArray()) throw make_error(env, "E_INPUT", "grids must be an Int32Array");
  const int64_t glen = static_cast<int64_t>(grids.As<Napi::TypedArray>().ElementLength());
  if (glen % 3 != 0 || glen == 0) throw make_error(env, "E_INPUT", "grids must hold (t, h, w) triples");
  Tensor g = from_js(grids, DType::I32, {glen}, "grids");
  models::VisionInput in;
  in.pixels = px.data<float>();
  in.n_patches = len / patch_dim;
  in.patch_dim = patch_dim;
  for (int64_t i = 0; i < glen; i += 3) {
    in.grids.push_back({g.data<int32_t>()[i], g.data<int32_t>()[i + 1], g.data<int32_t>()[i + 2]});
  }
  return in;
}

// A placement probe's result (core/placement.h): the process's, as a load re-measured its mmap figure.
Napi::Object probe_to_js(Napi::Env env, const PlacementProbe& p) {
  Napi::Object o = Napi::Object::New(env), best = Napi::Object::New(env), runs = Napi::Object::New(env);
  for (const Placement k : kPlacements) {
    const int i = static_cast<int>(k);
    if (p.runs[i].empty()) continue;
    best.Set(placement_name(k), p.gbps[i]);
    Napi::Array r = Napi::Array::New(env, p.runs[i].size());
    for (size_t j = 0; j < p.runs[i].size(); ++j) r.Set(static_cast<uint32_t>(j), p.runs[i][j]);
    runs.Set(placement_name(k), r);
  }
  o.Set("readGBps", best);
  o.Set("runs", runs);
  o.Set("fastest", placement_name(p.fastest));
  o.Set("transparentHugePages", p.thp);
  o.Set("mappedFrom", p.mapped_from);
  o.Set("bytes", static_cast<double>(p.bytes));
  o.Set("threads", p.threads);
  o.Set("seconds", p.seconds);
  return o;
}

// modelWeightFormat(model) -> {format, cache, placement, probe}: the weight format name of the
// language model's linear layers, what the converted-weights cache did ("none", "hit", "written",
// "unwritten"), where those weights are ("mmap", "owned", "huge") and the placement probe.
Napi::Value ModelWeightFormat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto model = unwrap<VlModel>(env, info[0], "model");
    Napi::Object o = Napi::Object::New(env);
    o.Set("format", weight_format_name(model->text_weight_format()));
    o.Set("cache", model->cache_status());
    const std::optional<Placement> where = model->text_placement();
    o.Set("placement", where ? placement_name(*where) : "other");
    o.Set("probe", probe_to_js(env, model->probe()));
    return o;
  });
}

Napi::Value EncodeVision(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto model = unwrap<VlModel>(env, info[0], "model");
    if (info.Length() < 5) throw make_error(env, "E_INPUT", "encodeVision(model, pixels, patchDim, grids, trace)");
    Tensor px;
    models::VisionInput in = vision_input_arg(env, info[1], info[2], info[3], px);
    const bool want_trace = info[4].ToBoolean().Value();
    auto cancel = cancel_arg(env, info[5]);
    const bool want_profile = info[6].ToBoolean().Value();
    in.cancel = cancel.get();
    return run_async<VisionResult>(
        env,
        [model, in, want_trace, want_profile, px, cancel] {
          check_cancel(cancel.get(), "the vision encoder");
          VisionResult r;
          r.trace = std::make_shared<models::Trace>(want_trace);
          auto pool = default_pool();
          // This encode's own scratch arena (concurrent encodes on one model never share one).
          ArenaPool::Lease arena = model->vision_arenas().take();
          ExecContext ctx(*pool);
          ctx.with_arena(arena.get()).with_cancel(cancel.get()).with_precision(model->precision());
          OpProfiler profiler;
          r.profile = profiled_pass(want_profile, profiler, ctx, [&] { r.out = model->vision().forward(in, ctx, r.trace.get()); });
          return r;
        },
        [](Napi::Env env, VisionResult& r) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("embeds", to_js(env, r.out.embeds));
          Napi::Array ds = Napi::Array::New(env, r.out.deepstack.size());
          for (size_t i = 0; i < r.out.deepstack.size(); ++i) ds.Set(static_cast<uint32_t>(i), to_js(env, r.out.deepstack[i]));
          o.Set("deepstack", ds);
          o.Set("trace", trace_to_js(env, *r.trace));
          set_profile(env, o, r.profile);
          return o;
        },
        {info[1], info[3]});
  });
}

// modelEncodeFeatures(model, {images?: run, videos?: run}, cancel?): both runs on one worker job
// (each keeps its own attention segments), joined natively, images' rows first. Resolves to
// {features: handle, imageTokens, tokens, levels, hidden}; the handle is freed by disposeHandle
// (or, failing that, when JS collects it).
Napi::Value EncodeFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto model = unwrap<VlModel>(env, info[0], "model");
    if (info.Length() < 2 || !info[1].IsObject()) throw make_error(env, "E_INPUT", "modelEncodeFeatures(model, {images?, videos?}, cancel?)");
    Napi::Object runs = info[1].As<Napi::Object>();
    std::vector<Napi::Value> keep;
    struct Run {
      bool given = false;
      models::VisionInput in;
      Tensor px;
    };
    auto run_arg = [&](const char* key) {
      Run r;
      Napi::Value v = runs.Get(key);
      if (v.IsUndefined() || v.IsNull()) return r;
      if (!v.IsObject()) throw make_error(env, "E_INPUT", std::string(key) + " must be {pixels, patchDim, grids}");
      Napi::Object o = v.As<Napi::Object>();
      r.in = vision_input_arg(env, o.Get("pixels"), o.Get("patchDim"), o.Get("grids"), r.px);
      r.given = true;
      keep.push_back(o.Get("pixels"));
      keep.push_back(o.Get("grids"));
      return r;
    };
    auto images = std::make_shared<Run>(run_arg("images"));
    auto videos = std::make_shared<Run>(run_arg("videos"));
    if (!images->given && !videos->given) throw make_error(env, "E_INPUT", "modelEncodeFeatures needs images or videos");
    auto cancel = cancel_arg(env, info.Length() > 2 ? info[2] : env.Undefined());
    images->in.cancel = videos->in.cancel = cancel.get();
    using P = std::shared_ptr<models::VisionFeatures>;
    return run_async<P>(
        env,
        [model, images, videos, cancel] {
          check_cancel(cancel.get(), "the vision encoder");
          auto pool = default_pool();
          // This encode's own scratch arena (both runs reuse it; concurrent encodes never share one).
          ArenaPool::Lease arena = model->vision_arenas().take();
          ExecContext ctx(*pool);
          ctx.with_arena(arena.get()).with_cancel(cancel.get()).with_precision(model->precision());
          models::VisionOutput img, vid;
          if (images->given) img = model->vision().forward(images->in, ctx, nullptr);
          if (videos->given) vid = model->vision().forward(videos->in, ctx, nullptr);
          return std::make_shared<models::VisionFeatures>(models::join_vision_features(
              *model, images->given ? &img : nullptr, videos->given ? &vid : nullptr));
        },
        [](Napi::Env env, P& f) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("imageTokens", static_cast<double>(f->image_tokens));
          o.Set("tokens", static_cast<double>(f->tokens()));
          o.Set("levels", static_cast<double>(f->levels()));
          o.Set("hidden", static_cast<double>(f->hidden()));
          o.Set("features", wrap(env, f));
          return o;
        },
        keep);
  });
}

Napi::Value NewSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto model = unwrap<VlModel>(env, info[0], "model");
    const int64_t batch = static_cast<int64_t>(size_arg(info[1], "batch"));
    const int64_t capacity = static_cast<int64_t>(size_arg(info[2], "capacity"));
    // batch 0: an empty pool that sequences join later (sessionAddSequence).
    if (capacity < 1) throw make_error(env, "E_INPUT", "a session needs capacity >= 1");
    // Optional 4th argument {kvDtype: 'f32' | 'bf16'}: the KV pool's storage (default f32).
    DType kv = DType::F32;
    if (info.Length() > 3 && !info[3].IsUndefined()) {
      if (!info[3].IsObject()) throw make_error(env, "E_INPUT", "modelNewSession: options must be an object");
      Napi::Value d = info[3].As<Napi::Object>().Get("kvDtype");
      if (!d.IsUndefined()) kv = dtype_arg(d, "kvDtype");
    }
    auto s = std::make_shared<SessionState>(model, model->text().new_cache(batch, capacity, kv));
    return wrap(env, s);
  });
}

struct ForwardResult {
  models::StepOutput out;
  size_t rows = 0;
  std::shared_ptr<models::Trace> trace;
  PassProfile profile;
};

// args: {ids: Int32Array [n], steps | counts: Int32Array [R] (tokens of each row; n = R·steps or the
//        sum of counts), rows?: Int32Array [R] (sequence ids; default every live one),
//        needsLogits?: Uint8Array [n] (with logits 'flagged': logits of the flagged tokens only),
//        pad?: Int32Array [R], positions: Int32Array [3·n],
//        features?: handle (modelEncodeFeatures, same model) | visionEmbeds?: Float32Array [Nv·hidden]
//        with deepstack?: Float32Array[] (the low-level path), visualRows?: Int32Array [n] with either,
//        logits: 'none' | 'last' | 'all' | 'flagged' | 'sample', sample?: Uint8Array [R], trace?: boolean,
//        profile?: boolean}
// 'sample' returns {tokens: Int32Array [R]} chosen by the session's samplers (sessionSampling);
// with `sample`, rows flagged 0 (prefill chunks short of their prompt's end) are skipped (-1).
// profile: true adds {profile: {stepNs, ops: {<op family>: {ns, calls}}}}: the pass's wall time and
// each op family's time inside its entry points (what is left is time outside the kernels).
Napi::Value SessionForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto s = unwrap<SessionState>(env, info[0], "session");
    if (info.Length() < 2 || !info[1].IsObject()) throw make_error(env, "E_INPUT", "forward(session, args)");
    Napi::Object a = info[1].As<Napi::Object>();
    const models::TextSpec& ts = s->model->text().spec();
    auto in = std::make_shared<models::StepInput>();
    int64_t R = 0;
    for (int64_t b = 0; b < s->cache.size(); ++b) R += s->cache.live(b) ? 1 : 0;
    if (!a.Get("rows").IsUndefined()) {
      Napi::Value rv = a.Get("rows");
      if (!rv.IsTypedArray()) throw make_error(env, "E_INPUT", "rows must be an Int32Array");
      R = static_cast<int64_t>(rv.As<Napi::TypedArray>().ElementLength());
      if (R < 1) throw make_error(env, "E_INPUT", "rows must name at least one row");
      Tensor r = from_js(rv, DType::I32, {R}, "rows");
      for (int64_t i = 0; i < R; ++i) in->rows.push_back(r.data<int32_t>()[i]);
    }
    // Tokens per row: `steps` each, or counts[i] (rows of different lengths in one step).
    int64_t n = 0;
    std::vector<int64_t> per_row;
    if (!a.Get("counts").IsUndefined()) {
      Napi::Value cv = a.Get("counts");
      Tensor c = from_js(cv, DType::I32, {R}, "counts");
      for (int64_t i = 0; i < R; ++i) {
        const int32_t k = c.data<int32_t>()[i];
        if (k < 1) throw make_error(env, "E_INPUT", "counts[" + std::to_string(i) + "] must be >= 1");
        in->counts.push_back(k);
        n += k;
      }
      per_row = in->counts;
    } else {
      const int64_t S = static_cast<int64_t>(size_arg(a.Get("steps"), "steps"));
      if (S < 1) throw make_error(env, "E_INPUT", "steps must be >= 1");
      in->steps = S;
      n = R * S;
      per_row.assign(static_cast<size_t>(R), S);
    }
    Tensor ids = from_js(a.Get("ids"), DType::I32, {n}, "ids");
    Tensor pos32 = from_js(a.Get("positions"), DType::I32, {3, n}, "positions");
    in->ids = ids.data<int32_t>();
    in->positions = pos32.data<int32_t>();
    if (!a.Get("pad").IsUndefined()) {
      Tensor p = from_js(a.Get("pad"), DType::I32, {R}, "pad");
      for (int64_t b = 0; b < R; ++b) {
        const int32_t v = p.data<int32_t>()[b];
        if (v < 0 || v > per_row[static_cast<size_t>(b)]) throw make_error(env, "E_INPUT", "pad must be in [0, the row's tokens]");
        in->pad.push_back(v);
      }
    }
    std::vector<Napi::Value> keep{a.Get("ids"), a.Get("positions")};
    auto vis = std::make_shared<Tensor>();
    Tensor rows;
    std::shared_ptr<models::VisionFeatures> features;
    auto check_visual_rows = [&](int64_t nv) {
      rows = from_js(a.Get("visualRows"), DType::I32, {n}, "visualRows");
      for (int64_t i = 0; i < n; ++i) {
        const int32_t r = rows.data<int32_t>()[i];
        if (r >= nv) throw make_error(env, "E_INPUT", "visualRows[" + std::to_string(i) + "] is past the vision embeddings");
      }
      in->visual_rows = rows.data<int32_t>();
      keep.push_back(a.Get("visualRows"));
    };
    if (!a.Get("features").IsUndefined()) {
      if (!a.Get("visionEmbeds").IsUndefined() || !a.Get("deepstack").IsUndefined())
        throw make_error(env, "E_INPUT", "give features or visionEmbeds/deepstack, not both");
      features = unwrap<models::VisionFeatures>(env, a.Get("features"), "features");
      if (features->model != s->model.get()) throw make_error(env, "E_INPUT", "these vision features were made by another model");
      if (features->hidden() != ts.hidden) throw make_error(env, "E_INPUT", "the vision features' width is not the decoder's");
      check_visual_rows(features->tokens());
      in->vision = &features->embeds;
      if (features->levels() > 0) in->deepstack = &features->deepstack;
    }
    if (!a.Get("visionEmbeds").IsUndefined()) {
      Napi::Value ve = a.Get("visionEmbeds");
      if (!ve.IsTypedArray()) throw make_error(env, "E_INPUT", "visionEmbeds must be a Float32Array");
      const int64_t len = static_cast<int64_t>(ve.As<Napi::TypedArray>().ElementLength());
      if (len % ts.hidden != 0) throw make_error(env, "E_INPUT", "visionEmbeds is not a whole number of rows");
      *vis = from_js(ve, DType::F32, {len / ts.hidden, ts.hidden}, "visionEmbeds");
      check_visual_rows(vis->dim(0));
      in->vision = vis.get();
      keep.push_back(ve);
    }
    auto deepstack = std::make_shared<std::vector<Tensor>>();
    if (!features && a.Get("deepstack").IsArray()) {
      Napi::Array ds = a.Get("deepstack").As<Napi::Array>();
      for (uint32_t i = 0; i < ds.Length(); ++i) {
        deepstack->push_back(from_js(ds.Get(i), DType::F32, {vis->defined() ? vis->dim(0) : 0, ts.hidden}, "deepstack"));
        keep.push_back(ds.Get(i));
      }
      if (!deepstack->empty()) in->deepstack = deepstack.get();
    }
    const std::string mode = a.Get("logits").IsString() ? a.Get("logits").As<Napi::String>().Utf8Value() : "last";
    if (mode == "none") in->output = models::StepOutputKind::None;
    else if (mode == "last") in->output = models::StepOutputKind::Last;
    else if (mode == "all") in->output = models::StepOutputKind::All;
    else if (mode == "sample") in->output = models::StepOutputKind::Sample;
    else if (mode == "flagged") in->output = models::StepOutputKind::Flagged;
    else throw make_error(env, "E_INPUT", "logits must be none, last, all, flagged or sample");
    if (in->output == models::StepOutputKind::Flagged) {
      Tensor f = from_js(a.Get("needsLogits"), DType::U8, {n}, "needsLogits");
      in->needs_logits.assign(f.data<uint8_t>(), f.data<uint8_t>() + n);
      keep.push_back(a.Get("needsLogits"));
    }
    if (in->output == models::StepOutputKind::Sample && !s->sampling)
      throw make_error(env, "E_INPUT", "logits 'sample' needs sessionSampling() first");
    if (!a.Get("sample").IsUndefined()) {
      if (in->output != models::StepOutputKind::Sample) throw make_error(env, "E_INPUT", "sample flags go with logits 'sample'");
      Tensor f = from_js(a.Get("sample"), DType::U8, {R}, "sample");
      in->sample.assign(f.data<uint8_t>(), f.data<uint8_t>() + R);
    }
    const bool want_trace = a.Get("trace").ToBoolean().Value();
    const bool want_profile = a.Get("profile").ToBoolean().Value();
    auto cancel = cancel_arg(env, a.Get("cancel"));
    in->cancel = cancel.get();
    bool expected = false;
    if (!s->busy.compare_exchange_strong(expected, true))
      throw make_error(env, "E_INPUT", "this session is already running a forward pass");
    return run_async<ForwardResult>(
        env,
        [s, in, ids, pos32, vis, rows, deepstack, features, want_trace, want_profile, cancel, R] {
          struct Release {
            SessionState* s;
            ~Release() {
              s->arena.reset();  // the step's intermediates are dead; the chunks stay for the next
              s->busy = false;
            }
          } release{s.get()};
          check_cancel(cancel.get(), "a forward pass");
          auto pool = default_pool();
          ForwardResult r;
          r.trace = std::make_shared<models::Trace>(want_trace);
          ExecContext ctx(*pool);
          ctx.with_arena(&s->arena).with_cancel(cancel.get()).with_precision(s->model->precision());
          r.profile = profiled_pass(want_profile, s->profiler, ctx,
                                    [&] { r.out = models::run_step(*s->model, s->cache, s->sampling.get(), *in, ctx, r.trace.get()); });
          r.rows = static_cast<size_t>(R);
          s->forwards += 1;
          s->rows_computed += static_cast<int64_t>(r.rows);
          return r;
        },
        [](Napi::Env env, ForwardResult& r) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          if (r.out.has_logits) o.Set("logits", to_js(env, r.out.logits));
          if (!r.out.tokens.empty()) {
            auto t = Napi::Int32Array::New(env, r.out.tokens.size());
            std::memcpy(t.Data(), r.out.tokens.data(), sizeof(int32_t) * r.out.tokens.size());
            o.Set("tokens", t);
          }
          o.Set("trace", trace_to_js(env, *r.trace));
          set_profile(env, o, r.profile);
          return o;
        },
        keep);
  });
}

// sessionSampling(session, {params: NativeSamplingParams[], seed, history?: Int32Array, rows?: Int32Array}):
// sets samplers and repetition histories (the prompts' ids, the same number per row). Without
// `rows`: one per session row, replacing every sampler. With `rows`: the listed sequence ids get
// theirs beside the others'. Either way the rows set by one call share one RNG seeded `seed`.
// `constraints` (one entry per row; undefined: none): {masks: a grammarMasks handle, endIds:
// Int32Array, startAfter?: token id} puts the row's output under the grammar (models/sequence_sampler.h).
Napi::Value SessionSampling(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto s = unwrap<SessionState>(env, info[0], "session");
    if (info.Length() < 2 || !info[1].IsObject()) throw make_error(env, "E_INPUT", "sessionSampling(session, {params, seed, history, rows?})");
    Napi::Object a = info[1].As<Napi::Object>();
    const int64_t V = s->model->text().spec().vocab;
    if (s->busy) throw make_error(env, "E_INPUT", "this session is running a forward pass");
    std::vector<int64_t> ids;
    const bool listed = !a.Get("rows").IsUndefined();
    if (listed) {
      Napi::Value rv = a.Get("rows");
      if (!rv.IsTypedArray()) throw make_error(env, "E_INPUT", "rows must be an Int32Array");
      const int64_t n = static_cast<int64_t>(rv.As<Napi::TypedArray>().ElementLength());
      Tensor r = from_js(rv, DType::I32, {n}, "rows");
      for (int64_t i = 0; i < n; ++i) {
        const int64_t id = r.data<int32_t>()[i];
        if (id < 0 || !s->cache.live(id)) throw make_error(env, "E_INPUT", "rows[" + std::to_string(i) + "] is not a live sequence");
        for (int64_t j = 0; j < i; ++j)
          if (ids[static_cast<size_t>(j)] == id) throw make_error(env, "E_INPUT", "rows names sequence " + std::to_string(id) + " twice");
        ids.push_back(id);
      }
    } else {
      for (int64_t b = 0; b < s->cache.size(); ++b) ids.push_back(b);
    }
    const int64_t B = static_cast<int64_t>(ids.size());
    if (B < 1) throw make_error(env, "E_INPUT", "sessionSampling needs at least one row");
    if (!a.Get("params").IsArray() || a.Get("params").As<Napi::Array>().Length() != static_cast<uint32_t>(B))
      throw make_error(env, "E_INPUT", std::string("params must be an array with one entry per ") + (listed ? "listed" : "session") +
                                           " row (" + std::to_string(B) + ")");
    Napi::Array ps = a.Get("params").As<Napi::Array>();
    std::vector<ops::SamplingParams> params;
    for (uint32_t b = 0; b < ps.Length(); ++b) {
      if (!ps.Get(b).IsObject()) throw make_error(env, "E_INPUT", "params[" + std::to_string(b) + "] must be an object");
      params.push_back(sampling_params_arg(ps.Get(b).As<Napi::Object>()));
    }
    std::vector<std::unique_ptr<models::TokenConstraint>> constraints(static_cast<size_t>(B));
    if (!a.Get("constraints").IsUndefined()) {
      if (!a.Get("constraints").IsArray() || a.Get("constraints").As<Napi::Array>().Length() != static_cast<uint32_t>(B))
        throw make_error(env, "E_INPUT", "constraints must be an array with one entry per row");
      Napi::Array cs = a.Get("constraints").As<Napi::Array>();
      for (uint32_t b = 0; b < cs.Length(); ++b) {
        if (cs.Get(b).IsUndefined() || cs.Get(b).IsNull()) continue;
        if (!cs.Get(b).IsObject()) throw make_error(env, "E_INPUT", "constraints[" + std::to_string(b) + "] must be an object");
        Napi::Object c = cs.Get(b).As<Napi::Object>();
        auto k = std::make_unique<models::TokenConstraint>();
        k->masks = mask_cache_arg(env, c.Get("masks"), "constraints[].masks");
        if (k->masks->vocab().vocab() != V)
          throw make_error(env, "E_INPUT", "constraints[" + std::to_string(b) + "]: the grammar's vocabulary has " +
                                               std::to_string(k->masks->vocab().vocab()) + " ids, the model " + std::to_string(V));
        Napi::Value ev = c.Get("endIds");
        if (!ev.IsTypedArray()) throw make_error(env, "E_INPUT", "constraints[].endIds must be an Int32Array");
        const int64_t ne = static_cast<int64_t>(ev.As<Napi::TypedArray>().ElementLength());
        Tensor e = from_js(ev, DType::I32, {ne}, "endIds");
        for (int64_t i = 0; i < ne; ++i) {
          const int32_t t = e.data<int32_t>()[i];
          if (t < 0 || t >= V) throw make_error(env, "E_INPUT", "constraints[].endIds holds an id outside the vocabulary");
          k->end_ids.push_back(t);
        }
        if (!c.Get("startAfter").IsUndefined()) {
          const uint64_t t = size_arg(c.Get("startAfter"), "startAfter");
          if (t >= static_cast<uint64_t>(V)) throw make_error(env, "E_INPUT", "constraints[].startAfter is outside the vocabulary");
          k->start_after = static_cast<int32_t>(t);
          k->active = false;
        }
        k->state = ops::grammar::initial_state(k->masks->grammar());
        constraints[b] = std::move(k);
      }
    }
    const uint64_t seed = size_arg(a.Get("seed"), "seed");
    Tensor h;
    int64_t per = 0;
    if (!a.Get("history").IsUndefined()) {
      Napi::Value hv = a.Get("history");
      if (!hv.IsTypedArray()) throw make_error(env, "E_INPUT", "history must be an Int32Array");
      const int64_t len = static_cast<int64_t>(hv.As<Napi::TypedArray>().ElementLength());
      if (len % B != 0) throw make_error(env, "E_INPUT", "history must hold the same number of ids for every row");
      h = from_js(hv, DType::I32, {len}, "history");
      per = len / B;
    }
    for (int64_t i = 0; i < B * per; ++i) {
      const int32_t t = h.data<int32_t>()[i];
      if (t < 0 || t >= V) throw make_error(env, "E_INPUT", "history[" + std::to_string(i) + "] is outside the vocabulary");
    }
    // Everything is checked: a listed call adds to the session's samplers, an unlisted one replaces them.
    auto sampling = listed && s->sampling ? std::move(s->sampling) : std::make_unique<models::SessionSampling>();
    std::vector<models::SequenceSampler*> added = sampling->add(ids, params, seed, V);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t i = 0; i < per; ++i) added[static_cast<size_t>(b)]->history.add(h.data<int32_t>()[b * per + i]);
      added[static_cast<size_t>(b)]->constraint = std::move(constraints[static_cast<size_t>(b)]);
    }
    s->sampling = std::move(sampling);
    return env.Undefined();
  });
}

// {forwards, rowsComputed}: how many forward calls the session ran and how many rows they computed.
Napi::Value SessionStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto s = unwrap<SessionState>(env, info[0], "session");
    Napi::Object o = Napi::Object::New(env);
    o.Set("forwards", static_cast<double>(s->forwards.load()));
    o.Set("rowsComputed", static_cast<double>(s->rows_computed.load()));
    return o;
  });
}

// {peakBytes, inUseBytes, capacityBytes, chunks, heapAllocations}: the session's scratch arena, read between
// passes (a running pass owns it: E_INPUT then).
Napi::Value SessionScratch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto s = unwrap<SessionState>(env, info[0], "session");
    if (s->busy) throw make_error(env, "E_INPUT", "this session is running a forward pass");
    Napi::Object o = Napi::Object::New(env);
    o.Set("peakBytes", static_cast<double>(s->arena.peak_bytes()));
    o.Set("inUseBytes", static_cast<double>(s->arena.in_use_bytes()));
    o.Set("capacityBytes", static_cast<double>(s->arena.capacity_bytes()));
    o.Set("chunks", static_cast<double>(s->arena.chunk_count()));
    o.Set("heapAllocations", static_cast<double>(s->arena.heap_allocations()));
    return o;
  });
}

// The session's KV pool, from JS: sessionAddSequence(session, capacity) -> id,
// sessionGrowSequence(session, id, capacity), sessionFreeSequence(session, id). Refused while a
// forward pass runs (the worker owns the pool then).
std::shared_ptr<SessionState> idle_session(const Napi::CallbackInfo& info) {
  auto s = unwrap<SessionState>(info.Env(), info[0], "session");
  if (s->busy) throw make_error(info.Env(), "E_INPUT", "this session is running a forward pass");
  return s;
}
Napi::Value SessionAddSequence(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto s = idle_session(info);
    return Napi::Number::New(env, static_cast<double>(s->cache.add(static_cast<int64_t>(size_arg(info[1], "capacity")))));
  });
}
Napi::Value SessionGrowSequence(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto s = idle_session(info);
    s->cache.grow(static_cast<int64_t>(size_arg(info[1], "id")), static_cast<int64_t>(size_arg(info[2], "capacity")));
    return env.Undefined();
  });
}
Napi::Value SessionFreeSequence(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto s = idle_session(info);
    const int64_t id = static_cast<int64_t>(size_arg(info[1], "id"));
    s->cache.free(id);
    if (s->sampling) s->sampling->drop(id);
    return env.Undefined();
  });
}

// sessionCopyPrefix(session, src, dst, count): the first `count` KV entries of `src` into the empty `dst` (KvPool::copy_prefix).
Napi::Value SessionCopyPrefix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto s = idle_session(info);
    s->cache.copy_prefix(static_cast<int64_t>(size_arg(info[1], "src")), static_cast<int64_t>(size_arg(info[2], "dst")),
                         static_cast<int64_t>(size_arg(info[3], "count")));
    return env.Undefined();
  });
}

Napi::Value SessionLengths(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto s = unwrap<SessionState>(env, info[0], "session");
    Napi::Array arr = Napi::Array::New(env, s->cache.size());
    for (int64_t b = 0; b < s->cache.size(); ++b) {
      if (s->cache.live(b)) arr.Set(static_cast<uint32_t>(b), static_cast<double>(s->cache.slot(b).len));
      else arr.Set(static_cast<uint32_t>(b), env.Null());
    }
    return arr;
  });
}

Napi::Value NewCancelToken(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), std::make_shared<CancelToken>());
}

// Sets a token from the JS thread; the worker polling it sees the flag at its next check.
Napi::Value CancelTokenSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto token = unwrap<CancelToken>(env, info[0], "cancel");
    const std::string why = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    if (why == "abort") {
      token->cancel(CancelToken::Reason::Aborted);
    } else if (why == "dispose") {
      token->cancel(CancelToken::Reason::Disposed);
    } else {
      throw make_error(env, "E_INPUT", "cancelToken(token, reason): reason must be 'abort' or 'dispose'");
    }
    return env.Undefined();
  });
}

// Drops the handle's reference; memory goes when the last job using it finishes.
Napi::Value DisposeHandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Handle* h = handle_of(env, info[0], "handle");
    if (h) h->ptr.reset();
    return env.Undefined();
  });
}

}  // namespace

Napi::Value wrap_handle(Napi::Env env, std::shared_ptr<void> p, const char* kind) {
  return Napi::External<Handle>::New(env, new Handle{std::move(p), kind}, [](Napi::Env, Handle* h) { delete h; });
}

std::shared_ptr<void> unwrap_handle(Napi::Env env, Napi::Value v, const char* kind, const char* what) {
  Handle* h = handle_of(env, v, what);
  if (!h || std::strcmp(h->kind, kind) != 0) throw make_error(env, "E_INPUT", std::string(what) + " is not a " + kind + " handle");
  if (!h->ptr) throw make_error(env, "E_DISPOSED", std::string(what) + " has been disposed");
  return h->ptr;
}

void register_model(Napi::Env env, Napi::Object exports) {
  exports.Set("loadModel", Napi::Function::New(env, LoadModel, "loadModel"));
  exports.Set("modelWeightFormat", Napi::Function::New(env, ModelWeightFormat, "modelWeightFormat"));
  exports.Set("modelEncodeVision", Napi::Function::New(env, EncodeVision, "modelEncodeVision"));
  exports.Set("modelEncodeFeatures", Napi::Function::New(env, EncodeFeatures, "modelEncodeFeatures"));
  exports.Set("modelNewSession", Napi::Function::New(env, NewSession, "modelNewSession"));
  exports.Set("sessionForward", Napi::Function::New(env, SessionForward, "sessionForward"));
  exports.Set("sessionSampling", Napi::Function::New(env, SessionSampling, "sessionSampling"));
  exports.Set("sessionStats", Napi::Function::New(env, SessionStats, "sessionStats"));
  exports.Set("sessionScratch", Napi::Function::New(env, SessionScratch, "sessionScratch"));
  exports.Set("sessionAddSequence", Napi::Function::New(env, SessionAddSequence, "sessionAddSequence"));
  exports.Set("sessionGrowSequence", Napi::Function::New(env, SessionGrowSequence, "sessionGrowSequence"));
  exports.Set("sessionFreeSequence", Napi::Function::New(env, SessionFreeSequence, "sessionFreeSequence"));
  exports.Set("sessionCopyPrefix", Napi::Function::New(env, SessionCopyPrefix, "sessionCopyPrefix"));
  exports.Set("sessionLengths", Napi::Function::New(env, SessionLengths, "sessionLengths"));
  exports.Set("newCancelToken", Napi::Function::New(env, NewCancelToken, "newCancelToken"));
  exports.Set("cancelToken", Napi::Function::New(env, CancelTokenSet, "cancelToken"));
  exports.Set("disposeHandle", Napi::Function::New(env, DisposeHandle, "disposeHandle"));
}

}  // namespace qvl::napi
