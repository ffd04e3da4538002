// castTensor(data, dtype, shape, toDtype) -> Promise<{dtype, shape, data, external}>
//
// Element type conversion off the JS thread: the input typed array is borrowed (kept
// referenced until the worker finishes), the output is a new owned tensor handed to JS
// zero-copy. Supported: any dtype to f32/f16/bf16 (round to nearest even), integer to
// integer (range-checked), and same to same (a copy). Float to integer is refused: the
// rounding a caller wants there is not ours to guess.
#include <napi.h>

#include <memory>
#include <string>

#include "core/dtype.h"
#include "core/error.h"
#include "core/exec_context.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "napi/async.h"
#include "napi/errors.h"
#include "napi/exports.h"
#include "napi/tensor_js.h"
#include "ops/convert.h"

namespace qvl::napi {

namespace {

bool is_float(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16 || d == DType::F8E4M3; }

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
  const std::shared_ptr<ThreadPool> pool = default_pool();
  const ExecContext ctx(*pool);
  ops::ConvertParams c;
  c.src = src.raw(), c.src_dtype = src.dtype();
  c.dst = out.raw(), c.dst_dtype = to;
  c.n = src.numel();
  const int64_t bad = ops::convert(c, ctx);
  if (bad >= 0) {
    // Integer to integer: the value that does not fit, read back as i64 (which holds them all).
    int64_t v = 0;
    c.src = static_cast<const char*>(src.raw()) + bad * static_cast<int64_t>(dtype_size(src.dtype()));
    c.dst = &v, c.dst_dtype = DType::I64, c.n = 1;
    ops::convert(c, ctx);
    fail(ErrorCode::Input, "castTensor: element " + std::to_string(bad) + " (" + std::to_string(v) +
                               ") does not fit in " + dtype_name(to));
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
