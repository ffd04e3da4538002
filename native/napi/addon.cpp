// Module init: the table of what the addon exports. lib/native/binding.ts types it.
#include <napi.h>

#include "napi/errors.h"
#include "napi/exports.h"

namespace qvl::napi {

namespace {

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(info.Env(), "setErrorClass expects a constructor");
  }
  set_error_class(info.Env(), info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  register_info(env, exports);
  register_parity(env, exports);
  register_bench(env, exports);
  register_safetensors(env, exports);
  register_tensor_ops(env, exports);
  register_image(env, exports);
  register_model(env, exports);
  register_sampling(env, exports);
  register_file_lock(env, exports);
  register_grammar(env, exports);
  return exports;
}

}  // namespace qvl::napi

static Napi::Object InitQwenvl(Napi::Env env, Napi::Object exports) { return qvl::napi::Init(env, exports); }
NODE_API_MODULE(qwenvl, InitQwenvl)
