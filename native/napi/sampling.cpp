// Next-token choice for JS: sampleToken(logits, params, seen, rngState) -> token id.
// Synchronous: one pass over a vocabulary row is far cheaper than the forward pass before it.
// rngState is a BigUint64Array(4) that the call advances in place, so a seed replays a run.
#include <napi.h>

#include <cstring>

#include "napi/errors.h"
#include "napi/exports.h"
#include "napi/tensor_js.h"
#include "ops/sampling.h"

namespace qvl::napi {

namespace {

float num(Napi::Object o, const char* key, float def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return def;
  if (!v.IsNumber()) throw make_error(o.Env(), "E_INPUT", std::string(key) + " must be a number");
  return v.As<Napi::Number>().FloatValue();
}

}  // namespace

ops::SamplingParams sampling_params_arg(Napi::Object p) {
  ops::SamplingParams s;
  s.do_sample = p.Get("doSample").ToBoolean().Value();
  s.temperature = num(p, "temperature", 1.0f);
  s.top_k = static_cast<int64_t>(num(p, "topK", 0));
  s.top_p = num(p, "topP", 1.0f);
  s.min_p = num(p, "minP", 0.0f);
  s.repetition_penalty = num(p, "repetitionPenalty", 1.0f);
  return s;
}

namespace {

Napi::Value SampleToken(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 4 || !info[0].IsTypedArray() || !info[1].IsObject() || !info[3].IsTypedArray())
      throw make_error(env, "E_INPUT", "sampleToken(logits, params, seen, rngState)");
    const int64_t V = static_cast<int64_t>(info[0].As<Napi::TypedArray>().ElementLength());
    Tensor logits = from_js(info[0], DType::F32, {V}, "logits");
    Napi::Object p = info[1].As<Napi::Object>();
    ops::SampleArgs a;
    a.logits = logits.data<float>();
    a.vocab = V;
    a.params = sampling_params_arg(p);
    Tensor seen;
    if (info[2].IsTypedArray()) {
      const int64_t n = static_cast<int64_t>(info[2].As<Napi::TypedArray>().ElementLength());
      seen = from_js(info[2], DType::I32, {n}, "seen");
      a.seen_ids = seen.data<int32_t>();
      a.n_seen = n;
    }
    if (info[3].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array ||
        info[3].As<Napi::TypedArray>().ElementLength() != 4)
      throw make_error(env, "E_INPUT", "rngState must be a BigUint64Array of length 4");
    auto state = info[3].As<Napi::TypedArrayOf<uint64_t>>();
    ops::SamplingRng rng;
    std::memcpy(rng.s, state.Data(), sizeof(rng.s));
    const int32_t tok = ops::sample_token(a, rng);
    std::memcpy(state.Data(), rng.s, sizeof(rng.s));
    return Napi::Number::New(env, tok);
  });
}

Napi::Value SamplingRngState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const uint64_t seed = size_arg(info[0], "seed");
    const ops::SamplingRng rng = ops::sampling_rng(seed);
    auto out = Napi::TypedArrayOf<uint64_t>::New(env, 4, napi_biguint64_array);
    std::memcpy(out.Data(), rng.s, sizeof(rng.s));
    return out;
  });
}

}  // namespace

void register_sampling(Napi::Env env, Napi::Object exports) {
  exports.Set("sampleToken", Napi::Function::New(env, SampleToken, "sampleToken"));
  exports.Set("samplingRng", Napi::Function::New(env, SamplingRngState, "samplingRng"));
}

}  // namespace qvl::napi
