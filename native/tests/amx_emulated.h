// The AMX variants of matmul_bf16 and attention_bf16 on the AMX emulator (tests/amx_emulator.h),
// as variants the parity suites run beside the registered ones. Never registered with the op
// families: attention() and matmul() cannot choose them.
#pragma once
#include "ops/attention.h"
#include "ops/matmul.h"
#include "ops/registry.h"

namespace qvl::parity {

// Whether this CPU runs them (the driver and attention code around the tiles need AVX512-BF16).
bool amx_emulation_runs();
// Named "amx-emulated"; a fault the emulator records during a call throws E_NATIVE.
ops::Variant<ops::MatmulFn> matmul_bf16_amx_emulated();
ops::Variant<ops::AttentionFn> attention_bf16_amx_emulated();
// The emulated STTILECFG's view: true when the calling thread holds no tile configuration.
bool amx_emulated_tiles_released();

}  // namespace qvl::parity
