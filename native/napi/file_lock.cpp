// fileLockTry(path) / fileLockRelease(fd): flock locks interoperable with Python's filelock, for
// the Hub cache (lib/hub/lock.ts). Arguments are checked here; the syscalls are core/file_lock.cpp.
#include <napi.h>

#include <climits>

#include "core/file_lock.h"
#include "napi/errors.h"
#include "napi/exports.h"

namespace qvl::napi {

namespace {

Napi::Value FileLockTry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    QVL_CHECK(info.Length() == 1 && info[0].IsString(), Input, "fileLockTry(path): path must be a string");
    const int fd = file_lock_try(info[0].As<Napi::String>().Utf8Value());
    return fd < 0 ? env.Null() : Napi::Number::New(env, fd);
  });
}

Napi::Value FileLockRelease(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    QVL_CHECK(info.Length() == 1 && info[0].IsNumber(), Input, "fileLockRelease(fd): fd must be a number");
    const double d = info[0].As<Napi::Number>().DoubleValue();
    QVL_CHECK(d >= 0 && d <= INT_MAX && static_cast<double>(static_cast<int>(d)) == d, Input,
              "fileLockRelease(fd): fd must be a non-negative integer");
    file_lock_release(static_cast<int>(d));
    return env.Undefined();
  });
}

}  // namespace

void register_file_lock(Napi::Env env, Napi::Object exports) {
  exports.Set("fileLockTry", Napi::Function::New(env, FileLockTry, "fileLockTry"));
  exports.Set("fileLockRelease", Napi::Function::New(env, FileLockRelease, "fileLockRelease"));
}

}  // namespace qvl::napi
