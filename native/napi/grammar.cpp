// Structured output's native objects for JS (ops/grammar.h, ops/token_mask.h). Handles share
// napi/model.cpp's kind (disposeHandle frees them):
//   grammarCompile(flat: Int32Array) -> grammar            the flattened GrammarIR, checked
//   grammarVocabulary(bytes: Uint8Array, offsets: Int32Array) -> vocabulary   once per model
//   grammarVocabularyAsync(bytes, offsets) -> Promise<vocabulary>             the same on a worker thread
//   grammarMasks(grammar, vocabulary) -> masks             the grammar's shared caches; what sessionSampling constraints take
//   grammarMasksStats(masks) -> {stateHits, stateMisses, positionHits, positionMisses, bytes}
//   grammarMatcher(masks) -> matcher                       a state at the start of the text
//   matcherAdvance(matcher, token) / matcherAdvanceBytes(matcher, Uint8Array) -> boolean (false: refused, state kept)
//   matcherStatus(matcher) -> {accepts, canContinue}
//   matcherMask(matcher, variant?: string, cache?: boolean) -> Uint32Array   the text tokens allowed next
// Synchronous: a mask is a cache copy (microseconds) once the grammar has met its state, a trie walk
// (0.1-10 ms at 152k tokens) the first time (npm run bench -- grammar).
#include <napi.h>

#include <cstring>

#include "napi/async.h"
#include "napi/errors.h"
#include "napi/exports.h"
#include "napi/tensor_js.h"
#include "ops/token_mask.h"

namespace qvl::napi {

namespace {

constexpr const char* kGrammar = "grammar";
constexpr const char* kVocabulary = "vocabulary";
constexpr const char* kMatcher = "grammar matcher";
constexpr const char* kGrammarMasks = "grammar masks";

struct Matcher {
  std::shared_ptr<ops::MaskCache> masks;
  std::vector<int32_t> state;
};

template <class T>
std::shared_ptr<T> arg(Napi::Env env, Napi::Value v, const char* kind, const char* what) {
  return std::static_pointer_cast<T>(unwrap_handle(env, v, kind, what));
}

int64_t typed_length(Napi::Env env, Napi::Value v, napi_typedarray_type type, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw make_error(env, "E_INPUT", std::string(what) + " has the wrong type");
  return static_cast<int64_t>(v.As<Napi::TypedArray>().ElementLength());
}

Napi::Value GrammarCompile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const int64_t n = typed_length(env, info[0], napi_int32_array, "grammarCompile(flat): flat (an Int32Array)");
    Tensor f = from_js(info[0], DType::I32, {n}, "flat");
    auto g = ops::grammar::Grammar::from_flat(f.data<int32_t>(), n);
    return wrap_handle(env, std::const_pointer_cast<ops::grammar::Grammar>(g), kGrammar);
  });
}

// grammarVocabulary's arguments, read on the JS thread (the arrays' memory is borrowed).
struct VocabularyArgs {
  const uint8_t* bytes;
  int64_t n_bytes;
  const int32_t* offsets;
  int64_t vocab;
};

VocabularyArgs vocabulary_args(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Env env = info.Env();
  const std::string call = std::string(fn) + "(bytes, offsets): ";
  const int64_t nb = typed_length(env, info[0], napi_uint8_array, (call + "bytes (a Uint8Array)").c_str());
  const int64_t no = typed_length(env, info[1], napi_int32_array, (call + "offsets (an Int32Array)").c_str());
  if (no < 2) throw make_error(env, "E_INPUT", std::string(fn) + ": offsets needs vocab + 1 >= 2 entries");
  Tensor b = from_js(info[0], DType::U8, {nb}, "bytes");
  Tensor o = from_js(info[1], DType::I32, {no}, "offsets");
  return {b.data<uint8_t>(), nb, o.data<int32_t>(), no - 1};
}

Napi::Value GrammarVocabulary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const VocabularyArgs a = vocabulary_args(info, "grammarVocabulary");
    return wrap_handle(env, std::make_shared<ops::VocabIndex>(a.bytes, a.n_bytes, a.offsets, a.vocab), kVocabulary);
  });
}

// The same index built on a worker thread (0.1-0.5 s at 152k tokens): the event loop runs on meanwhile.
Napi::Value GrammarVocabularyAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const VocabularyArgs a = vocabulary_args(info, "grammarVocabularyAsync");
    using Index = std::shared_ptr<ops::VocabIndex>;
    return run_async<Index>(
        env, [a]() { return std::make_shared<ops::VocabIndex>(a.bytes, a.n_bytes, a.offsets, a.vocab); },
        [](Napi::Env e, Index& v) -> Napi::Value { return wrap_handle(e, v, kVocabulary); }, {info[0], info[1]});
  });
}

Napi::Value GrammarMasks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto g = arg<ops::grammar::Grammar>(env, info[0], kGrammar, "grammar");
    auto v = arg<ops::VocabIndex>(env, info[1], kVocabulary, "vocabulary");
    return wrap_handle(env, std::make_shared<ops::MaskCache>(g, v), kGrammarMasks);
  });
}

Napi::Value GrammarMasksStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const ops::MaskCache::Stats s = arg<ops::MaskCache>(env, info[0], kGrammarMasks, "masks")->stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("stateHits", static_cast<double>(s.state_hits));
    o.Set("stateMisses", static_cast<double>(s.state_misses));
    o.Set("positionHits", static_cast<double>(s.position_hits));
    o.Set("positionMisses", static_cast<double>(s.position_misses));
    o.Set("bytes", static_cast<double>(s.bytes));
    return o;
  });
}

Napi::Value GrammarMatcher(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto m = std::make_shared<Matcher>();
    m->masks = arg<ops::MaskCache>(env, info[0], kGrammarMasks, "masks");
    m->state = ops::grammar::initial_state(m->masks->grammar());
    return wrap_handle(env, m, kMatcher);
  });
}

Napi::Value MatcherAdvance(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto m = arg<Matcher>(env, info[0], kMatcher, "matcher");
    const uint64_t t = size_arg(info[1], "token");
    return Napi::Boolean::New(env, t < (uint64_t{1} << 31) && ops::advance_token(*m->masks, m->state, static_cast<int32_t>(t)));
  });
}

Napi::Value MatcherAdvanceBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto m = arg<Matcher>(env, info[0], kMatcher, "matcher");
    const int64_t n = typed_length(env, info[1], napi_uint8_array, "bytes (a Uint8Array)");
    Tensor b = from_js(info[1], DType::U8, {n}, "bytes");
    return Napi::Boolean::New(env, ops::grammar::advance_bytes(m->masks->grammar(), m->state, b.data<uint8_t>(), static_cast<size_t>(n)));
  });
}

Napi::Value MatcherStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto m = arg<Matcher>(env, info[0], kMatcher, "matcher");
    Napi::Object o = Napi::Object::New(env);
    o.Set("accepts", ops::grammar::state_accepts(m->state.data(), m->state.size()));
    o.Set("canContinue", ops::grammar::state_can_continue(m->state.data(), m->state.size()));
    return o;
  });
}

Napi::Value MatcherMask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto m = arg<Matcher>(env, info[0], kMatcher, "matcher");
    const std::string variant = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    const bool cache = info[2].IsUndefined() || info[2].ToBoolean().Value();
    const auto& family = ops::token_mask_family();
    const ops::Variant<ops::TokenMaskFn>* v = &family.best();
    if (!variant.empty()) {
      v = nullptr;
      for (const auto& x : family.variants())
        if (variant == x.name && x.device == Device::Host) v = &x;
      if (!v) throw make_error(env, "E_INPUT", "matcherMask: no token_mask variant named " + variant);
    }
    const int64_t W = ops::mask_words(m->masks->vocab().vocab());
    Napi::Uint32Array out = Napi::Uint32Array::New(env, static_cast<size_t>(W));
    ops::TokenMaskArgs a;
    a.masks = m->masks.get(), a.cache = cache ? m->masks.get() : nullptr;
    a.state = m->state.data(), a.state_len = static_cast<int64_t>(m->state.size());
    a.mask = out.Data();
    ops::check_token_mask(a);
    v->fn(a);
    return out;
  });
}

}  // namespace

std::shared_ptr<ops::MaskCache> mask_cache_arg(Napi::Env env, Napi::Value v, const char* what) {
  return arg<ops::MaskCache>(env, v, kGrammarMasks, what);
}

void register_grammar(Napi::Env env, Napi::Object exports) {
  exports.Set("grammarCompile", Napi::Function::New(env, GrammarCompile, "grammarCompile"));
  exports.Set("grammarVocabulary", Napi::Function::New(env, GrammarVocabulary, "grammarVocabulary"));
  exports.Set("grammarVocabularyAsync", Napi::Function::New(env, GrammarVocabularyAsync, "grammarVocabularyAsync"));
  exports.Set("grammarMasks", Napi::Function::New(env, GrammarMasks, "grammarMasks"));
  exports.Set("grammarMasksStats", Napi::Function::New(env, GrammarMasksStats, "grammarMasksStats"));
  exports.Set("grammarMatcher", Napi::Function::New(env, GrammarMatcher, "grammarMatcher"));
  exports.Set("matcherAdvance", Napi::Function::New(env, MatcherAdvance, "matcherAdvance"));
  exports.Set("matcherAdvanceBytes", Napi::Function::New(env, MatcherAdvanceBytes, "matcherAdvanceBytes"));
  exports.Set("matcherStatus", Napi::Function::New(env, MatcherStatus, "matcherStatus"));
  exports.Set("matcherMask", Napi::Function::New(env, MatcherMask, "matcherMask"));
}

}  // namespace qvl::napi
