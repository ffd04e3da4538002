// Image preprocessing entry points (lib/processor/image.ts is the only caller):
//
//   resizeBicubic(pixels: Uint8Array, width, height, outWidth, outHeight,
//                 rounding?: 'pillow' | 'torch', channels?: 1..4) -> Promise<Uint8Array>
//   patchify(frames: Uint8Array[], width, height, options) -> Promise<Float32Array>
//     options: { patchSize, mergeSize, temporalPatchSize, doRescale, rescaleFactor,
//                doNormalize, mean: number[3], std: number[3], order: 'slow' | 'fast' }
//
// Inputs are borrowed (kept referenced until the worker is done; detaching them meanwhile is
// undefined behaviour). Outputs are ArrayBuffers allocated here on the JS thread before the
// work is queued and filled in place by the worker, so nothing is copied and no external
// buffer is needed (works inside Electron's memory cage too).
#include <napi.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "napi/async.h"
#include "napi/errors.h"
#include "napi/exports.h"
#include "ops/resample.h"

namespace qvl::napi {

namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;
// Largest output we hand to JS in one typed array (Node 20's Buffer limit is 4 GiB).
constexpr int64_t kMaxOutputBytes = int64_t{1} << 32;

int64_t int_arg(Napi::Value v, const std::string& what, int64_t lo, int64_t hi) {
  if (!v.IsNumber()) fail(ErrorCode::Input, what + " must be a number");
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!(x >= -kMaxSafeInteger && x <= kMaxSafeInteger) || x != std::floor(x)) {
    fail(ErrorCode::Input, what + " must be an integer, got " + v.ToString().Utf8Value());
  }
  const auto i = static_cast<int64_t>(x);
  if (i < lo || i > hi) {
    fail(ErrorCode::Input, what + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                               std::to_string(i));
  }
  return i;
}

double number_arg(Napi::Value v, const std::string& what) {
  if (!v.IsNumber()) fail(ErrorCode::Input, what + " must be a number");
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(x)) fail(ErrorCode::Input, what + " must be finite");
  return x;
}

bool bool_arg(Napi::Value v, const std::string& what) {
  if (!v.IsBoolean()) fail(ErrorCode::Input, what + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

Napi::Uint8Array bytes_arg(Napi::Value v, const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    fail(ErrorCode::Input, what + " must be a Uint8Array (or Buffer)");
  }
  return v.As<Napi::Uint8Array>();
}

Napi::Value ResizeBicubic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 5) fail(ErrorCode::Input, "resizeBicubic(pixels, width, height, outWidth, outHeight) needs 5 arguments");
    constexpr int64_t kSide = int64_t{1} << 24;
    Napi::Uint8Array pixels = bytes_arg(info[0], "resizeBicubic: pixels");
    ops::ResampleParams p;
    p.src_w = int_arg(info[1], "resizeBicubic: width", 1, kSide);
    p.src_h = int_arg(info[2], "resizeBicubic: height", 1, kSide);
    p.dst_w = int_arg(info[3], "resizeBicubic: outWidth", 1, kSide);
    p.dst_h = int_arg(info[4], "resizeBicubic: outHeight", 1, kSide);
    if (info.Length() > 5 && !info[5].IsUndefined()) {
      if (!info[5].IsString()) fail(ErrorCode::Input, "resizeBicubic: rounding must be 'pillow' or 'torch'");
      const std::string r = info[5].As<Napi::String>().Utf8Value();
      if (r == "pillow") p.rounding = ops::ResampleRounding::Pillow;
      else if (r == "torch") p.rounding = ops::ResampleRounding::Torch;
      else fail(ErrorCode::Input, "resizeBicubic: rounding must be 'pillow' or 'torch', got '" + r + "'");
    }
    p.channels = 3;
    if (info.Length() > 6 && !info[6].IsUndefined()) {
      p.channels = static_cast<int>(int_arg(info[6], "resizeBicubic: channels", 1, 4));
    }
    const std::string dims = std::to_string(p.src_w) + "x" + std::to_string(p.src_h) + "x" + std::to_string(p.channels);
    if (p.src_w * p.src_h > kMaxOutputBytes / p.channels ||
        static_cast<int64_t>(pixels.ByteLength()) != p.src_w * p.src_h * p.channels) {
      fail(ErrorCode::Input, "resizeBicubic: pixels holds " + std::to_string(pixels.ByteLength()) + " bytes, a " + dims +
                                 " image needs " + std::to_string(p.src_w * p.src_h * p.channels));
    }
    if (p.dst_w * p.dst_h > kMaxOutputBytes / p.channels) {
      fail(ErrorCode::Input, "resizeBicubic: output " + std::to_string(p.dst_w) + "x" + std::to_string(p.dst_h) +
                                 " is too large");
    }
    p.src = pixels.Data();
    const size_t out_bytes = static_cast<size_t>(p.dst_w * p.dst_h * p.channels);
    Napi::ArrayBuffer out = Napi::ArrayBuffer::New(env, out_bytes);
    p.dst = static_cast<uint8_t*>(out.Data());
    ops::check_resample(p);
    auto out_ref = std::make_shared<Napi::ObjectReference>(Napi::Persistent(out.As<Napi::Object>()));
    return run_async<int>(
        env,
        [p]() {
          std::shared_ptr<ThreadPool> pool = default_pool();
          ops::resample_bicubic(p, ExecContext(*pool));
          return 0;
        },
        [out_ref, out_bytes](Napi::Env e, int&) -> Napi::Value {
          return Napi::Uint8Array::New(e, out_bytes, out_ref->Value().As<Napi::ArrayBuffer>(), 0);
        },
        {pixels});
  });
}

std::vector<double> triple_arg(Napi::Value v, const std::string& what) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 3) fail(ErrorCode::Input, what + " must be an array of 3 numbers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<double> out(3);
  for (uint32_t i = 0; i < 3; ++i) out[i] = number_arg(a.Get(i), what + "[" + std::to_string(i) + "]");
  return out;
}

Napi::Value Patchify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 4) fail(ErrorCode::Input, "patchify(frames, width, height, options) needs 4 arguments");
    if (!info[0].IsArray()) fail(ErrorCode::Input, "patchify: frames must be an array of Uint8Array");
    if (!info[3].IsObject()) fail(ErrorCode::Input, "patchify: options must be an object");
    Napi::Array list = info[0].As<Napi::Array>();
    Napi::Object o = info[3].As<Napi::Object>();
    ops::PatchifyParams p;
    p.width = int_arg(info[1], "patchify: width", 1, int64_t{1} << 24);
    p.height = int_arg(info[2], "patchify: height", 1, int64_t{1} << 24);
    p.patch = static_cast<int>(int_arg(o.Get("patchSize"), "patchify: patchSize", 1, 1024));
    p.merge = static_cast<int>(int_arg(o.Get("mergeSize"), "patchify: mergeSize", 1, 64));
    p.temporal = static_cast<int>(int_arg(o.Get("temporalPatchSize"), "patchify: temporalPatchSize", 1, 64));
    p.do_rescale = bool_arg(o.Get("doRescale"), "patchify: doRescale");
    p.do_normalize = bool_arg(o.Get("doNormalize"), "patchify: doNormalize");
    if (p.do_rescale) p.rescale = number_arg(o.Get("rescaleFactor"), "patchify: rescaleFactor");
    if (p.do_normalize) {
      const std::vector<double> mean = triple_arg(o.Get("mean"), "patchify: mean");
      const std::vector<double> std = triple_arg(o.Get("std"), "patchify: std");
      for (int c = 0; c < 3; ++c) p.mean[c] = mean[c], p.std[c] = std[c];
    }
    const Napi::Value order = o.Get("order");
    const std::string ord = order.IsString() ? order.As<Napi::String>().Utf8Value() : "";
    if (ord == "slow") p.order = ops::NormalizeOrder::Slow;
    else if (ord == "fast") p.order = ops::NormalizeOrder::Fast;
    else fail(ErrorCode::Input, "patchify: order must be 'slow' or 'fast'");

    const int64_t n = list.Length();
    const ops::PatchGrid g = ops::patch_grid(n, p.width, p.height, p.patch, p.merge, p.temporal);
    const int64_t frame_bytes = p.width * p.height * 3;
    std::vector<Napi::Value> keep;
    auto frames = std::make_shared<std::vector<const uint8_t*>>();
    for (int64_t f = 0; f < n; ++f) {
      const std::string what = "patchify: frames[" + std::to_string(f) + "]";
      Napi::Uint8Array a = bytes_arg(list.Get(static_cast<uint32_t>(f)), what);
      if (static_cast<int64_t>(a.ByteLength()) != frame_bytes) {
        fail(ErrorCode::Input, what + " holds " + std::to_string(a.ByteLength()) + " bytes, a " +
                                   std::to_string(p.width) + "x" + std::to_string(p.height) + " RGB frame needs " +
                                   std::to_string(frame_bytes));
      }
      frames->push_back(a.Data());
      keep.push_back(a);
    }
    const int64_t row = int64_t{3} * p.temporal * p.patch * p.patch;
    if (g.rows() > kMaxOutputBytes / 4 / row) fail(ErrorCode::Input, "patchify: output too large");
    p.out_len = g.rows() * row;
    Napi::ArrayBuffer out = Napi::ArrayBuffer::New(env, static_cast<size_t>(p.out_len) * sizeof(float));
    p.out = static_cast<float*>(out.Data());
    p.frames = frames->data();
    p.frames_n = n;
    auto out_ref = std::make_shared<Napi::ObjectReference>(Napi::Persistent(out.As<Napi::Object>()));
    const size_t len = static_cast<size_t>(p.out_len);
    return run_async<int>(
        env,
        [p, frames]() {
          std::shared_ptr<ThreadPool> pool = default_pool();
          ops::patchify(p, ExecContext(*pool));
          return 0;
        },
        [out_ref, len](Napi::Env e, int&) -> Napi::Value {
          return Napi::Float32Array::New(e, len, out_ref->Value().As<Napi::ArrayBuffer>(), 0);
        },
        keep);
  });
}

}  // namespace

void register_image(Napi::Env env, Napi::Object exports) {
  exports.Set("resizeBicubic", Napi::Function::New(env, ResizeBicubic, "resizeBicubic"));
  exports.Set("patchify", Napi::Function::New(env, Patchify, "patchify"));
}

}  // namespace qvl::napi
