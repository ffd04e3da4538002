// info(): what this build and machine can do — the facts behind `qwenvl info`.
#include <napi.h>

#include "backends/cuda/device.h"
#include "core/cpu.h"
#include "core/dtype.h"
#include "core/threadpool.h"
#include "core/weight_format.h"
#include "napi/errors.h"
#include "napi/exports.h"
#include "napi/tensor_js.h"
#include "ops/attention.h"
#include "ops/matmul.h"
#include "ops/registry.h"

namespace qvl::napi {

namespace {

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    const CpuFeatures& f = cpu_features();
    Napi::Object cpu = Napi::Object::New(env);
    cpu.Set("brand", cpu_brand());
    cpu.Set("physicalCores", physical_cores());
    Napi::Array feats = Napi::Array::New(env);
    const std::pair<const char*, bool> table[] = {
        {"avx2", f.avx2}, {"fma", f.fma}, {"f16c", f.f16c}, {"avx512f", f.avx512f}, {"avx512bw", f.avx512bw},
        {"avx512vl", f.avx512vl}, {"avx512dq", f.avx512dq}, {"avx512bf16", f.avx512bf16},
        {"avx512vnni", f.avx512vnni}, {"avx-vnni", f.avx_vnni}, {"amx-tile", f.amx_tile}, {"amx-bf16", f.amx_bf16}, {"amx-int8", f.amx_int8}};
    uint32_t k = 0;
    for (const auto& [name, on] : table) if (on) feats.Set(k++, name);
    cpu.Set("features", feats);
    out.Set("cpu", cpu);
    out.Set("threads", default_threads());

    Napi::Object ops = Napi::Object::New(env);
    for (const ops::OpFamilyBase* fam : ops::op_catalog()) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("chosen", fam->chosen_name());
      Napi::Array vars = Napi::Array::New(env);
      uint32_t i = 0;
      uint32_t any_formats = 0;
      for (const auto& v : fam->variant_infos()) {
        Napi::Object vo = Napi::Object::New(env);
        vo.Set("name", v.name);
        vo.Set("isa", isa_name(v.isa));
        vo.Set("device", device_name(v.device));
        vo.Set("available", isa_available(v.isa));
        if (v.formats) {
          Napi::Array fs = Napi::Array::New(env);
          uint32_t j = 0;
          for (const WeightFormat f : kWeightFormats) {
            if (v.formats & format_bit(f)) fs.Set(j++, weight_format_name(f));
          }
          vo.Set("formats", fs);
        }
        any_formats |= v.formats;
        vars.Set(i++, vo);
      }
      o.Set("variants", vars);
      if (any_formats) {  // an op that reads weights: what runs for each format
        Napi::Object by = Napi::Object::New(env);
        for (const WeightFormat f : kWeightFormats) {
          const char* name = fam->chosen_name_for(f);
          if (name) by.Set(weight_format_name(f), name);
        }
        o.Set("chosenByFormat", by);
      }
      ops.Set(fam->name(), o);
    }
    out.Set("ops", ops);

    // What precision 'fast' really runs: the bf16 families' registry choice can be a kernel that
    // fast passes over (the scalar reference; AVX512-BF16 for q8/q4), and then the exact one runs.
    Napi::Object fast = Napi::Object::New(env);
    Napi::Object fast_matmul = Napi::Object::New(env);
    for (const WeightFormat f : kWeightFormats) {
      const auto* v = ops::matmul_bf16_variant(Device::Host, f);
      fast_matmul.Set(weight_format_name(f), v ? Napi::Value(Napi::String::New(env, v->name)) : env.Null());
    }
    fast.Set("matmulByFormat", fast_matmul);
    const auto* fa = ops::attention_bf16_variant(Device::Host);
    fast.Set("attention", fa ? Napi::Value(Napi::String::New(env, fa->name)) : env.Null());
    const auto* fd = ops::attention_bf16_decode_variant(Device::Host);
    fast.Set("attentionDecode", fd ? Napi::Value(Napi::String::New(env, fd->name)) : env.Null());
    out.Set("fast", fast);

    const cuda::Status cs = cuda::status();
    Napi::Object cuda = Napi::Object::New(env);
    cuda.Set("compiled", cs.compiled);
    cuda.Set("available", cs.available);
    if (cs.available) {
      cuda.Set("device", cs.device);
      cuda.Set("memoryBytes", static_cast<double>(cs.memory_bytes));
      cuda.Set("deviceCount", cs.device_count);
    } else {
      cuda.Set("reason", cs.reason);
    }
    if (cs.compiled) {
      cuda.Set("runtimeVersion", cs.runtime_version);
      cuda.Set("driverVersion", cs.driver_version);
    }
    out.Set("cuda", cuda);
    out.Set("externalBuffers", external_buffers_enabled());
    return out;
  });
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsNumber()) throw make_error(env, "E_INPUT", "setThreads expects a number");
    const double n = info[0].As<Napi::Number>().DoubleValue();
    if (!(n >= 1 && n <= 1024) || n != static_cast<int>(n))
      throw make_error(env, "E_INPUT", "threads must be an integer in [1, 1024], got " + std::to_string(n));
    set_default_threads(static_cast<int>(n));
    return env.Undefined();
  });
}

// dtypeTable(): native/core/dtype.h's table (name, code, element bytes), for the test that keeps
// lib/tensor.ts's DTYPE_CODES and DTYPE_SIZES in step with it. Every code dtype_from_int accepts
// (its switch lists each DType, so a new one cannot be missed there).
Napi::Value DtypeTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array arr = Napi::Array::New(env);
  uint32_t k = 0;
  for (int32_t code = 0; code < 256; ++code) {
    DType t;
    if (!dtype_from_int(code, &t)) continue;
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", dtype_name(t));
    o.Set("code", code);
    o.Set("bytes", static_cast<double>(dtype_size(t)));
    arr.Set(k++, o);
  }
  return arr;
}

// weightFormats(): the weight-format traits table (core/weight_format.cpp), as info() reports it.
Napi::Value WeightFormats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array arr = Napi::Array::New(env);
  uint32_t k = 0;
  for (const WeightFormat f : kWeightFormats) {
    const WeightFormatTraits& t = weight_format_traits(f);
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", t.name);
    o.Set("code", static_cast<int32_t>(f));
    o.Set("block", static_cast<double>(t.block));
    o.Set("blockBytes", static_cast<double>(t.block_bytes));
    o.Set("storage", dtype_name(t.storage));
    o.Set("activation", dtype_name(t.activation));
    arr.Set(k++, o);
  }
  return arr;
}

}  // namespace

void register_info(Napi::Env env, Napi::Object exports) {
  exports.Set("dtypeTable", Napi::Function::New(env, DtypeTable, "dtypeTable"));
  exports.Set("weightFormats", Napi::Function::New(env, WeightFormats, "weightFormats"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
}

}  // namespace qvl::napi
