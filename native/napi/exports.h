// Each napi/*.cpp registers its functions here; addon.cpp calls them all.
#pragma once
#include <napi.h>

namespace qvl::napi {

void register_info(Napi::Env env, Napi::Object exports);
void register_parity(Napi::Env env, Napi::Object exports);

}  // namespace qvl::napi
