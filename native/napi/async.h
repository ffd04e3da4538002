// Slow calls run on libuv's worker threads and resolve a Promise. `work` runs off the JS thread
// and must not touch N-API; `finish` turns its result into a JS value on the JS thread. Values
// listed in keep_alive (typed arrays whose memory `work` borrows) stay referenced until then.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "napi/errors.h"

namespace qvl::napi {

template <class R>
class PromiseWorker final : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::function<R()> work, std::function<Napi::Value(Napi::Env, R&)> finish,
                const std::vector<Napi::Value>& keep_alive)
      : Napi::AsyncWorker(env, "qwenvl"), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)), finish_(std::move(finish)) {
    for (const auto& v : keep_alive) {
      if (v.IsObject()) refs_.push_back(Napi::Persistent(v.As<Napi::Object>()));
    }
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      result_ = std::make_unique<R>(work_());
    } catch (...) {
      describe_exception(std::current_exception(), &code_, &message_);
      SetError(message_);
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(finish_(env, *result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      std::string code, message;
      describe_exception(std::current_exception(), &code, &message);
      deferred_.Reject(make_error(env, code.c_str(), message).Value());
    }
  }
  void OnError(const Napi::Error&) override {
    deferred_.Reject(make_error(Env(), code_.c_str(), message_).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<R()> work_;
  std::function<Napi::Value(Napi::Env, R&)> finish_;
  std::vector<Napi::ObjectReference> refs_;
  std::unique_ptr<R> result_;
  std::string code_ = "E_NATIVE", message_;
};

template <class R>
Napi::Promise run_async(Napi::Env env, std::function<R()> work, std::function<Napi::Value(Napi::Env, R&)> finish,
                        const std::vector<Napi::Value>& keep_alive = {}) {
  auto* w = new PromiseWorker<R>(env, std::move(work), std::move(finish), keep_alive);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace qvl::napi
