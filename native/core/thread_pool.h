// One persistent pool for the element-wise gate kernels.
//
// parallel_for splits [0, n) into at most num_threads() contiguous ranges; the calling thread
// runs one of them. Only one caller owns the workers at a time: a second concurrent caller (another
// async job, another worker_thread) runs its range inline instead of queueing, so concurrent calls
// never oversubscribe the cores and never wait on each other.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rnnkit {

class ThreadPool {
 public:
  using RangeFn = std::function<void(int64_t begin, int64_t end)>;

  static ThreadPool& instance();

  // Total participants including the caller; n >= 1.
  void set_num_threads(int n);
  int num_threads() const { return num_threads_.load(); }

  // Runs fn over [0, n) in ranges of at least `grain` elements.
  void parallel_for(int64_t n, int64_t grain, const RangeFn& fn);

  ~ThreadPool();

 private:
  ThreadPool();
  void start(int n);
  void stop();
  void worker_loop(int index);

  std::atomic<int> num_threads_{1};
  std::vector<std::thread> workers_;
  std::mutex owner_;  // held by the caller that currently drives the workers

  std::mutex wake_mutex_;
  std::condition_variable wake_cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> quit_{false};

  // The job being run; written by the owner before bumping generation_.
  const RangeFn* job_fn_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_chunk_ = 0;
  int job_parts_ = 0;
  std::atomic<int> job_next_{0};
  std::atomic<int> job_pending_{0};
};

// Convenience: run fn(begin, end) over [0, n); inline when the work is too small to share.
inline void parallel_for(int64_t n, int64_t grain, const ThreadPool::RangeFn& fn) {
  ThreadPool::instance().parallel_for(n, grain, fn);
}

}  // namespace rnnkit
