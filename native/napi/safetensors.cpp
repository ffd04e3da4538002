// Zero-copy access to safetensors files. lib/io/safetensors.ts reads and validates the header;
// these functions map the file and hand out views of its tensors. They re-check every offset,
// length, dtype and shape they are given against the mapping: JS is never trusted.
//
//   mapFile(path) -> {handle, size}       handle: an External holding the mapping
//   closeMappedFile(handle)               drops the handle's reference (idempotent)
//   viewTensor(handle, dtype, shape, byteOffset, byteLength) -> {dtype, shape, data, external}
//
// A view holds its own reference to the mapping, so closing the handle (or disposing the
// checkpoint) while views are alive is safe: the pages go away with the last view.
#include <napi.h>

#include <memory>
#include <string>

#include "core/error.h"
#include "core/storage.h"
#include "core/tensor.h"
#include "napi/errors.h"
#include "napi/exports.h"
#include "napi/tensor_js.h"

namespace qvl::napi {

namespace {

// Marks externals created here, so a foreign External passed back is refused, not misread.
constexpr napi_type_tag kMappedFileTag = {0x71776e766c2d6d61ULL, 0x707065642d66696cULL};

struct MappedHandle {
  std::shared_ptr<MappedFile> file;  // null once closed
};

MappedHandle* unwrap(Napi::Value v, const char* fn) {
  if (!v.IsExternal()) fail(ErrorCode::Input, std::string(fn) + ": expected a mapped file handle");
  auto ext = v.As<Napi::External<MappedHandle>>();
  if (!ext.CheckTypeTag(&kMappedFileTag)) fail(ErrorCode::Input, std::string(fn) + ": not a mapped file handle");
  return ext.Data();
}

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) fail(ErrorCode::Input, "mapFile: path must be a string");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    auto holder = std::make_unique<MappedHandle>();
    holder->file = std::make_shared<MappedFile>(path);
    const double size = static_cast<double>(holder->file->bytes());
    auto ext = Napi::External<MappedHandle>::New(env, holder.get(), [](Napi::Env, MappedHandle* h) { delete h; });
    holder.release();
    ext.TypeTag(&kMappedFileTag);
    Napi::Object out = Napi::Object::New(env);
    out.Set("handle", ext);
    out.Set("size", size);
    return out;
  });
}

Napi::Value CloseMappedFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    MappedHandle* h = unwrap(info[0], "closeMappedFile");
    h->file.reset();
    return env.Undefined();
  });
}

Napi::Value ViewTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    std::shared_ptr<MappedFile> file = mapped_file_arg(info[0], "viewTensor");
    const DType dtype = dtype_arg(info[1], "viewTensor dtype");
    const std::vector<int64_t> shape = shape_arg(info[2], "viewTensor shape");
    const uint64_t offset = size_arg(info[3], "viewTensor byteOffset");
    const uint64_t length = size_arg(info[4], "viewTensor byteLength");
    return to_js(env, mapped_view(file, dtype, shape, offset, length));
  });
}

}  // namespace

std::shared_ptr<MappedFile> mapped_file_arg(Napi::Value v, const char* what) {
  MappedHandle* h = unwrap(v, what);
  if (!h->file) fail(ErrorCode::Disposed, std::string(what) + ": the mapped file was closed");
  return h->file;
}

Tensor mapped_view(const std::shared_ptr<MappedFile>& file, DType dtype, const std::vector<int64_t>& shape,
                   uint64_t offset, uint64_t length) {
  const uint64_t size = file->bytes();
  if (offset > size || length > size - offset) {
    fail(ErrorCode::ModelFormat, file->path() + ": tensor bytes [" + std::to_string(offset) + ", " +
                                     std::to_string(offset + length) + ") lie outside the file (" +
                                     std::to_string(size) + " bytes mapped)");
  }
  const uint64_t numel = static_cast<uint64_t>(checked_numel(shape));
  const uint64_t es = dtype_size(dtype);
  if (numel > UINT64_MAX / es || numel * es != length) {
    fail(ErrorCode::Input, file->path() + ": " + std::to_string(numel) + " elements of " + dtype_name(dtype) +
                               " do not take " + std::to_string(length) + " bytes");
  }
  return Tensor(dtype, shape, file, static_cast<size_t>(offset));
}

void register_safetensors(Napi::Env env, Napi::Object exports) {
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
  exports.Set("closeMappedFile", Napi::Function::New(env, CloseMappedFile, "closeMappedFile"));
  exports.Set("viewTensor", Napi::Function::New(env, ViewTensor, "viewTensor"));
}

}  // namespace qvl::napi
