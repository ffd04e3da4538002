#include "core/file_lock.h"

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>

#include "core/error.h"

#if defined(_WIN32)

namespace qvl {

int file_lock_try(const std::string& path) {
  fail(ErrorCode::Unsupported, path + ": flock locks are not available on Windows");
}

void file_lock_release(int fd) { fail(ErrorCode::Input, "file_lock_release: no lock " + std::to_string(fd) + " is held"); }

}  // namespace qvl

#else

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace qvl {

namespace {

// The descriptors this process holds as locks: release closes only those, never another fd.
std::mutex held_mutex;
std::set<int> held;

}  // namespace

int file_lock_try(const std::string& path) {
  QVL_CHECK(!path.empty() && path.find('\0') == std::string::npos, Input, "file lock: the path is empty or contains a NUL");
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0664);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int e = errno;
    fail(ErrorCode::Input, path + ": cannot open the lock file (" + std::strerror(e) + ")");
  }
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) return -1;
    if (e == ENOLCK || e == ENOSYS || e == EOPNOTSUPP) {
      fail(ErrorCode::Unsupported, path + ": the file system does not support flock (" + std::strerror(e) + ")");
    }
    fail(ErrorCode::Native, path + ": flock failed (" + std::strerror(e) + ")");
  }
  std::lock_guard<std::mutex> g(held_mutex);
  held.insert(fd);
  return fd;
}

void file_lock_release(int fd) {
  {
    std::lock_guard<std::mutex> g(held_mutex);
    QVL_CHECK(held.erase(fd) == 1, Input, "file lock: descriptor " + std::to_string(fd) + " is not a lock this process holds");
  }
  // Closing the last descriptor of the open file description drops the flock; LOCK_UN first makes
  // the release immediate even if a forked child inherited it (O_CLOEXEC keeps exec'd ones out).
  ::flock(fd, LOCK_UN);
  ::close(fd);
}

}  // namespace qvl

#endif
