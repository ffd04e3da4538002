// Each napi/*.cpp registers its functions here; addon.cpp calls them all.
#pragma once
#include <napi.h>

#include "ops/sampling.h"

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

// {doSample, temperature, topK, topP, minP, repetitionPenalty} (napi/sampling.cpp); the values
// are checked where they are used (ops::check_sampling).
ops::SamplingParams sampling_params_arg(Napi::Object p);

}  // namespace qvl::napi
