#include "core/placement.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <cpuid.h>
#include <immintrin.h>
#include <fstream>
#include <memory>
#include <mutex>
#include <string_view>

#include "core/error.h"
#include "core/read_stream.h"

namespace qvl {

namespace {

constexpr size_t kMiB = size_t(1) << 20;
constexpr int kRounds = 5;
constexpr size_t kLine = 64;

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The bracketed mode of /sys/kernel/mm/transparent_hugepage/enabled ("always [madvise] never").
std::string thp_mode() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!std::getline(f, line)) return "unknown";
  const size_t a = line.find('['), b = line.find(']');
  if (a == std::string::npos || b == std::string::npos || b < a) return "unknown";
  return line.substr(a + 1, b - a - 1);
}

// An unlinked file of `bytes` (a hole: its pages enter the page cache as they are first read,
// as a checkpoint's do, without a byte written to disk) in the first folder that takes one, or
// an in-memory file when none does. Returns the open descriptor and says where in `where`.
int probe_file(size_t bytes, std::string* where) {
  std::vector<std::string> dirs;
  if (const char* t = std::getenv("TMPDIR"); t && *t) dirs.emplace_back(t);
  dirs.emplace_back("/tmp");
  dirs.emplace_back("/var/tmp");
  for (const std::string& dir : dirs) {
    int fd = -1;
#ifdef O_TMPFILE
    fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#endif
    if (fd < 0) {
      std::string name = dir + "/qwenvl-placement-XXXXXX";
      fd = ::mkstemp(name.data());
      if (fd >= 0) ::unlink(name.c_str());
    }
    if (fd < 0) continue;
    if (::ftruncate(fd, static_cast<off_t>(bytes)) == 0) {
      *where = dir;
      return fd;
    }
    ::close(fd);
  }
  const int fd = ::memfd_create("qwenvl-placement", MFD_CLOEXEC);
  if (fd >= 0 && ::ftruncate(fd, static_cast<off_t>(bytes)) == 0) {
    *where = "memfd";
    return fd;
  }
  if (fd >= 0) ::close(fd);
  return -1;
}

// Thread t of n takes the t-th of n contiguous, line-aligned shares of [0, bytes).
void share(size_t bytes, int t, int n, size_t* b, size_t* e) {
  const size_t lines = bytes / kLine;
  *b = lines * static_cast<size_t>(t) / static_cast<size_t>(n) * kLine;
  *e = lines * static_cast<size_t>(t + 1) / static_cast<size_t>(n) * kLine;
}

// CLFLUSHOPT (CPUID leaf 7, EBX bit 23). Plain CLFLUSH is ordered line by line and, under a
// hypervisor here, took 50-80 ms per 32 MiB: too slow to flush before every round.
bool has_clflushopt() {
  unsigned a, b, c, d;
  return __get_cpuid_max(0, nullptr) >= 7 && __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((b >> 23) & 1);
}

__attribute__((target("clflushopt"))) void flush_lines(const unsigned char* p, size_t b, size_t e) {
  for (size_t i = b; i < e; i += kLine) _mm_clflushopt(const_cast<unsigned char*>(p + i));
  _mm_sfence();
}

// Evicts the buffer from every cache level, so the next read comes from DRAM as decode's do
// (weights are far larger than the caches). Without CLFLUSHOPT the rounds read what the caches
// kept: the buffer, at 16 MiB a thread, is past most caches' share per thread anyway.
void flush(const unsigned char* p, size_t bytes, ThreadPool& pool) {
  static const bool can = has_clflushopt();
  if (!can) return;
  pool.run_on_all([&](int t, int n) {
    size_t b, e;
    share(bytes, t, n, &b, &e);
    flush_lines(p, b, e);
  });
}

// GB/s of one read of the buffer, every pool thread streaming its share.
double read_gbps(const unsigned char* p, size_t bytes, ThreadPool& pool, std::atomic<uint64_t>& sink) {
  const auto t0 = Clock::now();
  pool.run_on_all([&](int t, int n) {
    size_t b, e;
    share(bytes, t, n, &b, &e);
    sink += read_stream(p + b, e - b);
  });
  return static_cast<double>(bytes) / since(t0) / 1e9;
}

// Owned memory of `pages`, every page written (faulted in) by the pool's threads, each its share:
// the page faults are most of what making the buffer costs.
std::shared_ptr<Storage> touched(size_t bytes, Pages pages, ThreadPool& pool) {
  auto s = std::make_shared<OwnedStorage>(bytes, pages, /*zero=*/false);
  unsigned char* p = static_cast<unsigned char*>(s->data());
  pool.run_on_all([&](int t, int n) {
    size_t b, e;
    share(bytes, t, n, &b, &e);
    std::memset(p + b, 0, e - b);
  });
  return s;
}

// Reads each buffer given (r->bytes each; null: not measured) once to fault it in, then kRounds
// rounds that flush and time each in turn; sets runs, best figures and the fastest.
void measure_rounds(const unsigned char* const at[3], PlacementProbe* r, ThreadPool& pool) {
  std::atomic<uint64_t> sink{0};
  for (int k = 0; k < 3; ++k) {
    if (at[k]) read_gbps(at[k], r->bytes, pool, sink);
  }
  for (int round = 0; round < kRounds; ++round) {
    for (int k = 0; k < 3; ++k) {
      if (!at[k]) continue;
      flush(at[k], r->bytes, pool);
      r->runs[k].push_back(read_gbps(at[k], r->bytes, pool, sink));
    }
  }
  for (int k = 0; k < 3; ++k) {
    if (!r->runs[k].empty()) r->gbps[k] = *std::max_element(r->runs[k].begin(), r->runs[k].end());
  }
  int best = 1;
  for (int k = 0; k < 3; ++k) {
    if (r->gbps[k] > r->gbps[best]) best = k;
  }
  r->fastest = static_cast<Placement>(best);
  if (sink.load() == 1) r->seconds += 1e-12;  // the branch keeps the sums alive
}

// 16 MiB a thread (streams long enough to reach full speed), 32 to 256 MiB in all: well past
// what the TLBs cover with 4 KiB pages, small enough to make and fault in quickly.
size_t probe_bytes(int threads) { return std::clamp(static_cast<size_t>(threads) * 16 * kMiB, 32 * kMiB, 256 * kMiB); }

// The three placements measured in alternating rounds; the mapped one is `mapped` (r.bytes of a
// checkpoint's mapping) or, when null, a file made for the probe.
PlacementProbe measure(const unsigned char* mapped, const std::string& from) {
  const auto t0 = Clock::now();
  PlacementProbe r;
  std::shared_ptr<ThreadPool> pool = default_pool();
  r.threads = pool->size();
  r.bytes = probe_bytes(r.threads);
  r.thp = thp_mode();
  r.huge_possible = r.thp == "always" || r.thp == "madvise";

  std::shared_ptr<Storage> buf[3];
  r.mapped_from = from;
  if (!mapped) {
    const int fd = probe_file(r.bytes, &r.mapped_from);
    if (fd >= 0) {
      try {
        buf[0] = std::make_shared<MappedFile>(fd, r.bytes, "placement probe file");
      } catch (const std::exception&) {
        buf[0] = nullptr;  // no mapping: the probe measures owned memory only
      }
      ::close(fd);
    }
    if (!buf[0]) r.mapped_from = "";
  }
  buf[1] = touched(r.bytes, Pages::Small, *pool);
  if (r.huge_possible) buf[2] = touched(r.bytes, Pages::Huge, *pool);

  const unsigned char* at[3] = {mapped, nullptr, nullptr};
  for (int k = 0; k < 3; ++k) {
    if (buf[k]) at[k] = static_cast<const unsigned char*>(buf[k]->data());
  }
  measure_rounds(at, &r, *pool);
  for (auto& b : buf) b.reset();
  r.seconds = since(t0);
  return r;
}

}  // namespace

const char* placement_name(Placement p) {
  switch (p) {
    case Placement::Mmap: return "mmap";
    case Placement::Owned: return "owned";
    case Placement::Huge: return "huge";
  }
  return "?";
}

bool placement_from_name(const std::string& name, Placement* out) {
  for (const Placement p : kPlacements) {
    if (name == placement_name(p)) {
      *out = p;
      return true;
    }
  }
  return false;
}

const PlacementProbe& placement_probe() {
  static std::once_flag once;
  static PlacementProbe probe;
  std::call_once(once, [] { probe = measure(nullptr, ""); });
  return probe;
}

PlacementProbe checkpoint_probe(const void* p, size_t bytes, const std::string& from) {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t e = reinterpret_cast<uintptr_t>(p) + bytes;
  if (e < b || e - b < probe_bytes(default_pool()->size())) return placement_probe();
  return measure(reinterpret_cast<const unsigned char*>(b), from);
}

PlacementChoice choose_placement(std::optional<Placement> requested, const PlacementProbe& probe) {
  const double owned = probe.gbps[static_cast<int>(Placement::Owned)];
  const double huge = probe.gbps[static_cast<int>(Placement::Huge)];
  const double mapped = probe.gbps[static_cast<int>(Placement::Mmap)];
  const Pages preferred = probe.huge_possible && huge * kHugeLoss >= owned ? Pages::Huge : Pages::Small;
  PlacementChoice c;
  c.pages = preferred;
  if (!requested) {
    // The mapping's pages are 4 KiB ones (or, for a file the page cache holds in large folios,
    // partly 2 MiB): with huge pages preferred they meet the same page-table scans as owned 4 KiB
    // pages, so the weights leave the mapping unless it reads clearly faster (kHugeLoss).
    c.copy_stored = preferred == Pages::Huge ? huge * kHugeLoss >= mapped : owned > kCopyGain * mapped;
    return c;
  }
  switch (*requested) {
    case Placement::Mmap: c.copy_stored = false; break;
    case Placement::Owned: c.copy_stored = true, c.pages = Pages::Small; break;
    case Placement::Huge: c.copy_stored = true, c.pages = probe.huge_possible ? Pages::Huge : Pages::Small; break;
  }
  return c;
}

std::optional<Placement> placement_of(const Storage& s) {
  // kind() rather than dynamic_cast: node-gyp builds without RTTI. Both classes are final.
  const std::string_view kind = s.kind();
  if (kind == "mmap") return Placement::Mmap;
  if (kind == "owned") return static_cast<const OwnedStorage&>(s).pages() == Pages::Huge ? Placement::Huge : Placement::Owned;
  return std::nullopt;
}

Tensor owned_copy(const Tensor& t, Pages pages, ThreadPool& pool) {
  QVL_CHECK(t.is_contiguous(), Native, "owned_copy: the tensor is not contiguous");
  const size_t bytes = t.nbytes();
  auto storage = std::make_shared<OwnedStorage>(bytes, pages, /*zero=*/false);
  unsigned char* dst = static_cast<unsigned char*>(storage->data());
  const unsigned char* src = static_cast<const unsigned char*>(t.raw());
  pool.run_on_all([&](int i, int n) {
    size_t b, e;
    share(bytes, i, n, &b, &e);
    if (i == n - 1) e = bytes;  // the tail under one cache line
    std::memcpy(dst + b, src + b, e - b);
  });
  return Tensor(t.dtype(), t.shape(), storage, 0);
}

}  // namespace qvl
