#include "core/cpu.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace qvl {

namespace {

// Asks Linux for the AMX tile data state (process-wide, so threads started later inherit it).
bool request_amx_permission() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr long kArchReqXcompPerm = 0x1023;  // ARCH_REQ_XCOMP_PERM
  constexpr long kXfeatureXtiledata = 18;     // XFEATURE_XTILEDATA
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const unsigned max_leaf = a;
  f.amd = b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u;  // "Auth" "enti" "cAMD"
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  const bool avx = (c >> 28) & 1;
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_ymm = (xcr0 & 0x6) == 0x6;
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;
  const bool os_amx = (xcr0 & (3ull << 17)) == (3ull << 17);
  f.fma = os_ymm && ((c >> 12) & 1);
  f.f16c = os_ymm && ((c >> 29) & 1);
  if (max_leaf < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = os_ymm && avx && ((b >> 5) & 1);
  f.os_avx512 = os_zmm;
  f.avx512f = os_zmm && ((b >> 16) & 1);
  f.avx512dq = os_zmm && ((b >> 17) & 1);
  f.avx512bw = os_zmm && ((b >> 30) & 1);
  f.avx512vl = os_zmm && ((b >> 31) & 1);
  f.avx512vnni = os_zmm && ((c >> 11) & 1);
  f.amx_bf16 = os_amx && ((d >> 22) & 1);
  f.amx_tile = os_amx && ((d >> 24) & 1);
  f.amx_int8 = os_amx && ((d >> 25) & 1);
  unsigned a1, b1, c1, d1;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  f.avx512bf16 = os_zmm && ((a1 >> 5) & 1);
  f.avx_vnni = os_ymm && ((a1 >> 4) & 1);
  f.amx_permitted = f.amx_tile && request_amx_permission();
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

std::string cpu_brand() {
  unsigned regs[12];
  if (__get_cpuid_max(0x80000000, nullptr) < 0x80000004) return "unknown";
  for (unsigned i = 0; i < 3; ++i) __get_cpuid(0x80000002 + i, &regs[i * 4], &regs[i * 4 + 1], &regs[i * 4 + 2], &regs[i * 4 + 3]);
  char buf[49];
  std::memcpy(buf, regs, 48);
  buf[48] = 0;
  std::string s(buf);
  const auto b = s.find_first_not_of(' ');
  if (b == std::string::npos) return "unknown";
  const auto e = s.find_last_not_of(' ');
  return s.substr(b, e - b + 1);
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Reference: return "reference";
    case Isa::Generic: return "generic";
    case Isa::Avx2: return "avx2";
    case Isa::AvxVnni: return "avxvnni";
    case Isa::Avx512: return "avx512";
    case Isa::Avx512Vnni: return "avx512vnni";
    case Isa::Avx512Bf16: return "avx512bf16";
    case Isa::Amx: return "amx";
    case Isa::Cuda: return "cuda";
  }
  return "?";
}

bool isa_available(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::Reference:
    case Isa::Generic: return true;
    case Isa::Avx2: return f.avx2 && f.fma && f.f16c;
    case Isa::AvxVnni: return isa_available(Isa::Avx2) && f.avx_vnni;
    case Isa::Avx512: return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma && f.f16c;
    case Isa::Avx512Vnni: return isa_available(Isa::Avx512) && f.avx512vnni;
    case Isa::Avx512Bf16: return isa_available(Isa::Avx512) && f.avx512bf16;
    // The AMX kernels convert to bf16 with AVX512-BF16 (every AMX CPU has it) and need the OS grant.
    case Isa::Amx: return f.amx_tile && f.amx_bf16 && f.amx_permitted && isa_available(Isa::Avx512Bf16);
    case Isa::Cuda: return false;  // CUDA variants are run through their own backend
  }
  return false;
}

}  // namespace qvl
