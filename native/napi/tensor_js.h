// The one place where qvl::Tensor meets JS memory.
//
// Out: a tensor's bytes become an ArrayBuffer without copying (an external buffer whose
// finalizer holds the tensor's storage alive), or a copy where external buffers are forbidden:
// builds with NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED, runtimes that answer
// napi_no_external_buffers_allowed (Electron's memory cage), or QWENVL_COPY_TENSORS=1 in the
// environment (read on every call, so a test can flip it).
//
// In: a JS typed array is borrowed for the length of a call. The caller keeps the array
// referenced (run_async's keep_alive) until any worker using the tensor has finished; if JS
// detaches or transfers the buffer meanwhile, the result is undefined.
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace qvl::napi {

// The ArrayBuffer holding t's bytes. *external says whether JS shares t's memory (true) or
// got a copy (false). t must be contiguous. Owned storages handed out zero-copy are reported
// to V8 with napi_adjust_external_memory until their buffer is collected.
Napi::ArrayBuffer to_js_buffer(Napi::Env env, const Tensor& t, bool* external);

// Whether tensors reach JS zero-copy right now: compiled with external buffers and not forced
// to copy by QWENVL_COPY_TENSORS (the runtime refusal of Electron is only seen per call).
bool external_buffers_enabled();

// {dtype: int, shape: number[], data: ArrayBuffer, external: boolean}; lib/tensor.ts wraps it.
Napi::Object to_js(Napi::Env env, const Tensor& t);

// A tensor over a JS typed array's memory (BorrowedStorage, no copy). The typed array's type
// must match dtype (f32: Float32Array, f16/bf16: Uint16Array raw bits, i32: Int32Array,
// i64: BigInt64Array, u8: Uint8Array) and its length the shape's element count; otherwise
// E_INPUT naming `what`.
Tensor from_js(Napi::Value value, DType dtype, const std::vector<int64_t>& shape, const char* what);

// The mapping behind a handle from mapFile() (native/napi/safetensors.cpp); E_INPUT for anything
// else, E_DISPOSED once closed. Lets model loading take checkpoint handles straight from JS.
std::shared_ptr<MappedFile> mapped_file_arg(Napi::Value v, const char* what);
// A tensor over bytes [offset, offset + length) of a mapping, after checking that they lie in
// the file (E_MODEL_FORMAT) and that dtype x shape takes exactly `length` bytes (E_INPUT).
Tensor mapped_view(const std::shared_ptr<MappedFile>& file, DType dtype, const std::vector<int64_t>& shape,
                   uint64_t offset, uint64_t length);

// Argument parsing shared by the tensor entry points; each throws E_INPUT naming `what`.
DType dtype_arg(Napi::Value v, const char* what);                    // an int (DType) or a name ("bf16")
std::vector<int64_t> shape_arg(Napi::Value v, const char* what);     // array of non-negative safe integers
uint64_t size_arg(Napi::Value v, const char* what);                  // a non-negative safe integer

}  // namespace qvl::napi
