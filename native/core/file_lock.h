// Advisory whole-file locks with flock(2), the kind Python's `filelock` takes (UnixFileLock), so a
// lock held here and one held by huggingface_hub exclude each other. A lock is an open descriptor
// of the lock file; it is released by closing it (or by the process ending). The lock file itself
// is left in place: removing it while another process waits would let two hold "the" lock.
#pragma once
#include <string>

namespace qvl {

// One non-blocking attempt: a descriptor holding LOCK_EX on `path` (created mode 0664 when absent),
// or -1 when another open file description holds it. Throws Error: Input for an unusable path
// (missing folder, no permission), Unsupported where the file system or platform has no flock.
int file_lock_try(const std::string& path);

// Releases a lock file_lock_try returned; Input for a descriptor that is not one of them.
void file_lock_release(int fd);

}  // namespace qvl
