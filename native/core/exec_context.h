// The execution context every op runs under: where it runs (device), with which threads (pool),
// where its intermediates come from (scratch arena), when to stop (cancel token), the stream a
// device backend queues work on, and an optional per-op profiler.
//
// Ownership and threads. A context is a small value of non-owning pointers; whoever builds it
// keeps the pool, arena, token and profiler alive for as long as it is used. A model session
// owns one arena and one profiler and builds its context per call; a vision encode builds its
// own arena. One context (and so one arena) serves one thread of control at a time: two
// concurrent requests never share an arena. Kernels fan work out over the pool; the pool's
// workers never allocate from the arena or touch the profiler.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/arena.h"
#include "core/cancel.h"
#include "core/device.h"
#include "core/error.h"
#include "core/threadpool.h"

namespace qvl {

// How far ops may round for speed. Exact (the default): f32 activations, the path the conformance
// fixtures hold. Fast: large matmuls (prefill, the vision tower) take bf16 activations and
// weights with f32 accumulation (ops/matmul.h); a model carries it from its load options.
enum class Precision { Exact = 0, Fast };

// Wall time and call count per op family, summed over the op entry points (ops::matmul, ...).
// Off unless a context carries one; then each entry point costs one null check. Not thread-safe:
// it belongs to the context's thread of control (nested op calls made from inside a kernel run
// under ExecContext::nested, which carries no profiler, so no op is counted twice).
class OpProfiler {
 public:
  struct Counter {
    const char* op;  // the family name (a string literal; compared by address, then by text)
    uint64_t ns = 0;
    uint64_t calls = 0;
  };
  void add(const char* op, uint64_t ns);
  const std::vector<Counter>& counters() const { return counters_; }
  uint64_t total_ns() const;
  void clear() { counters_.clear(); }

 private:
  std::vector<Counter> counters_;
};

class ExecContext {
 public:
  // A host context over `pool`, without arena, cancel token or profiler.
  explicit ExecContext(ThreadPool& pool) : pool_(&pool) {}

  Device device() const { return device_; }
  ThreadPool& pool() const { return *pool_; }
  // The scratch arena, or null when the context has none (kernels called from the parity harness).
  Arena* arena() const { return arena_; }
  // The arena; E_NATIVE when the context was built without one (a caller that needs scratch space).
  Arena& scratch() const {
    QVL_CHECK(arena_ != nullptr, Native, "execution context has no scratch arena");
    return *arena_;
  }
  const CancelToken* cancel() const { return cancel_; }
  // The device stream work is queued on (a cudaStream_t for Device::Cuda); always null on the host.
  void* stream() const { return stream_; }
  OpProfiler* profiler() const { return profiler_; }
  Precision precision() const { return precision_; }

  // A per-step intermediate: from the arena when the context has one (uninitialised unless
  // `zeroed`; valid until the enclosing ArenaScope ends or the arena is reset), else an owned
  // zero-filled tensor. Never for results that outlive the step (those are Tensor::empty).
  Tensor temp(DType dtype, std::vector<int64_t> shape, bool zeroed = false) const {
    if (!arena_) return Tensor::empty(dtype, std::move(shape));
    Tensor t = arena_->tensor(dtype, std::move(shape));
    if (zeroed && t.nbytes() > 0) std::memset(t.raw(), 0, t.nbytes());
    return t;
  }

  ExecContext& with_arena(Arena* a) { arena_ = a; return *this; }
  ExecContext& with_cancel(const CancelToken* c) { cancel_ = c; return *this; }
  ExecContext& with_profiler(OpProfiler* p) { profiler_ = p; return *this; }
  ExecContext& with_precision(Precision p) { precision_ = p; return *this; }
  // For a device backend: the device and the stream its work goes to.
  ExecContext& on_device(Device d, void* stream) { device_ = d; stream_ = stream; return *this; }

  // The context for ops a kernel calls from inside its own work (MoE experts through matmul):
  // the given pool, no profiler (the outer op's time already includes them), and no arena: such
  // ops may run on several pool threads at once, and the arena serves one thread (an op that
  // wants scratch space, like matmul_bf16's bf16 copy of x, then allocates its own).
  ExecContext nested(ThreadPool& pool) const {
    ExecContext c = *this;
    c.pool_ = &pool;
    c.profiler_ = nullptr;
    c.arena_ = nullptr;
    return c;
  }

 private:
  Device device_ = Device::Host;
  ThreadPool* pool_;
  Arena* arena_ = nullptr;
  const CancelToken* cancel_ = nullptr;
  void* stream_ = nullptr;
  OpProfiler* profiler_ = nullptr;
  Precision precision_ = Precision::Exact;
};

// Times one op entry point into the context's profiler; nothing but a null check when off.
class OpTimer {
 public:
  OpTimer(const ExecContext& ctx, const char* op) : profiler_(ctx.profiler()), op_(op) {
    if (profiler_) start_ = std::chrono::steady_clock::now();
  }
  ~OpTimer() {
    if (profiler_) {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_);
      profiler_->add(op_, static_cast<uint64_t>(ns.count()));
    }
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  OpProfiler* profiler_;
  const char* op_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace qvl
