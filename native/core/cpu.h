// What this CPU (and OS) can run, read once via CPUID/XGETBV.
#pragma once
#include <string>

namespace qvl {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512bf16 = false, avx512vnni = false;
  bool avx_vnni = false;  // VEX-encoded vpdpbusd on ymm (Alder Lake, Sapphire Rapids, Zen 5)
  bool amx_tile = false, amx_bf16 = false, amx_int8 = false;
  bool os_avx512 = false;  // XCR0 enables zmm state
  // Linux grants tile data state only on request (arch_prctl ARCH_REQ_XCOMP_PERM, asked once at
  // detection); without the grant the first tile instruction kills the process with SIGILL.
  bool amx_permitted = false;
  // The vendor string is AuthenticAMD: a few streaming kernels prefetch at AMD's distances.
  bool amd = false;
};

const CpuFeatures& cpu_features();
std::string cpu_brand();

// Instruction-set levels kernels are written for, best last. A kernel variant names the
// level it needs; the dispatcher takes the best variant whose level the CPU has.
// AvxVnni: AVX2 + the VEX int8 dot (ymm); Avx512Vnni: AVX-512 + the EVEX int8 dot (zmm).
enum class Isa { Reference = 0, Generic, Avx2, AvxVnni, Avx512, Avx512Vnni, Avx512Bf16, Amx, Cuda };
const char* isa_name(Isa isa);
bool isa_available(Isa isa);

}  // namespace qvl

// Per-function target attributes keep ISA flags out of the build (no per-file flags, the same
// source list for cmake-js and node-gyp, and no AVX-512 copies of inline STL code).
#define QVL_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define QVL_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define QVL_TARGET_AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define QVL_TARGET_AVX512VNNI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define QVL_TARGET_AVX512BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")))
#define QVL_TARGET_AMX \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c,amx-tile,amx-bf16")))
