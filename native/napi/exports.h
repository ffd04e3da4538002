// Each napi/*.cpp registers its functions here; addon.cpp calls them all.
#pragma once
#include <napi.h>

#include <memory>

#include "ops/sampling.h"
#include "ops/token_mask.h"

namespace qvl::napi {

void register_info(Napi::Env env, Napi::Object exports);
void register_parity(Napi::Env env, Napi::Object exports);
void register_bench(Napi::Env env, Napi::Object exports);
void register_safetensors(Napi::Env env, Napi::Object exports);
void register_tensor_ops(Napi::Env env, Napi::Object exports);
void register_image(Napi::Env env, Napi::Object exports);
void register_model(Napi::Env env, Napi::Object exports);
void register_sampling(Napi::Env env, Napi::Object exports);
void register_file_lock(Napi::Env env, Napi::Object exports);
void register_grammar(Napi::Env env, Napi::Object exports);

// {doSample, temperature, topK, topP, minP, repetitionPenalty} (napi/sampling.cpp); the values
// are checked where they are used (ops::check_sampling).
ops::SamplingParams sampling_params_arg(Napi::Object p);

// Handles of any napi file, of napi/model.cpp's one kind (so disposeHandle frees them all): `kind`
// is a string literal naming what the handle holds; unwrap checks it (E_INPUT) and the handle is
// live (E_DISPOSED).
Napi::Value wrap_handle(Napi::Env env, std::shared_ptr<void> p, const char* kind);
std::shared_ptr<void> unwrap_handle(Napi::Env env, Napi::Value v, const char* kind, const char* what);
// A grammarMasks() handle (napi/grammar.cpp), for sessionSampling's constraints.
std::shared_ptr<ops::MaskCache> mask_cache_arg(Napi::Env env, Napi::Value v, const char* what);

}  // namespace qvl::napi
