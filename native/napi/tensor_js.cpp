#include "napi/tensor_js.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "core/error.h"

namespace qvl::napi {

namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1: JS numbers are exact below it

#ifndef NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED
// What an external ArrayBuffer's finalizer holds: the storage stays alive while JS can see it.
struct KeepAlive {
  std::shared_ptr<Storage> storage;
  int64_t accounted;  // bytes reported to V8 as external memory (owned storages only)
};

void finalize_keep_alive(napi_env env, void* /*data*/, void* hint) {
  auto* keep = static_cast<KeepAlive*>(hint);
  if (keep->accounted != 0) {
    int64_t total = 0;
    napi_adjust_external_memory(env, -keep->accounted, &total);
  }
  delete keep;
}

bool copy_forced() {
  const char* v = std::getenv("QWENVL_COPY_TENSORS");
  return v != nullptr && (std::strcmp(v, "1") == 0 || std::strcmp(v, "true") == 0);
}
#endif

// A table, not a switch: Node's headers add typed array kinds (Float16Array) that this addon does
// not read, and those are named generically in errors rather than breaking the build.
const char* typed_array_name(napi_typedarray_type t) {
  static const std::pair<napi_typedarray_type, const char*> names[] = {
      {napi_int8_array, "Int8Array"},         {napi_uint8_array, "Uint8Array"},
      {napi_uint8_clamped_array, "Uint8ClampedArray"}, {napi_int16_array, "Int16Array"},
      {napi_uint16_array, "Uint16Array"},     {napi_int32_array, "Int32Array"},
      {napi_uint32_array, "Uint32Array"},     {napi_float32_array, "Float32Array"},
      {napi_float64_array, "Float64Array"},   {napi_bigint64_array, "BigInt64Array"},
      {napi_biguint64_array, "BigUint64Array"}};
  for (const auto& [type, name] : names) {
    if (type == t) return name;
  }
  return "typed array";
}

napi_typedarray_type typed_array_for(DType d) {
  switch (d) {
    case DType::F32: return napi_float32_array;
    case DType::F16:
    case DType::BF16: return napi_uint16_array;
    case DType::I32: return napi_int32_array;
    case DType::I64: return napi_bigint64_array;
    case DType::U8:
    case DType::F8E4M3: return napi_uint8_array;
  }
  return napi_uint8_array;
}

Napi::ArrayBuffer copy_to_js(Napi::Env env, const void* src, size_t bytes) {
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, bytes);
  if (bytes > 0) std::memcpy(ab.Data(), src, bytes);
  return ab;
}

}  // namespace

bool external_buffers_enabled() {
#ifdef NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED
  return false;
#else
  return !copy_forced();
#endif
}

Napi::ArrayBuffer to_js_buffer(Napi::Env env, const Tensor& t, bool* external) {
  QVL_CHECK(t.defined(), Native, "to_js_buffer: tensor has no storage");
  QVL_CHECK(t.is_contiguous(), Native, "to_js_buffer: tensor " + t.shape_string() + " is not contiguous");
  const size_t bytes = t.nbytes();
  *external = false;
#ifndef NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED
  // Borrowed memory belongs to a caller who may free it after the call: never share it.
  // A misaligned start (possible in a safetensors file written without padding) would make the
  // typed array view misaligned too, so it is copied into an aligned buffer instead.
  const Storage* s = t.storage().get();
  // kind() rather than dynamic_cast: node-gyp builds without RTTI.
  const bool borrowed = std::strcmp(s->kind(), "borrowed") == 0;
  const bool aligned = reinterpret_cast<uintptr_t>(t.raw()) % dtype_size(t.dtype()) == 0;
  if (bytes > 0 && !borrowed && aligned && !copy_forced()) {
    const bool owned = std::strcmp(s->kind(), "owned") == 0;
    auto* keep = new KeepAlive{t.storage(), owned ? static_cast<int64_t>(bytes) : 0};
    napi_value ab = nullptr;
    const napi_status st = napi_create_external_arraybuffer(env, t.raw(), bytes, finalize_keep_alive, keep, &ab);
    if (st == napi_ok) {
      if (keep->accounted != 0) {
        int64_t total = 0;
        napi_adjust_external_memory(env, keep->accounted, &total);
      }
      *external = true;
      return Napi::ArrayBuffer(env, ab);
    }
    delete keep;  // N-API did not take ownership: the finalizer will never run
    if (st != napi_no_external_buffers_allowed) NAPI_THROW_IF_FAILED(env, st, Napi::ArrayBuffer());
  }
#endif
  return copy_to_js(env, t.raw(), bytes);
}

Napi::Object to_js(Napi::Env env, const Tensor& t) {
  bool external = false;
  Napi::ArrayBuffer data = to_js_buffer(env, t, &external);
  Napi::Object out = Napi::Object::New(env);
  out.Set("dtype", static_cast<int32_t>(t.dtype()));
  Napi::Array shape = Napi::Array::New(env, t.shape().size());
  for (size_t i = 0; i < t.shape().size(); ++i) shape.Set(static_cast<uint32_t>(i), static_cast<double>(t.shape()[i]));
  out.Set("shape", shape);
  out.Set("data", data);
  out.Set("external", external);
  return out;
}

Tensor from_js(Napi::Value value, DType dtype, const std::vector<int64_t>& shape, const char* what) {
  Napi::Env env = value.Env();
  if (!value.IsTypedArray()) fail(ErrorCode::Input, std::string(what) + " must be a typed array");
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr), Tensor());
  const napi_typedarray_type expected = typed_array_for(dtype);
  const bool ok = type == expected || (dtype == DType::U8 && type == napi_uint8_clamped_array);
  if (!ok) {
    fail(ErrorCode::Input, std::string(what) + " is a " + typed_array_name(type) + " but dtype " + dtype_name(dtype) +
                               " needs a " + typed_array_name(expected));
  }
  const int64_t n = checked_numel(shape);
  if (static_cast<uint64_t>(n) != length) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
    fail(ErrorCode::Input, std::string(what) + " has " + std::to_string(length) + " elements but shape " + s + "]" +
                               " needs " + std::to_string(n));
  }
  const size_t bytes = length * dtype_size(dtype);
  return Tensor(dtype, shape, std::make_shared<BorrowedStorage>(data, bytes), 0);
}

DType dtype_arg(Napi::Value v, const char* what) {
  DType d;
  if (v.IsNumber()) {
    const double x = v.As<Napi::Number>().DoubleValue();
    if (x == std::floor(x) && x >= 0 && x < 1024 && dtype_from_int(static_cast<int32_t>(x), &d)) return d;
    fail(ErrorCode::Input, std::string(what) + ": unknown dtype code " + std::to_string(x));
  }
  if (v.IsString()) {
    const std::string s = v.As<Napi::String>().Utf8Value();
    for (int32_t i = 0; dtype_from_int(i, &d); ++i) {
      if (s == dtype_name(d)) return d;
    }
    if (dtype_from_safetensors(s, &d)) return d;
    fail(ErrorCode::Input, std::string(what) + ": unknown dtype \"" + s + "\"");
  }
  fail(ErrorCode::Input, std::string(what) + " must be a dtype (number or name)");
}

uint64_t size_arg(Napi::Value v, const char* what) {
  if (!v.IsNumber()) fail(ErrorCode::Input, std::string(what) + " must be a number");
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!(x >= 0) || x > kMaxSafeInteger || x != std::floor(x)) {
    fail(ErrorCode::Input, std::string(what) + " must be a non-negative integer, got " + std::to_string(x));
  }
  return static_cast<uint64_t>(x);
}

std::vector<int64_t> shape_arg(Napi::Value v, const char* what) {
  if (!v.IsArray()) fail(ErrorCode::Input, std::string(what) + " must be an array of dimensions");
  Napi::Array a = v.As<Napi::Array>();
  const uint32_t n = a.Length();
  if (n > 64) fail(ErrorCode::Input, std::string(what) + " has " + std::to_string(n) + " dimensions (at most 64)");
  std::vector<int64_t> shape(n);
  for (uint32_t i = 0; i < n; ++i) {
    const std::string dim = std::string(what) + "[" + std::to_string(i) + "]";
    shape[i] = static_cast<int64_t>(size_arg(a.Get(i), dim.c_str()));
  }
  checked_numel(shape);  // overflow check
  return shape;
}

}  // namespace qvl::napi
