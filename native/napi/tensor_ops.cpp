// castTensor(data, dtype, shape, toDtype) -> Promise<{dtype, shape, data, external}>
//
// Element type conversion off the JS thread: the input typed array is borrowed (kept
// referenced until the worker finishes), the output is a new owned tensor handed to JS
// zero-copy. Supported: any dtype to f32/f16/bf16 (round to nearest even), integer to
// integer (range-checked), and same to same (a copy). Float to integer is refused: the
// rounding a caller wants there is not ours to guess.
#include <napi.h>

#include <cstring>
#include <string>

#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"
#include "napi/async.h"
#include "napi/errors.h"
#include "napi/exports.h"
#include "napi/tensor_js.h"

namespace qvl::napi {

namespace {

bool is_float(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16 || d == DType::F8E4M3; }

float load_float(const void* p, DType d, int64_t i) {
  switch (d) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::I32: return static_cast<float>(static_cast<const int32_t*>(p)[i]);
    case DType::I64: return static_cast<float>(static_cast<const int64_t*>(p)[i]);
    case DType::U8: return static_cast<float>(static_cast<const uint8_t*>(p)[i]);
    case DType::F8E4M3: return f8e4m3_to_f32(static_cast<const uint8_t*>(p)[i]);
  }
  return 0.f;
}

int64_t load_int(const void* p, DType d, int64_t i) {
  switch (d) {
    case DType::I32: return static_cast<const int32_t*>(p)[i];
    case DType::I64: return static_cast<const int64_t*>(p)[i];
    case DType::U8: return static_cast<const uint8_t*>(p)[i];
    case DType::F8E4M3:
    case DType::F32:
    case DType::F16:
    case DType::BF16: break;
  }
  fail(ErrorCode::Native, std::string("castTensor: ") + dtype_name(d) + " read as an integer");
}

void check_cast(DType from, DType to) {
  // Casting into fp8 needs a scale to be meaningful; reading fp8 out is exact.
  if (from != to && to == DType::F8E4M3) {
    fail(ErrorCode::Unsupported, std::string("castTensor: ") + dtype_name(from) + " -> f8_e4m3 is not supported");
  }
  if (from != to && !is_float(to) && is_float(from)) {
    fail(ErrorCode::Unsupported, std::string("castTensor: ") + dtype_name(from) + " -> " + dtype_name(to) +
                                     " is not supported (float to integer needs a rounding rule)");
  }
}

Tensor cast_tensor(const Tensor& src, DType to) {
  Tensor out = Tensor::empty(to, src.shape());
  const int64_t n = src.numel();
  const void* in = src.raw();
  void* dst = out.raw();
  if (src.dtype() == to) {
    if (n > 0) std::memcpy(dst, in, src.nbytes());
    return out;
  }
  switch (to) {
    case DType::F32: {
      auto* o = static_cast<float*>(dst);
      for (int64_t i = 0; i < n; ++i) o[i] = load_float(in, src.dtype(), i);
      return out;
    }
    case DType::F16: {
      auto* o = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) o[i] = f32_to_f16(load_float(in, src.dtype(), i));
      return out;
    }
    case DType::BF16: {
      auto* o = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) o[i] = f32_to_bf16(load_float(in, src.dtype(), i));
      return out;
    }
    case DType::I32:
    case DType::I64:
    case DType::U8:
    case DType::F8E4M3: break;
  }
  // Integer to integer; check_cast already refused float sources.
  int64_t lo = INT64_MIN, hi = INT64_MAX;
  if (to == DType::I32) { lo = INT32_MIN; hi = INT32_MAX; }
  if (to == DType::U8) { lo = 0; hi = 255; }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = load_int(in, src.dtype(), i);
    if (v < lo || v > hi) {
      fail(ErrorCode::Input, "castTensor: element " + std::to_string(i) + " (" + std::to_string(v) +
                                 ") does not fit in " + dtype_name(to));
    }
    switch (to) {
      case DType::I32: static_cast<int32_t*>(dst)[i] = static_cast<int32_t>(v); break;
      case DType::I64: static_cast<int64_t*>(dst)[i] = v; break;
      case DType::U8: static_cast<uint8_t*>(dst)[i] = static_cast<uint8_t>(v); break;
      case DType::F8E4M3:
      case DType::F32:
      case DType::F16:
      case DType::BF16: break;  // handled by the float switch above
    }
  }
  return out;
}

Napi::Value CastTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 4) fail(ErrorCode::Input, "castTensor(data, dtype, shape, toDtype) needs 4 arguments");
    const DType from = dtype_arg(info[1], "castTensor dtype");
    const std::vector<int64_t> shape = shape_arg(info[2], "castTensor shape");
    const DType to = dtype_arg(info[3], "castTensor toDtype");
    check_cast(from, to);
    Tensor src = from_js(info[0], from, shape, "castTensor input");
    return run_async<Tensor>(
        env, [src, to] { return cast_tensor(src, to); },
        [](Napi::Env env, Tensor& t) -> Napi::Value { return to_js(env, t); }, {info[0]});
  });
}

}  // namespace

void register_tensor_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("castTensor", Napi::Function::New(env, CastTensor, "castTensor"));
}

}  // namespace qvl::napi
