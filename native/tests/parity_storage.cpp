// Checks of owned storage (no kernel arithmetic): a buffer of 2 MiB and more holds, once every
// byte is written, no more resident pages than its bytes need. Weights are such buffers, and a
// tail rounded up to a whole huge page (or padding written up to the next 2 MiB) held up to 2 MiB
// more per weight: 0.2 GiB over a 2B model's 28 layers. Each case is a "check" Result, run with
// the kernel suites by test/native/parity.test.ts.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/storage.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

constexpr size_t kHuge = size_t(2) << 20;

void require(bool ok, const std::string& what) {
  if (!ok) fail(ErrorCode::Native, what);
}

// Resident pages of [p, p + bytes) by mincore (anonymous pages count once written).
size_t resident_pages(const void* p, size_t bytes) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((bytes + page - 1) / page);
  require(::mincore(const_cast<void*>(p), bytes, vec.data()) == 0, "mincore failed on the buffer");
  size_t n = 0;
  for (unsigned char v : vec) n += v & 1;
  return n;
}

void owned_case(size_t bytes, Pages pages, bool zero) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  OwnedStorage s(bytes, pages, zero);
  unsigned char* p = static_cast<unsigned char*>(s.data());
  require(reinterpret_cast<uintptr_t>(p) % kHuge == 0, "not 2 MiB aligned");
  if (zero) {
    for (size_t i = 0; i < bytes; i += 4093) require(p[i] == 0, "byte " + std::to_string(i) + " is not zero");
    require(p[bytes - 1] == 0, "the last byte is not zero");
  }
  std::memset(p, 0x5a, bytes);
  // The span a 2 MiB rounding would cover: every page past the buffer's last is waste.
  const size_t span = (bytes + kHuge - 1) / kHuge * kHuge;
  const size_t held = resident_pages(p, span), need = (bytes + page - 1) / page;
  require(held <= need, std::to_string(held) + " pages resident for " + std::to_string(need) + " pages of bytes (" +
                            std::to_string((held - need) * page) + " bytes past the buffer)");
  require(p[0] == 0x5a && p[bytes - 1] == 0x5a, "the written bytes did not read back");
}

}  // namespace

std::vector<Result> parity_storage(uint64_t /*seed*/) {
  std::vector<Result> out;
  const size_t sizes[] = {kHuge, kHuge + 1, kHuge + 4096 + 100, 3 * kHuge - 64, 13 * kHuge + kHuge / 8};
  for (const Pages pages : {Pages::Huge, Pages::Small}) {
    for (const bool zero : {true, false}) {
      for (const size_t bytes : sizes) {
        const std::string what = std::string(pages == Pages::Huge ? "huge" : "small") + " pages, " + (zero ? "zeroed" : "unzeroed") +
                                 ", " + std::to_string(bytes) + " bytes: 2 MiB aligned, resident pages within its bytes";
        out.push_back(expect_accepted("storage", what, [&] { owned_case(bytes, pages, zero); }));
      }
    }
  }
  out.push_back(expect_accepted("storage", "small buffers: 64-byte aligned, zeroed", [] {
    for (const size_t bytes : {size_t(1), size_t(63), size_t(100), size_t(kHuge - 1)}) {
      OwnedStorage s(bytes);
      const unsigned char* p = static_cast<const unsigned char*>(s.data());
      require(reinterpret_cast<uintptr_t>(p) % 64 == 0, std::to_string(bytes) + " bytes: not 64-byte aligned");
      for (size_t i = 0; i < bytes; ++i) require(p[i] == 0, std::to_string(bytes) + " bytes: byte " + std::to_string(i) + " is not zero");
    }
  }));
  out.push_back(expect_rejected("storage", "a buffer of SIZE_MAX - 1 bytes: E_NATIVE", [] { OwnedStorage s(SIZE_MAX - 1); },
                                ErrorCode::Native));
  return out;
}

}  // namespace qvl::parity
