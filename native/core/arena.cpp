#include "core/arena.h"

#include <sys/mman.h>

#include <cstdlib>
#include <limits>
#include <string>

#include "core/error.h"

namespace qvl {

namespace {

constexpr size_t kHugePage = size_t(2) << 20;

// Arena memory as seen by a Tensor: a window into a chunk that the arena keeps alive.
class ArenaStorage final : public Storage {
 public:
  ArenaStorage(void* data, size_t bytes) {
    data_ = data;
    bytes_ = bytes;
  }
  const char* kind() const override { return "arena"; }
};

// n rounded up to a multiple of a (a power of two); false when that overflows.
bool round_up(size_t n, size_t a, size_t* out) {
  if (n > std::numeric_limits<size_t>::max() - (a - 1)) return false;
  *out = (n + a - 1) & ~(a - 1);
  return true;
}

}  // namespace

Arena::Arena(size_t min_chunk_bytes) : min_chunk_(min_chunk_bytes < kAlign ? kAlign : min_chunk_bytes) {}

Arena::~Arena() { release(); }

Arena::Chunk Arena::new_chunk(size_t bytes) {
  const size_t align = bytes >= kHugePage ? kHugePage : kAlign;
  size_t rounded = 0;
  QVL_CHECK(round_up(bytes, align, &rounded), Input,
            "scratch arena: a chunk of " + std::to_string(bytes) + " bytes cannot be represented");
  void* p = std::aligned_alloc(align, rounded);
  if (!p) fail(ErrorCode::Native, "scratch arena: out of memory allocating " + std::to_string(rounded) + " bytes");
#ifdef MADV_HUGEPAGE
  // The kernels walk activations a block of rows at a time, each row pages apart (a 32-row block
  // of a 5120-wide f32 output touches 32 pages), so their TLB misses are per row: matmul_bf16's
  // output written to 4 KiB pages ran its 1024 x 1280 x 5120 GEMM at 740 GFLOP/s against 830 in
  // huge pages (2-thread Zen 5, the driver in a standalone harness).
  if (align == kHugePage) madvise(p, rounded, MADV_HUGEPAGE);
#endif
  ++heap_allocations_;
  return Chunk{static_cast<char*>(p), rounded};
}

void Arena::free_chunk(Chunk& c) {
  std::free(c.data);
  c.data = nullptr;
  c.bytes = 0;
}

size_t Arena::capacity_bytes() const {
  size_t total = 0;
  for (const Chunk& c : chunks_) total += c.bytes;
  return total;
}

void* Arena::allocate(size_t bytes) {
  size_t need = 0;
  QVL_CHECK(round_up(bytes == 0 ? 1 : bytes, kAlign, &need), Input,
            "scratch arena: " + std::to_string(bytes) + " bytes cannot be represented once aligned");
  QVL_CHECK(in_use_ <= std::numeric_limits<size_t>::max() - need, Input,
            "scratch arena: " + std::to_string(bytes) + " more bytes overflow the " + std::to_string(in_use_) +
                " bytes in use");
  // The current chunk, else the first later chunk that fits (chunks after the bump pointer are free).
  size_t c = cur_, off = offset_;
  while (c < chunks_.size() && chunks_[c].bytes - off < need) ++c, off = 0;
  if (c == chunks_.size()) {
    // Grow geometrically so that a step needing N bytes adds O(log N) chunks at most once.
    const size_t cap = capacity_bytes();
    size_t want = need > min_chunk_ ? need : min_chunk_;
    if (cap > want) want = cap;
    chunks_.push_back(new_chunk(want));
    off = 0;
  }
  cur_ = c;
  void* p = chunks_[c].data + off;
  offset_ = off + need;
  in_use_ += need;
  if (in_use_ > peak_) peak_ = in_use_;
  return p;
}

Tensor Arena::tensor(DType dtype, std::vector<int64_t> shape) {
  const int64_t n = checked_numel(shape);
  const size_t es = dtype_size(dtype);
  QVL_CHECK(static_cast<uint64_t>(n) <= std::numeric_limits<size_t>::max() / es, Input,
            "scratch arena: tensor " + qvl::shape_string(shape) + " of " + dtype_name(dtype) + " overflows a byte size");
  const size_t bytes = static_cast<size_t>(n) * es;
  void* p = allocate(bytes);
  return Tensor(dtype, std::move(shape), std::make_shared<ArenaStorage>(p, bytes), 0);
}

void Arena::rewind(const Mark& m) {
  QVL_CHECK(m.chunk < chunks_.size() || (m.chunk == 0 && m.offset == 0), Native,
            "scratch arena: rewind to a mark this arena did not make");
  QVL_CHECK(m.in_use <= in_use_, Native, "scratch arena: rewind past the bump pointer");
  cur_ = m.chunk;
  offset_ = m.offset;
  in_use_ = m.in_use;
}

void Arena::reset() {
  cur_ = 0;
  offset_ = 0;
  in_use_ = 0;
  if (chunks_.size() <= 1) return;
  // The step spilled over several chunks: one chunk of the high-water size holds it next time.
  for (Chunk& c : chunks_) free_chunk(c);
  chunks_.clear();
  chunks_.push_back(new_chunk(peak_ > min_chunk_ ? peak_ : min_chunk_));
}

void Arena::release() {
  for (Chunk& c : chunks_) free_chunk(c);
  chunks_.clear();
  cur_ = offset_ = in_use_ = peak_ = 0;
}

}  // namespace qvl
