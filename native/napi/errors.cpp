#include "napi/errors.h"

#include <new>

namespace qvl::napi {

namespace {
struct ErrorClass {
  Napi::FunctionReference ctor;
};
}  // namespace

void set_error_class(Napi::Env env, Napi::Function ctor) {
  auto* data = env.GetInstanceData<ErrorClass>();
  if (!data) {
    data = new ErrorClass();
    env.SetInstanceData<ErrorClass>(data);
  }
  data->ctor = Napi::Persistent(ctor);
}

Napi::Error make_error(Napi::Env env, const char* code, const std::string& message) {
  auto* data = env.GetInstanceData<ErrorClass>();
  if (data && !data->ctor.IsEmpty()) {
    Napi::Value err = data->ctor.New({Napi::String::New(env, code), Napi::String::New(env, message)});
    return Napi::Error(env, err);
  }
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

void describe_exception(std::exception_ptr e, std::string* code, std::string* message) {
  try {
    std::rethrow_exception(e);
  } catch (const qvl::Error& err) {
    *code = error_code_name(err.code());
    *message = err.what();
  } catch (const std::bad_alloc&) {
    *code = "E_NATIVE";
    *message = "out of memory";
  } catch (const std::exception& err) {
    *code = "E_NATIVE";
    *message = err.what();
  } catch (...) {
    *code = "E_NATIVE";
    *message = "unknown native exception";
  }
}

}  // namespace qvl::napi
