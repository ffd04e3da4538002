// attention_bf16 on a set of bf16 block kernels (attention_bf16_tiles.cpp): the AMX variant runs
// it on the tiles, avx512bf16-tiles on VDPBF16PS, and the parity harness on its AMX emulator.
#pragma once
#include "backends/cpu/matmul_bf16_cpu.h"
#include "core/exec_context.h"
#include "ops/attention.h"

namespace qvl::cpu {

void attention_bf16_tiles(const ops::AttentionParams& p, const ExecContext& ctx, const Bf16Kernels& k);

}  // namespace qvl::cpu
