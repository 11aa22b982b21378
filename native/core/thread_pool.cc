#include "thread_pool.h"

#include <algorithm>

namespace rnnkit {

namespace {
int default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}
// How long an idle worker keeps polling before it sleeps: the recurrent loop hands out work every
// few tens of microseconds, and a condition-variable wake-up costs about as much as the work.
constexpr int kSpinIterations = 4000;
}  // namespace

ThreadPool& ThreadPool::instance() {
  static ThreadPool pool;
  return pool;
}

ThreadPool::ThreadPool() { start(default_threads()); }

ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::start(int n) {
  n = std::max(1, n);
  quit_.store(false);
  num_threads_.store(n);
  for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    quit_.store(true);
  }
  wake_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void ThreadPool::set_num_threads(int n) {
  std::lock_guard<std::mutex> own(owner_);
  if (n == num_threads_.load() && static_cast<int>(workers_.size()) == n - 1) return;
  stop();
  start(n);
}

void ThreadPool::worker_loop(int) {
  uint64_t seen = generation_.load(std::memory_order_acquire);
  for (;;) {
    // Poll briefly, then sleep until the next job or shutdown.
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && !quit_.load(std::memory_order_acquire)) {
      if (++spins < kSpinIterations) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        continue;
      }
      std::unique_lock<std::mutex> lock(wake_mutex_);
      wake_cv_.wait(lock, [&] {
        return generation_.load(std::memory_order_acquire) != seen || quit_.load(std::memory_order_acquire);
      });
      break;
    }
    if (quit_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    for (;;) {
      int part = job_next_.fetch_add(1, std::memory_order_acq_rel);
      if (part >= job_parts_) break;
      int64_t begin = part * job_chunk_;
      int64_t end = std::min(job_n_, begin + job_chunk_);
      (*job_fn_)(begin, end);
      job_pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const RangeFn& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int threads = num_threads_.load();
  int64_t max_parts = std::max<int64_t>(1, n / grain);
  int parts = static_cast<int>(std::min<int64_t>(threads, max_parts));
  if (parts <= 1) {
    fn(0, n);
    return;
  }
  std::unique_lock<std::mutex> own(owner_, std::try_to_lock);
  if (!own.owns_lock()) {  // another caller drives the pool: do this job alone
    fn(0, n);
    return;
  }
  job_fn_ = &fn;
  job_n_ = n;
  job_chunk_ = (n + parts - 1) / parts;
  job_parts_ = static_cast<int>((n + job_chunk_ - 1) / job_chunk_);
  job_pending_.store(job_parts_, std::memory_order_relaxed);
  job_next_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_cv_.notify_all();
  for (;;) {
    int part = job_next_.fetch_add(1, std::memory_order_acq_rel);
    if (part >= job_parts_) break;
    int64_t begin = part * job_chunk_;
    int64_t end = std::min(n, begin + job_chunk_);
    fn(begin, end);
    job_pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
  while (job_pending_.load(std::memory_order_acquire) != 0) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
}

}  // namespace rnnkit
