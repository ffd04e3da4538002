#include "models/weight_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>

#include "core/checksum.h"
#include "core/error.h"
#include "core/weight_quant.h"
#include "models/quant_pack.h"

namespace qvl::models {

namespace {

constexpr char kMagic[16] = {'q', 'w', 'e', 'n', 'v', 'l', '-', 'w', 'e', 'i', 'g', 'h', 't', 's', 0, 0};
// 2: q8/q4 with f16 scales and packed 4-bit zero points (version 1 held f32 scales and a byte per
// zero point: its files are refused and rewritten, never read as the new layout).
// 3: q8/q4 in panels of 16 rows (core/weight_quant.h); older files are refused and rewritten.
// 4: header flags (whether the writing load scanned for NaN) and each entry's source tensor.
constexpr uint64_t kVersion = 4;
constexpr uint64_t kFlagScanned = 1;  // the writing load scanned every entry's source: they are vouched for
constexpr uint64_t kAlign = 64;

// Bounds-checked reads from the mapped file: any overrun marks the whole file invalid.
struct Reader {
  const unsigned char* p;
  uint64_t size, at = 0;
  bool ok = true;
  bool bytes(void* out, uint64_t n) {
    if (!ok || n > size - at) return ok = false;
    std::memcpy(out, p + at, n);
    at += n;
    return true;
  }
  template <class T> T get() {
    T v{};
    bytes(&v, sizeof v);
    return v;
  }
  std::string str(uint64_t max) {
    const uint64_t n = get<uint64_t>();
    if (!ok || n > max || n > size - at) {
      ok = false;
      return "";
    }
    std::string s(reinterpret_cast<const char*>(p + at), n);
    at += n;
    return s;
  }
};

template <class T> void put(std::string& out, T v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }
void put_str(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

uint64_t align_up(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// The header up to the flags: magic, layout version, key.
std::string header_prefix(const std::string& key) {
  std::string head(kMagic, 16);
  put<uint64_t>(head, kVersion);
  put_str(head, key);
  return head;
}

// Sets kFlagScanned in the file at `path` when its header still begins with `prefix` (read and
// written through one descriptor: a file renamed over the path meanwhile is left alone). Best
// effort: the cache is an optimisation.
void mark_scanned(const std::string& path, const std::string& prefix) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  std::string seen(prefix.size(), '\0');
  uint64_t flags = 0;
  if (::pread(fd, seen.data(), seen.size(), 0) == static_cast<ssize_t>(seen.size()) && seen == prefix &&
      ::pread(fd, &flags, sizeof flags, static_cast<off_t>(prefix.size())) == static_cast<ssize_t>(sizeof flags)) {
    flags |= kFlagScanned;
    if (::pwrite(fd, &flags, sizeof flags, static_cast<off_t>(prefix.size())) == static_cast<ssize_t>(sizeof flags)) {
      (void)::fsync(fd);
    }
  }
  ::close(fd);
}

// The byte sizes of a converted weight's data, scales and zero points.
bool expected_sizes(WeightFormat f, int64_t out, int64_t in, int64_t group, uint64_t len[3]) {
  WeightFormat known;
  if (!weight_format_from_int(static_cast<int32_t>(f), &known)) return false;
  QuantRowBytes tb;
  if (out <= 0 || in <= 0 || out > (int64_t{1} << 40) / in || !quant_weight_bytes(f, out, in, group, &tb)) return false;
  len[0] = static_cast<uint64_t>(tb.codes);
  len[1] = static_cast<uint64_t>(tb.scales);
  len[2] = static_cast<uint64_t>(tb.zeros);
  return true;
}

}  // namespace

WeightCache::WeightCache(std::string path, std::string key, Scan scan)
    : path_(std::move(path)), key_(std::move(key)), scan_(std::move(scan)) {
  struct stat st;
  if (::stat(path_.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    try {
      open();
    } catch (const std::exception&) {
      valid_ = false;  // unreadable: rebuilt
    }
  }
}

void WeightCache::open() {
  file_ = std::make_shared<MappedFile>(path_);
  Reader r{static_cast<const unsigned char*>(file_->data()), file_->bytes()};
  char magic[16];
  r.bytes(magic, 16);
  if (!r.ok || std::memcmp(magic, kMagic, 16) != 0 || r.get<uint64_t>() != kVersion || r.str(1 << 16) != key_) return;
  const uint64_t flags = r.get<uint64_t>();
  scanned_ = (flags & kFlagScanned) != 0;
  const uint64_t count = r.get<uint64_t>();
  if (!r.ok || count > (uint64_t{1} << 20)) return;
  for (uint64_t i = 0; i < count && r.ok; ++i) {
    Entry e;
    e.name = r.str(4096);
    e.source = r.str(4096);
    e.format = r.get<int32_t>();
    e.out = r.get<int64_t>(), e.in = r.get<int64_t>(), e.group = r.get<int64_t>();
    for (int k = 0; k < 3; ++k) e.off[k] = r.get<uint64_t>(), e.len[k] = r.get<uint64_t>(), e.sum[k] = r.get<uint64_t>();
    uint64_t want[3];
    if (!r.ok || !expected_sizes(static_cast<WeightFormat>(e.format), e.out, e.in, e.group, want)) return;
    for (int k = 0; k < 3; ++k) {
      if (e.len[k] != want[k] || e.off[k] % kAlign != 0 || e.off[k] > r.size || e.len[k] > r.size - e.off[k]) return;
    }
    entries_.push_back(std::move(e));
  }
  valid_ = r.ok;
  if (valid_ && scan_ && scanned_) {
    for (const Entry& e : entries_)
      if (!e.source.empty()) vouched_.insert(e.source);
    unsettled_ = vouched_;
  }
}

void WeightCache::scan_skipped(const std::string& source) {
  if (unsettled_.erase(source) != 0) scan_(source);
}

void WeightCache::settle() {
  while (!unsettled_.empty()) scan_skipped(*unsettled_.begin());
}

bool WeightCache::take(const std::string& name, const std::string& source, WeightFormat f, int64_t out, int64_t in,
                       int64_t group, Pages pages, ConvertedWeight* c) {
  const auto miss = [&] {
    valid_ = false;
    scan_skipped(source);  // the caller converts it from the checkpoint: it must be scanned now
    return false;
  };
  if (!valid_ || taken_ >= entries_.size()) return miss();
  const Entry& e = entries_[taken_];
  if (e.name != name || e.source != source || e.format != static_cast<int32_t>(f) || e.out != out || e.in != in ||
      e.group != group)
    return miss();
  ConvertedWeight w = empty_group_quantized(f, out, in, group, pages);
  const unsigned char* base = static_cast<const unsigned char*>(file_->data());
  for (size_t k = 0; k < w.storage.size(); ++k) {
    if (copy_checksum64(w.storage[k].raw(), base + e.off[k], e.len[k]) != e.sum[k]) return miss();
    file_->release(base + e.off[k], e.len[k]);
  }
  ++taken_;
  unsettled_.erase(source);  // read from the file, scanned by the load that wrote it
  *c = std::move(w);
  return true;
}

void WeightCache::record(const std::string& name, const std::string& source, const ConvertedWeight& c) {
  recorded_.push_back({name, source, c});
}

bool WeightCache::finish() {
  file_.reset();
  if (hit()) {
    // A scanning load that read a file written without the scan vouched for nothing, so it scanned
    // every source itself: the file vouches for them from now on (the next scanning hit skips them).
    if (scan_ && !scanned_) mark_scanned(path_, header_prefix(key_));
    return true;
  }
  if (recorded_.empty()) return false;
  // Header with every entry's table row; blobs follow, each 64-byte aligned.
  std::string head = header_prefix(key_);
  // Every source was scanned when this load scans: before it was converted, or by the load that
  // wrote the file it was taken from (or it was not skipped: settle()).
  put<uint64_t>(head, scan_ ? kFlagScanned : 0);
  put<uint64_t>(head, recorded_.size());
  uint64_t table = head.size();
  for (const Recorded& w : recorded_) table += 8 + w.name.size() + 8 + w.source.size() + 4 + 3 * 8 + 9 * 8;
  uint64_t at = align_up(table);
  std::vector<std::pair<const void*, uint64_t>> blobs;
  for (const Recorded& w : recorded_) {
    const ConvertedWeight& c = w.weight;
    put_str(head, w.name);
    put_str(head, w.source);
    put<int32_t>(head, static_cast<int32_t>(c.ref.format));
    put<int64_t>(head, c.ref.out), put<int64_t>(head, c.ref.in), put<int64_t>(head, c.ref.group);
    for (size_t k = 0; k < 3; ++k) {
      const void* p = k < c.storage.size() ? c.storage[k].raw() : nullptr;
      const uint64_t n = k < c.storage.size() ? c.storage[k].nbytes() : 0;
      put<uint64_t>(head, n ? at : 0), put<uint64_t>(head, n), put<uint64_t>(head, checksum64(p ? p : "", n));
      if (n == 0) continue;  // no blob (q8 has no zero points)
      blobs.emplace_back(p, n);
      at = align_up(at + n);
    }
  }
  std::random_device rd;
  const std::string tmp = path_ + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return false;
  bool ok = std::fwrite(head.data(), 1, head.size(), f) == head.size();
  uint64_t pos = head.size();
  static const char zeros[kAlign] = {};
  for (const auto& [p, n] : blobs) {
    const uint64_t pad = align_up(pos) - pos;
    ok = ok && std::fwrite(zeros, 1, pad, f) == pad;
    ok = ok && (n == 0 || std::fwrite(p, 1, n, f) == n);
    pos = align_up(pos) + n;
  }
  ok = std::fflush(f) == 0 && ok;
  ok = ::fsync(::fileno(f)) == 0 && ok;
  ok = std::fclose(f) == 0 && ok;
  if (ok) ok = std::rename(tmp.c_str(), path_.c_str()) == 0;
  if (!ok) std::remove(tmp.c_str());
  return ok;
}

}  // namespace qvl::models
