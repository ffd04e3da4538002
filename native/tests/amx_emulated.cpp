// The AMX kernels' own source on the AMX emulator (tests/amx_emulator.h): matmul_bf16_amx.cpp is
// compiled here a second time with its tile intrinsics, its AMX target attribute and its three
// exported names redirected, so CPUs without tiles (AMD Zen) run every line of the AMX variants
// but the hardware's tile instructions themselves, through the same driver and attention code.
#include "tests/amx_emulated.h"

#include <immintrin.h>

#include "backends/cpu/attention_bf16_tiles.h"
#include "backends/cpu/matmul_bf16_cpu.h"
#include "core/cpu.h"
#include "core/error.h"
#include "ops/attention.h"
#include "tests/amx_emulator.h"

namespace qvl::cpu {
const Bf16Kernels& amx_emulated_bf16_kernels();
bool amx_emulated_tiles_released();
void matmul_bf16_amx_emulated(const ops::MatmulParams& p, const ExecContext& ctx);
}  // namespace qvl::cpu

// <immintrin.h> defines these as inline asm naming the tile number; from here on they call the
// emulator (the source's own #include <immintrin.h> below is already done).
#undef _tile_loadd
#undef _tile_stored
#undef _tile_zero
#undef _tile_dpbf16ps
#define _tile_loadd(t, base, stride) ::qvl::parity::amx_emu::loadd(t, base, stride)
#define _tile_stored(t, base, stride) ::qvl::parity::amx_emu::stored(t, base, stride)
#define _tile_zero(t) ::qvl::parity::amx_emu::zero(t)
#define _tile_dpbf16ps(dst, src1, src2) ::qvl::parity::amx_emu::dpbf16ps(dst, src1, src2)
#define _tile_loadconfig ::qvl::parity::amx_emu::loadconfig
#define _tile_storeconfig ::qvl::parity::amx_emu::storeconfig
#define _tile_release ::qvl::parity::amx_emu::release
#undef QVL_TARGET_AMX
#define QVL_TARGET_AMX
#define amx_bf16_kernels amx_emulated_bf16_kernels
#define amx_tiles_released amx_emulated_tiles_released
#define matmul_bf16_amx matmul_bf16_amx_emulated
#include "backends/cpu/matmul_bf16_amx.cpp"  // NOLINT(bugprone-suspicious-include): the point of this file
#undef amx_bf16_kernels
#undef amx_tiles_released
#undef matmul_bf16_amx

namespace qvl::parity {

namespace {

// A fault the emulator recorded during the run (a tile instruction the hardware would refuse)
// fails the case.
template <class Run>
void checked(Run&& run) {
  amx_emu::take_fault();
  run();
  const std::string f = amx_emu::take_fault();
  if (!f.empty()) fail(ErrorCode::Native, "AMX emulator: " + f);
}

void matmul_fn(const ops::MatmulParams& p, const ExecContext& ctx) {
  checked([&] { cpu::matmul_bf16_amx_emulated(p, ctx); });
}

void attention_fn(const ops::AttentionParams& p, const ExecContext& ctx) {
  checked([&] { cpu::attention_bf16_tiles(p, ctx, cpu::amx_emulated_bf16_kernels()); });
}

// The formats the registered AMX variant reads.
uint32_t amx_formats() {
  for (const auto& v : ops::matmul_bf16_family().variants())
    if (v.isa == Isa::Amx) return v.formats;
  fail(ErrorCode::Native, "matmul_bf16 has no amx variant to emulate");
}

}  // namespace

bool amx_emulation_runs() { return isa_available(Isa::Avx512Bf16); }

ops::Variant<ops::MatmulFn> matmul_bf16_amx_emulated() {
  return {"amx-emulated", Device::Host, Isa::Avx512Bf16, &matmul_fn, amx_formats()};
}

ops::Variant<ops::AttentionFn> attention_bf16_amx_emulated() {
  return {"amx-emulated", Device::Host, Isa::Avx512Bf16, &attention_fn};
}

bool amx_emulated_tiles_released() { return cpu::amx_emulated_tiles_released(); }

}  // namespace qvl::parity
