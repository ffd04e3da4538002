// Checks of the execution context's parts (no kernel arithmetic): the scratch arena and the pool
// that keeps arenas between vision encodes, the device-keyed op registry and the op profiler.
// Each case is a "check" Result, so the harness and test/native/parity.test.ts run them with the
// kernel suites.
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/arena_pool.h"
#include "core/exec_context.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/registry.h"
#include "ops/softmax.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) fail(ErrorCode::Native, what);
}

Result check(const char* op, const std::string& what, void (*fn)()) { return expect_accepted(op, what, fn); }

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % Arena::kAlign == 0; }

// One "step" of a fixed allocation pattern: a layer loop whose temporaries live in a scope.
void fake_step(Arena& a) {
  Tensor h = a.tensor(DType::F32, {7, 33});
  for (int layer = 0; layer < 4; ++layer) {
    ArenaScope scope(&a);
    Tensor q = a.tensor(DType::F32, {7, 129});
    Tensor gu = a.tensor(DType::F32, {7, 300});
    std::memset(q.raw(), 1, q.nbytes());
    std::memset(gu.raw(), 2, gu.nbytes());
  }
  Tensor logits = a.tensor(DType::F32, {1, 1000});
  std::memset(logits.raw(), 3, logits.nbytes());
}

}  // namespace

std::vector<Result> parity_arena(uint64_t /*seed*/) {
  std::vector<Result> out;
  out.push_back(check("arena", "64-byte aligned, disjoint, writable allocations of awkward sizes", [] {
    Arena a(4096);
    std::vector<std::pair<char*, size_t>> got;
    for (size_t n : {size_t(1), size_t(63), size_t(64), size_t(65), size_t(1000), size_t(5000), size_t(0), size_t(77)}) {
      char* p = static_cast<char*>(a.allocate(n));
      require(aligned(p), "allocation of " + std::to_string(n) + " bytes is not 64-byte aligned");
      std::memset(p, static_cast<int>(got.size() + 1), n);
      got.push_back({p, n});
    }
    for (size_t i = 0; i < got.size(); ++i) {
      for (size_t j = 0; j < got[i].second; ++j) {
        require(got[i].first[j] == static_cast<char>(i + 1), "allocation " + std::to_string(i) + " was overwritten");
      }
    }
  }));
  out.push_back(check("arena", "arena tensors: kind arena, host device, contiguous, aligned", [] {
    Arena a;
    Tensor t = a.tensor(DType::BF16, {3, 5, 7});
    require(std::strcmp(t.storage()->kind(), "arena") == 0, "storage kind is not arena");
    require(t.device() == Device::Host, "arena tensor is not on the host");
    require(t.is_contiguous() && t.nbytes() == 3 * 5 * 7 * 2 && aligned(t.raw()), "bad arena tensor layout");
    Tensor e = a.tensor(DType::F32, {0, 4});
    require(e.numel() == 0, "empty tensor has elements");
  }));
  out.push_back(check("arena", "a scope rewinds: the next layer reuses the previous layer's bytes", [] {
    Arena a;
    Tensor keep = a.tensor(DType::F32, {16});
    void* first = nullptr;
    for (int layer = 0; layer < 3; ++layer) {
      ArenaScope scope(&a);
      Tensor t = a.tensor(DType::F32, {100});
      if (layer == 0) first = t.raw();
      require(t.raw() == first, "layer " + std::to_string(layer) + " did not reuse the scope's bytes");
    }
    require(a.in_use_bytes() == 64, "bytes in use after the scopes: " + std::to_string(a.in_use_bytes()));
    Tensor after = a.tensor(DType::F32, {1});
    require(after.raw() == first, "the bytes after the scopes are not reused");
    require(keep.raw() != after.raw(), "a live allocation was handed out again");
    ArenaScope null_scope(nullptr);  // a context without an arena: a no-op
  }));
  out.push_back(check("arena", "a step that outgrows its chunk adds one; reset merges them; warm steps allocate nothing", [] {
    Arena a(4096);
    fake_step(a);
    require(a.chunk_count() > 1, "the first step fit in one 4 KiB chunk; the test needs it to spill");
    const size_t peak = a.peak_bytes();
    a.reset();
    require(a.chunk_count() == 1 && a.capacity_bytes() >= peak && a.in_use_bytes() == 0,
            "reset did not merge into one chunk of the peak size");
    const uint64_t heap = a.heap_allocations();
    for (int step = 0; step < 20; ++step) {
      fake_step(a);
      require(a.chunk_count() == 1, "step " + std::to_string(step) + " spilled out of the merged chunk");
      a.reset();
    }
    require(a.heap_allocations() == heap, "warm steps took " + std::to_string(a.heap_allocations() - heap) + " chunks from the heap");
    require(a.peak_bytes() == peak, "the peak moved across identical steps");
    a.release();
    require(a.chunk_count() == 0 && a.capacity_bytes() == 0 && a.peak_bytes() == 0, "release kept memory");
    fake_step(a);
    require(a.chunk_count() >= 1, "a released arena cannot serve a step");
  }));
  out.push_back(expect_rejected("arena", "allocate(SIZE_MAX): E_INPUT", [] {
    Arena a;
    a.allocate(std::numeric_limits<size_t>::max());
  }));
  out.push_back(expect_rejected("arena", "allocate(SIZE_MAX - 70) (overflows once aligned): E_INPUT", [] {
    Arena a;
    a.allocate(std::numeric_limits<size_t>::max() - 70);
  }));
  out.push_back(expect_rejected("arena", "in-use total overflowing size_t: E_INPUT", [] {
    Arena a;
    a.allocate(64);
    a.allocate(std::numeric_limits<size_t>::max() - 127);
  }));
  out.push_back(expect_rejected("arena", "tensor of 2^62 f32 (byte size overflows): E_INPUT", [] {
    Arena a;
    a.tensor(DType::F32, {int64_t(1) << 31, int64_t(1) << 31});
  }));
  out.push_back(expect_rejected("arena", "tensor with an overflowing element count: E_INPUT", [] {
    Arena a;
    a.tensor(DType::F32, {std::numeric_limits<int64_t>::max(), 2});
  }));
  out.push_back(expect_rejected("arena", "tensor with a negative dimension: E_INPUT", [] {
    Arena a;
    a.tensor(DType::F32, {4, -1});
  }));
  out.push_back(expect_rejected("arena", "a context without an arena has no scratch: E_NATIVE", [] {
    ExecContext ctx(*default_pool());
    ctx.scratch();
  }, ErrorCode::Native));
  out.push_back(check("arena", "pool: a returned arena is lent again, reset and warm (no new chunks)", [] {
    ArenaPool pool(1, size_t{1} << 20);
    Arena* first = nullptr;
    uint64_t heap = 0;
    {
      ArenaPool::Lease a = pool.take();
      first = a.get();
      fake_step(*a);
      heap = a->heap_allocations();
    }
    require(pool.idle() == 1 && pool.idle_bytes() > 0, "the returned arena was not kept");
    ArenaPool::Lease b = pool.take();
    require(b.get() == first, "take() made a new arena while one was idle");
    require(b->in_use_bytes() == 0 && b->chunk_count() == 1, "the kept arena was not reset into one chunk");
    require(pool.idle() == 0, "a lent arena still counted as idle");
    const uint64_t merged = b->heap_allocations();
    fake_step(*b);
    require(b->heap_allocations() == merged && merged <= heap + 1, "the kept arena took new chunks for the same step");
  }));
  out.push_back(check("arena", "pool: concurrent leases get distinct arenas; at most `keep` are kept", [] {
    ArenaPool pool(1, size_t{1} << 20);
    {
      ArenaPool::Lease a = pool.take(), b = pool.take();
      require(a.get() != b.get(), "two leases share an arena");
      fake_step(*a), fake_step(*b);
    }
    require(pool.idle() == 1, "kept " + std::to_string(pool.idle()) + " arenas, the pool keeps 1");
  }));
  out.push_back(check("arena", "pool: an arena whose scratch outgrew keep_bytes is freed, not kept", [] {
    ArenaPool pool(1, size_t{2} << 20);  // arenas take 1 MiB chunks at least
    {
      ArenaPool::Lease a = pool.take();
      a->allocate(size_t{3} << 20);
    }
    require(pool.idle() == 0 && pool.idle_bytes() == 0, "a 3 MiB arena was kept under a 2 MiB cap");
    {
      ArenaPool::Lease a = pool.take();
      a->allocate(size_t{16} << 10);
    }
    require(pool.idle() == 1 && pool.idle_bytes() <= (size_t{2} << 20), "a small arena was not kept");
  }));
  return out;
}

namespace {

using TestFn = void (*)(const ops::SoftmaxParams&, const ExecContext&);
int g_called = 0;  // which test variant ran: 1 host reference, 2 host generic, 3 the cuda one
void host_ref(const ops::SoftmaxParams&, const ExecContext&) { g_called = 1; }
void host_generic(const ops::SoftmaxParams&, const ExecContext&) { g_called = 2; }
void fake_cuda(const ops::SoftmaxParams&, const ExecContext& ctx) {
  require(ctx.device() == Device::Cuda, "a cuda variant ran under a host context");
  g_called = 3;
}

// A test-only family: a Cuda variant at a higher ISA level than every host one.
const ops::OpFamily<TestFn>& test_family() {
  static const ops::OpFamily<TestFn> family(
      "test", ops::join_variants<TestFn>({{{"reference", Device::Host, Isa::Reference, &host_ref},
                                           {"generic", Device::Host, Isa::Generic, &host_generic}},
                                          {{"fake-cuda", Device::Cuda, Isa::Cuda, &fake_cuda},
                                           {"fake-cuda-generic", Device::Cuda, Isa::Generic, &fake_cuda}}}));
  return family;
}

}  // namespace

std::vector<Result> parity_registry(uint64_t /*seed*/) {
  std::vector<Result> out;
  out.push_back(check("registry", "a host context never gets a cuda variant", [] {
    const auto& f = test_family();
    const auto& v = f.best(Device::Host);
    require(v.device == Device::Host && std::strcmp(v.name, "generic") == 0,
            std::string("host dispatch chose ") + v.name);
    ExecContext ctx(*default_pool());
    g_called = 0;
    v.fn(ops::SoftmaxParams{}, ctx);
    require(g_called == 2, "the host variant did not run");
    for (const auto& r : f.runnable()) {
      require(r.device == Device::Host || device_available(r.device), std::string(r.name) + " listed as runnable without its device");
    }
    for (const auto& i : f.variant_infos()) {
      if (i.device == Device::Cuda) require(std::strcmp(i.name, "fake-cuda") == 0 || std::strcmp(i.name, "fake-cuda-generic") == 0, "odd info");
    }
  }));
  out.push_back(check("registry", "a cuda context gets a cuda variant, or E_UNSUPPORTED without a device", [] {
    const auto& f = test_family();
    if (device_available(Device::Cuda)) {
      require(f.best(Device::Cuda).device == Device::Cuda, "cuda dispatch chose a host variant");
      return;
    }
    try {
      f.best(Device::Cuda);
      fail(ErrorCode::Native, "cuda dispatch without a cuda device chose a variant");
    } catch (const Error& e) {
      require(e.code() == ErrorCode::Unsupported, std::string("wrong error: ") + e.what());
    }
  }));
  out.push_back(expect_rejected("registry", "a family whose first variant is not the host reference: E_NATIVE", [] {
    ops::OpFamily<TestFn> bad("bad", {{"fake-cuda", Device::Cuda, Isa::Reference, &fake_cuda}});
  }, ErrorCode::Native));
  out.push_back(check("registry", "every op family: the host reference first, host dispatch picks a host variant", [] {
    for (const ops::OpFamilyBase* f : ops::op_catalog()) {
      const auto infos = f->variant_infos();
      require(!infos.empty() && infos[0].device == Device::Host && infos[0].isa == Isa::Reference,
              std::string(f->name()) + ": the first variant is not the host reference");
      bool found = false;
      for (const auto& i : infos) found = found || (std::strcmp(i.name, f->chosen_name()) == 0 && i.device == Device::Host);
      require(found, std::string(f->name()) + ": host dispatch chose " + f->chosen_name() + ", not a host variant");
    }
  }));
  // The backends register no cuda kernels yet: an op under a cuda context is a typed failure.
  out.push_back(expect_rejected("registry", "rms_norm under a cuda context (no cuda kernels yet): E_UNSUPPORTED", [] {
    std::vector<float> x(8, 1.0f);
    ops::NormParams p;
    p.rows = 1, p.dim = 8, p.x = x.data(), p.ldx = 8, p.out = x.data(), p.ldo = 8;
    ExecContext ctx(*default_pool());
    ctx.on_device(Device::Cuda, nullptr);
    ops::rms_norm(p, ctx);
  }, ErrorCode::Unsupported));
  out.push_back(expect_rejected("registry", "matmul under a cuda context: E_UNSUPPORTED naming the device", [] {
    std::vector<float> x(4, 1.0f), w(4, 1.0f), y(1);
    ops::MatmulParams p;
    p.M = 1, p.N = 1, p.K = 4, p.x = x.data(), p.ldx = 4, p.y = y.data(), p.ldy = 1;
    p.w.format = WeightFormat::F32, p.w.data = w.data(), p.w.ld = 4, p.w.out = 1, p.w.in = 4;
    ExecContext ctx(*default_pool());
    ctx.on_device(Device::Cuda, nullptr);
    try {
      ops::matmul(p, ctx);
    } catch (const Error& e) {
      require(std::string(e.what()).find("cuda") != std::string::npos, std::string("message does not name the device: ") + e.what());
      throw;
    }
  }, ErrorCode::Unsupported));
  return out;
}

std::vector<Result> parity_profiler(uint64_t /*seed*/) {
  std::vector<Result> out;
  out.push_back(check("profiler", "entry points count calls and wall time per family, within the caller's time", [] {
    std::vector<float> x(64 * 96, 0.5f), w(96 * 80, 0.25f), y(64 * 80);
    ops::SoftmaxParams sp;
    sp.rows = 64, sp.dim = 96, sp.x = x.data(), sp.ldx = 96, sp.out = x.data(), sp.ldo = 96;
    ops::MatmulParams mp;
    mp.M = 64, mp.N = 80, mp.K = 96, mp.x = x.data(), mp.ldx = 96, mp.y = y.data(), mp.ldy = 80;
    mp.w.format = WeightFormat::F32, mp.w.data = w.data(), mp.w.ld = 96, mp.w.out = 80, mp.w.in = 96;
    OpProfiler prof;
    ExecContext ctx(*default_pool());
    ctx.with_profiler(&prof);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 3; ++i) ops::softmax(sp, ctx);
    for (int i = 0; i < 2; ++i) ops::matmul(mp, ctx);
    const uint64_t wall = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
    require(prof.counters().size() == 2, "expected two op families, got " + std::to_string(prof.counters().size()));
    for (const auto& c : prof.counters()) {
      const bool sm = std::strcmp(c.op, "softmax") == 0, mm = std::strcmp(c.op, "matmul") == 0;
      require(sm || mm, std::string("unexpected family ") + c.op);
      require(c.calls == (sm ? 3u : 2u), std::string(c.op) + ": " + std::to_string(c.calls) + " calls");
      require(c.ns > 0, std::string(c.op) + ": no time recorded");
    }
    require(prof.total_ns() <= wall, "op time " + std::to_string(prof.total_ns()) + " ns exceeds the caller's " + std::to_string(wall));
    // A failing op still counts (its time is spent); a context without a profiler records nothing.
    sp.dim = -1;
    try {
      ops::softmax(sp, ctx);
    } catch (const Error&) {
    }
    require(prof.counters()[0].calls == 4, "a rejected call was not counted");
    OpProfiler idle;
    ExecContext off(*default_pool());
    sp.dim = 96;
    ops::softmax(sp, ExecContext(off));
    require(idle.counters().empty(), "a profiler not attached recorded something");
    prof.clear();
    require(prof.counters().empty() && prof.total_ns() == 0, "clear kept counters");
  }));
  out.push_back(check("profiler", "nested contexts carry no profiler (MoE's expert matmuls count in moe only)", [] {
    OpProfiler prof;
    ExecContext ctx(*default_pool());
    ctx.with_profiler(&prof);
    require(ctx.nested(ctx.pool()).profiler() == nullptr, "nested context kept the profiler");
    require(ctx.nested(ctx.pool()).device() == ctx.device(), "nested context changed device");
  }));
  out.push_back(check("profiler", "nested contexts carry no arena (their ops may run on several pool threads) but keep the precision", [] {
    Arena arena;
    ExecContext ctx(*default_pool());
    ctx.with_arena(&arena).with_precision(Precision::Fast);
    require(ctx.nested(ctx.pool()).arena() == nullptr, "nested context kept the arena");
    require(ctx.nested(ctx.pool()).precision() == Precision::Fast, "nested context lost the precision");
  }));
  return out;
}

}  // namespace qvl::parity
