#include "core/storage.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace qvl {

namespace {
constexpr size_t kHugePage = size_t(2) << 20;
}

OwnedStorage::OwnedStorage(size_t bytes, Pages pages, bool zero) : pages_(pages) {
  bytes_ = bytes;
  if (bytes >= kHugePage) {
    map_pages(bytes, pages);
    return;
  }
  const size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) {
    data_ = nullptr;
    return;
  }
  void* p = std::aligned_alloc(64, rounded);
  if (!p) fail(ErrorCode::Native, "out of memory allocating " + std::to_string(bytes) + " bytes");
  // Without `zero`, only the padding past `bytes` (which no caller writes) is cleared.
  if (zero) std::memset(p, 0, rounded);
  else std::memset(static_cast<char*>(p) + bytes, 0, rounded - bytes);
  data_ = p;
}

// Large buffers are their own anonymous mapping, 2 MiB aligned: fresh pages read zero, so nothing
// is written here and a page counts in the process's memory only once the caller writes it. Huge
// pages cover only the whole 2 MiB pages inside `bytes`; the tail past the last one gets 4 KiB
// pages, else every buffer would hold up to 2 MiB it never uses (1.75 MiB of each 26.25 MiB MLP
// matrix of a 2B model: 0.2 GiB over its 28 layers).
void OwnedStorage::map_pages(size_t bytes, Pages pages) {
  QVL_CHECK(bytes <= SIZE_MAX - 2 * kHugePage, Native, "owned buffer of " + std::to_string(bytes) + " bytes is too large");
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  const size_t span = rounded + kHugePage;
  void* m = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) fail(ErrorCode::Native, "out of memory allocating " + std::to_string(bytes) + " bytes");
  const uintptr_t lo = reinterpret_cast<uintptr_t>(m);
  const uintptr_t at = (lo + kHugePage - 1) / kHugePage * kHugePage;
  if (at > lo) ::munmap(m, at - lo);
  if (lo + span > at + rounded) ::munmap(reinterpret_cast<void*>(at + rounded), lo + span - at - rounded);
  char* p = reinterpret_cast<char*>(at);
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
  const size_t whole = bytes / kHugePage * kHugePage;
  if (pages == Pages::Huge) {
    ::madvise(p, whole, MADV_HUGEPAGE);
    if (rounded > whole) ::madvise(p + whole, rounded - whole, MADV_NOHUGEPAGE);
  } else {
    ::madvise(p, rounded, MADV_NOHUGEPAGE);
  }
#endif
  data_ = p;
  mapped_ = rounded;
}

OwnedStorage::~OwnedStorage() {
  if (mapped_) ::munmap(data_, mapped_);
  else std::free(data_);
}

std::shared_ptr<Storage> make_owned(size_t bytes, Pages pages) { return std::make_shared<OwnedStorage>(bytes, pages); }

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(ErrorCode::ModelFormat, path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail(ErrorCode::ModelFormat, path + ": cannot stat (" + std::strerror(e) + ")");
  }
  bytes_ = static_cast<size_t>(st.st_size);
  try {
    map(fd);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

MappedFile::MappedFile(int fd, size_t bytes, const std::string& path) : path_(path) {
  bytes_ = bytes;
  map(fd);
}

void MappedFile::map(int fd) {
  if (bytes_ == 0) return;
  void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) fail(ErrorCode::ModelFormat, path_ + ": cannot mmap (" + std::strerror(errno) + ")");
  data_ = p;
}

void MappedFile::release(const void* p, size_t bytes) const {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = reinterpret_cast<uintptr_t>(data_), hi = lo + bytes_;
  uintptr_t b = reinterpret_cast<uintptr_t>(p), e = b + bytes;
  if (b < lo || e > hi || e <= b) return;
  b = (b + page - 1) / page * page;
  e = e / page * page;
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, bytes_);
}

}  // namespace qvl
