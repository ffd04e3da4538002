// A software model of the AMX tile unit (palette 1: eight tiles of at most 16 rows x 64 bytes),
// for running the AMX kernels' own source on CPUs without tiles: tests/amx_emulated.cpp compiles
// backends/cpu/matmul_bf16_amx.cpp again with the tile intrinsics pointed here. It follows the
// Intel SDM's pseudocode for LDTILECFG, STTILECFG, TILERELEASE, TILELOADD, TILESTORED, TILEZERO
// and TDPBF16PS, including their fault conditions (an instruction the hardware would refuse with
// #GP or #UD is recorded as a fault and does nothing), so a parity run on the emulator checks the
// kernels' tile numbers, shapes, strides and pointers, and that every thread configures its tiles
// before use. It cannot check the hardware's own arithmetic or speed.
#pragma once
#include <cstdint>
#include <string>

namespace qvl::parity::amx_emu {

// The calling thread's tile configuration and registers: a 64-byte LDTILECFG block.
void loadconfig(const void* config);
void storeconfig(void* config);
void release();
void loadd(int tile, const void* base, int64_t stride);
void stored(int tile, void* base, int64_t stride);
void zero(int tile);
// dst += src1 · src2 over bf16 pairs, in f32 (inputs' subnormals read as zero, results' flushed).
void dpbf16ps(int dst, int src1, int src2);

// The first fault any thread recorded since the last call (empty: none); clears it.
std::string take_fault();

}  // namespace qvl::parity::amx_emu
