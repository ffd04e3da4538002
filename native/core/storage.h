// Where a tensor's bytes live: owned (aligned heap, optionally huge-page backed),
// a read-only file mapping, memory borrowed from the caller for the length of a call, or a window
// into a scratch arena (core/arena.h). Every kind knows the device its bytes are on: host for all
// of today's kinds; a device backend adds its own kind tagged with its device.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "core/device.h"

namespace qvl {

class Storage {
 public:
  virtual ~Storage() = default;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  virtual const char* kind() const = 0;
  // Drops the pages wholly inside [p, p + bytes) from this process's memory where the bytes can be
  // read back from elsewhere (a mapped file); a no-op for memory that cannot (owned, borrowed).
  virtual void release(const void* /*p*/, size_t /*bytes*/) const {}
  // Where the bytes are: a kernel for another device must not be handed this pointer.
  Device device() const { return device_; }

 protected:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_ = Device::Host;
};

// The pages owned memory of 2 MiB and more asks for: transparent huge pages (madvised; what
// the kernel grants depends on /sys/kernel/mm/transparent_hugepage) or 4 KiB pages (huge pages
// refused even where THP is "always"). Which streams faster depends on the machine
// (core/placement.h measures it).
enum class Pages { Small, Huge };

// 64-byte aligned memory, zero-filled unless `zero` is false (the caller overwrites every byte).
// Buffers of 2 MiB and more are their own 2 MiB aligned mapping (zero without a write), advised to
// use the pages asked for.
class OwnedStorage final : public Storage {
 public:
  explicit OwnedStorage(size_t bytes, Pages pages = Pages::Huge, bool zero = true);
  ~OwnedStorage() override;
  const char* kind() const override { return "owned"; }
  Pages pages() const { return pages_; }

 private:
  void map_pages(size_t bytes, Pages pages);
  Pages pages_;
  size_t mapped_ = 0;  // the mapping's length for buffers of 2 MiB and more; 0: heap memory
};

// Memory someone else keeps alive (a JS typed array pinned by the calling worker).
class BorrowedStorage final : public Storage {
 public:
  BorrowedStorage(void* data, size_t bytes) { data_ = data; bytes_ = bytes; }
  const char* kind() const override { return "borrowed"; }
};

// A whole file mapped copy-on-write: the file is never modified, and a stray write through a
// JS view lands in a private page instead of faulting.
class MappedFile final : public Storage {
 public:
  explicit MappedFile(const std::string& path);
  // The first `bytes` of an open file (which stays the caller's to close), named `path` in errors.
  MappedFile(int fd, size_t bytes, const std::string& path);
  ~MappedFile() override;
  const char* kind() const override { return "mmap"; }
  const std::string& path() const { return path_; }
  // Pages dropped are re-read from the file if touched again: a weight converted at load stops
  // counting twice.
  void release(const void* p, size_t bytes) const override;

 private:
  void map(int fd);
  std::string path_;
};

std::shared_ptr<Storage> make_owned(size_t bytes, Pages pages = Pages::Huge);

}  // namespace qvl
