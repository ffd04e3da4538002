// parity(filter?, seed?) -> Promise<Result[]>: the kernel parity harness, run off the JS thread.
#include <napi.h>

#include "napi/async.h"
#include "napi/exports.h"
#include "tests/parity.h"

namespace qvl::napi {

namespace {

Napi::Value Parity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    std::string filter;
    uint64_t seed = 1234;
    if (info.Length() > 0 && info[0].IsString()) filter = info[0].As<Napi::String>().Utf8Value();
    if (info.Length() > 1 && info[1].IsNumber()) seed = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
    using Results = std::vector<parity::Result>;
    return run_async<Results>(
        env, [filter, seed] { return parity::run(filter, seed); },
        [](Napi::Env env, Results& rs) -> Napi::Value {
          Napi::Array arr = Napi::Array::New(env, rs.size());
          for (size_t i = 0; i < rs.size(); ++i) {
            const auto& r = rs[i];
            Napi::Object o = Napi::Object::New(env);
            o.Set("op", r.op);
            o.Set("variant", r.variant);
            o.Set("shape", r.shape);
            o.Set("device", r.device);
            if (!r.format.empty()) o.Set("format", r.format);
            o.Set("maxAbsErr", r.max_abs_err);
            o.Set("maxRelErr", r.max_rel_err);
            o.Set("tolerance", r.tolerance);
            o.Set("guardsOk", r.guards_ok);
            o.Set("passed", r.passed);
            o.Set("note", r.note);
            arr.Set(static_cast<uint32_t>(i), o);
          }
          return arr;
        });
  });
}

Napi::Value ParityOps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& s = parity::suites();
  Napi::Array arr = Napi::Array::New(env, s.size());
  for (size_t i = 0; i < s.size(); ++i) arr.Set(static_cast<uint32_t>(i), s[i].op);
  return arr;
}

}  // namespace

void register_parity(Napi::Env env, Napi::Object exports) {
  exports.Set("parity", Napi::Function::New(env, Parity, "parity"));
  exports.Set("parityOps", Napi::Function::New(env, ParityOps, "parityOps"));
}

}  // namespace qvl::napi
