// C++ exceptions -> JS errors. Every error reaching JS is an instance of the class lib/errors.ts
// registers at load (QwenVLError), with a stable `code`.
#pragma once
#include <napi.h>

#include <exception>
#include <string>

#include "core/error.h"

namespace qvl::napi {

void set_error_class(Napi::Env env, Napi::Function ctor);
Napi::Error make_error(Napi::Env env, const char* code, const std::string& message);
// Maps whatever was caught to (code, message).
void describe_exception(std::exception_ptr e, std::string* code, std::string* message);

// Runs fn; a C++ exception becomes a thrown JS error with its code.
template <class Fn>
Napi::Value guard(Napi::Env env, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    std::string code, message;
    describe_exception(std::current_exception(), &code, &message);
    throw make_error(env, code.c_str(), message);
  }
}

}  // namespace qvl::napi
