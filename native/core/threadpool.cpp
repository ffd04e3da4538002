#include "core/threadpool.h"

#include <fstream>
#include <memory>
#include <set>
#include <string>

#include "core/error.h"

namespace qvl {

namespace {
thread_local bool t_in_job = false;
}

bool ThreadPool::in_job() { return t_in_job; }

ThreadPool::ThreadPool(int threads) {
  QVL_CHECK(threads >= 1 && threads <= 1024, Input, "thread count must be in [1, 1024], got " + std::to_string(threads));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {
// About 50-100 us of pause instructions: longer than the gap between two matmuls of a decode
// step, short enough that an idle pool costs nothing measurable.
constexpr int kSpins = 1 << 12;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins until done() or the budget runs out; true when done() held.
template <class Done>
bool spin_until(const Done& done) {
  for (int i = 0; i < kSpins; ++i) {
    if (done()) return true;
    cpu_relax();
  }
  return done();
}
}  // namespace

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto fresh = [&] { return stop_.load() || generation_.load() != seen; };
    if (!spin_until(fresh)) {
      std::unique_lock<std::mutex> lk(mu_);
      sleeping_workers_.fetch_add(1);
      cv_.wait(lk, fresh);
      sleeping_workers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    seen = generation_.load();
    const std::function<void(int)>* job = job_;
    t_in_job = true;
    (*job)(index);
    t_in_job = false;
    if (pending_.fetch_sub(1) == 1 && submitter_sleeping_.load()) {
      std::lock_guard<std::mutex> lk(mu_);
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::run_job(const std::function<void(int)>& job) {
  if (workers_.empty() || t_in_job) {
    // Inline: either no helpers, or we are already inside a job (nested call).
    const bool was = t_in_job;
    t_in_job = true;
    job(0);
    t_in_job = was;
    return;
  }
  std::lock_guard<std::mutex> submit(submit_mu_);
  job_ = &job;
  pending_.store(static_cast<int>(workers_.size()));
  generation_.fetch_add(1);  // publishes job_ and pending_
  if (sleeping_workers_.load() > 0) {
    std::lock_guard<std::mutex> lk(mu_);
    cv_.notify_all();
  }
  t_in_job = true;
  job(0);
  t_in_job = false;
  auto finished = [&] { return pending_.load() == 0; };
  if (!spin_until(finished)) {
    std::unique_lock<std::mutex> lk(mu_);
    submitter_sleeping_.store(true);
    done_cv_.wait(lk, finished);
    submitter_sleeping_.store(false);
  }
  job_ = nullptr;
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t chunks = (n + grain - 1) / grain;
  if (chunks == 1 || workers_.empty() || t_in_job) {
    fn(0, n);
    return;
  }
  std::atomic<int64_t> next{0};
  std::function<void(int)> job = [&](int) {
    for (;;) {
      const int64_t c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= chunks) break;
      const int64_t b = c * grain;
      fn(b, b + grain < n ? b + grain : n);
    }
  };
  run_job(job);
}

void ThreadPool::run_on_all(const std::function<void(int, int)>& fn) {
  const int nt = (workers_.empty() || t_in_job) ? 1 : size();
  std::function<void(int)> job = [&](int t) { fn(t, nt); };
  run_job(job);
}

int physical_cores() {
  // Count distinct (package, core) pairs from sysfs; fall back to the logical count.
  std::set<std::string> cores;
  const unsigned logical = std::thread::hardware_concurrency();
  for (unsigned cpu = 0; cpu < logical; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream pkg(base + "physical_package_id"), core(base + "core_id");
    std::string p, c;
    if (!(pkg >> p) || !(core >> c)) return logical > 0 ? static_cast<int>(logical) : 1;
    cores.insert(p + ":" + c);
  }
  if (cores.empty()) return logical > 0 ? static_cast<int>(logical) : 1;
  return static_cast<int>(cores.size());
}

namespace {
std::mutex g_pool_mu;
std::shared_ptr<ThreadPool> g_pool;
}  // namespace

std::shared_ptr<ThreadPool> default_pool() {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (!g_pool) g_pool = std::make_shared<ThreadPool>(physical_cores());
  return g_pool;
}

void set_default_threads(int threads) {
  auto fresh = std::make_shared<ThreadPool>(threads);
  std::lock_guard<std::mutex> lk(g_pool_mu);
  g_pool = std::move(fresh);
}

int default_threads() { return default_pool()->size(); }

}  // namespace qvl
