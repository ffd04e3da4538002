// A fixed pool of compute threads. The calling thread takes part in every job, so a pool of
// size 1 runs everything inline. Jobs from different callers are serialised; a parallel_for
// issued from inside a job runs inline (no nested fan-out, no deadlock).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace qvl {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // Whether the calling thread runs inside a job (its parallel_for then runs inline).
  static bool in_job();

  // Calls fn(begin, end) on disjoint ranges covering [0, n), each at least `grain` long
  // (except the last). Ranges are handed out dynamically, so uneven work balances itself.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // Calls fn(t, nthreads) once on each of the pool's threads, t in [0, nthreads).
  void run_on_all(const std::function<void(int, int)>& fn);

 private:
  void worker_loop(int index);
  void run_job(const std::function<void(int)>& job);

  // Decode issues hundreds of short jobs per token: a worker that slept on the condition variable
  // after each one paid a wake-up (tens of microseconds) per job. Workers and the submitter spin
  // on the atomics below for a short while before they sleep; a waker takes mu_ and notifies only
  // when someone sleeps (the sleeper counts are seq_cst on both sides, so a waker either sees the
  // sleeper or the sleeper sees the new generation).
  std::vector<std::thread> workers_;
  std::mutex submit_mu_;  // one job at a time
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  const std::function<void(int)>* job_ = nullptr;  // written before generation_ is published
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> submitter_sleeping_{false};
  std::atomic<bool> stop_{false};
};

// Physical cores of this machine (hyper-thread siblings counted once), at least 1.
int physical_cores();

// The process-wide pool used by kernels when no other is given. Created on first use with
// physical_cores() threads; set_default_threads replaces it (between jobs, not during one).
// Callers hold the shared_ptr for the length of their job, so replacing the pool from another
// thread never destroys one that is in use.
std::shared_ptr<ThreadPool> default_pool();
void set_default_threads(int threads);
int default_threads();

}  // namespace qvl
