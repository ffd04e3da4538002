// benchMatmul / benchAttention / benchSampling: time one op variant off the JS thread for `npm run bench`.
// Each resolves to seconds per call (best of `iters` after a warm-up). benchPeak resolves to the
// GFLOP/s of one compute-peak probe (tests/bench_peak.cpp).
#include <napi.h>

#include <string>

#include "core/error.h"
#include "napi/async.h"
#include "napi/exports.h"
#include "tests/bench.h"

namespace qvl::napi {

namespace {

Napi::Object options(const Napi::CallbackInfo& info, const char* fn) {
  if (info.Length() < 1 || !info[0].IsObject()) fail(ErrorCode::Input, std::string(fn) + " expects an options object");
  return info[0].As<Napi::Object>();
}

int64_t int_field(const Napi::Object& o, const char* fn, const char* key) {
  const Napi::Value v = o.Get(key);
  if (!v.IsNumber()) fail(ErrorCode::Input, std::string(fn) + ": " + key + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d == static_cast<double>(static_cast<int64_t>(d))) || d < 0 || d > 9.0e15) {
    fail(ErrorCode::Input, std::string(fn) + ": " + key + " must be a non-negative integer");
  }
  return static_cast<int64_t>(d);
}

std::string string_field(const Napi::Object& o, const char* fn, const char* key) {
  const Napi::Value v = o.Get(key);
  if (!v.IsString()) fail(ErrorCode::Input, std::string(fn) + ": " + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

int iters_field(const Napi::Object& o, const char* fn) {
  const int64_t n = int_field(o, fn, "iters");
  if (n < 1 || n > 100000) fail(ErrorCode::Input, std::string(fn) + ": iters must be in [1, 100000]");
  return static_cast<int>(n);
}

Napi::Value seconds(Napi::Env env, double& s) { return Napi::Number::New(env, s); }

Napi::Value BenchMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const char* fn = "benchMatmul";
    const Napi::Object o = options(info, fn);
    bench::MatmulCase c{int_field(o, fn, "M"), int_field(o, fn, "K"), int_field(o, fn, "N"),
                        string_field(o, fn, "wDtype"), string_field(o, fn, "variant"), iters_field(o, fn)};
    if (!o.Get("family").IsUndefined()) c.family = string_field(o, fn, "family");
    if (!o.Get("spillBytes").IsUndefined()) c.spill_bytes = int_field(o, fn, "spillBytes");
    if (!o.Get("rowTiles").IsUndefined()) {
      if (!o.Get("rowTiles").IsBoolean()) fail(ErrorCode::Input, std::string(fn) + ": rowTiles must be a boolean");
      c.row_tiles = o.Get("rowTiles").As<Napi::Boolean>().Value();
    }
    return run_async<double>(env, [c] { return bench::matmul_seconds(c); }, seconds);
  });
}

// benchRead({bytes, iters}): seconds to read `bytes` of owned memory on every pool thread.
Napi::Value BenchRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const char* fn = "benchRead";
    const Napi::Object o = options(info, fn);
    const int64_t bytes = int_field(o, fn, "bytes");
    const int iters = iters_field(o, fn);
    return run_async<double>(env, [bytes, iters] { return bench::read_seconds(bytes, iters); }, seconds);
  });
}

// weightBytes(format, N, K): bytes an [N, K] weight takes in a format, scales included.
Napi::Value WeightBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 3 || !info[0].IsString()) fail(ErrorCode::Input, "weightBytes(format, N, K)");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    for (const WeightFormat f : kWeightFormats) {
      if (name == weight_format_name(f)) {
        const Napi::Object o = Napi::Object::New(env);
        o.Set("N", info[1]);
        o.Set("K", info[2]);
        return Napi::Number::New(env, bench::weight_bytes(f, int_field(o, "weightBytes", "N"), int_field(o, "weightBytes", "K")));
      }
    }
    fail(ErrorCode::Input, "weightBytes: unknown weight format '" + name + "'");
  });
}

Napi::Value BenchAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const char* fn = "benchAttention";
    const Napi::Object o = options(info, fn);
    const Napi::Value causal = o.Get("causal");
    if (!causal.IsBoolean()) fail(ErrorCode::Input, "benchAttention: causal must be a boolean");
    bench::AttentionCase c{int_field(o, fn, "seq"),      int_field(o, fn, "heads"),
                           int_field(o, fn, "kvHeads"),  int_field(o, fn, "headDim"),
                           causal.As<Napi::Boolean>().Value(), string_field(o, fn, "variant"),
                           iters_field(o, fn)};
    if (!o.Get("family").IsUndefined()) c.family = string_field(o, fn, "family");
    return run_async<double>(env, [c] { return bench::attention_seconds(c); }, seconds);
  });
}

// benchAttentionDecode({context, heads, kvHeads, headDim, layers, sequences, variant, iters[, kvDtype,
// family]}): seconds per decode step's attention (every layer, every sequence; the cache f32 or
// bf16) with a variant of family attention (default) or attention_bf16_decode.
Napi::Value BenchAttentionDecode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const char* fn = "benchAttentionDecode";
    const Napi::Object o = options(info, fn);
    bench::AttentionDecodeCase c{int_field(o, fn, "context"), int_field(o, fn, "heads"),  int_field(o, fn, "kvHeads"),
                                 int_field(o, fn, "headDim"), int_field(o, fn, "layers"), int_field(o, fn, "sequences"),
                                 string_field(o, fn, "variant"), iters_field(o, fn)};
    if (!o.Get("kvDtype").IsUndefined()) c.kv_dtype = string_field(o, fn, "kvDtype");
    if (!o.Get("family").IsUndefined()) c.family = string_field(o, fn, "family");
    return run_async<double>(env, [c] { return bench::attention_decode_seconds(c); }, seconds);
  });
}

// benchSampling({vocab, row, params, variant, iters}): seconds per token choice of one sampling
// variant (params as sampleToken takes them).
Napi::Value BenchSampling(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const char* fn = "benchSampling";
    const Napi::Object o = options(info, fn);
    if (!o.Get("params").IsObject()) fail(ErrorCode::Input, "benchSampling: params must be an object");
    bench::SamplingCase c{int_field(o, fn, "vocab"), string_field(o, fn, "row"),
                          sampling_params_arg(o.Get("params").As<Napi::Object>()), string_field(o, fn, "variant"),
                          iters_field(o, fn)};
    return run_async<double>(env, [c] { return bench::sampling_seconds(c); }, seconds);
  });
}

// benchQuantizeRow({format, rows, n, group, variant, iters}): seconds to quantize `rows` rows of
// n values with one quantize_row variant (the per-row step of quantizing weights at load).
Napi::Value BenchQuantizeRow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const char* fn = "benchQuantizeRow";
    const Napi::Object o = options(info, fn);
    bench::QuantizeRowCase c{string_field(o, fn, "format"), int_field(o, fn, "rows"),       int_field(o, fn, "n"),
                             int_field(o, fn, "group"),     string_field(o, fn, "variant"), iters_field(o, fn)};
    return run_async<double>(env, [c] { return bench::quantize_row_seconds(c); }, seconds);
  });
}

Napi::Value BenchPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const char* fn = "benchPeak";
    const Napi::Object o = options(info, fn);
    const std::string kind = string_field(o, fn, "kind");
    const int64_t rounds = int_field(o, fn, "rounds");
    return run_async<double>(env, [kind, rounds] { return bench::peak_gflops(kind, rounds); }, seconds);
  });
}

}  // namespace

void register_bench(Napi::Env env, Napi::Object exports) {
  exports.Set("benchMatmul", Napi::Function::New(env, BenchMatmul, "benchMatmul"));
  exports.Set("benchAttention", Napi::Function::New(env, BenchAttention, "benchAttention"));
  exports.Set("benchAttentionDecode", Napi::Function::New(env, BenchAttentionDecode, "benchAttentionDecode"));
  exports.Set("benchSampling", Napi::Function::New(env, BenchSampling, "benchSampling"));
  exports.Set("benchQuantizeRow", Napi::Function::New(env, BenchQuantizeRow, "benchQuantizeRow"));
  exports.Set("benchPeak", Napi::Function::New(env, BenchPeak, "benchPeak"));
  exports.Set("benchRead", Napi::Function::New(env, BenchRead, "benchRead"));
  exports.Set("weightBytes", Napi::Function::New(env, WeightBytes, "weightBytes"));
}

}  // namespace qvl::napi
