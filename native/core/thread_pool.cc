#include "thread_pool.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <system_error>

namespace rnnkit {

namespace {
int default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}
// How long an idle worker keeps polling before it sleeps: the recurrent loop hands out work every
// few tens of microseconds, and a condition-variable wake-up costs about as much as the work.
// After the first kPausesBeforeYield polls every poll also yields the core: with more pool threads
// than free cores (a CPU quota, a busy host, setNumThreads above the core count) a polling thread
// would otherwise hold the core that the thread running a part needs, for a whole time slice.
constexpr int kSpinIterations = 4000;
constexpr int kPausesBeforeYield = 200;

inline void cpu_relax(int spins) {
  if (spins >= kPausesBeforeYield) {
    std::this_thread::yield();
    return;
  }
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
// ticket_ = job id (bits 63..32) | parts of the job (31..16) | next part to claim (15..0): the
// claim test reads the part count from the same word it swaps, never from a field that the owner
// may already be rewriting for the next job.
inline uint32_t ticket_job(uint64_t t) { return static_cast<uint32_t>(t >> 32); }
inline int ticket_parts(uint64_t t) { return static_cast<int>((t >> 16) & 0xffffu); }
inline int ticket_next(uint64_t t) { return static_cast<int>(t & 0xffffu); }
constexpr int kMaxParts = 0xffff;
// Set while this thread runs a part of a job: a nested parallel_for then runs inline.
thread_local bool tl_in_job = false;
struct InJob {
  InJob() { tl_in_job = true; }
  ~InJob() { tl_in_job = false; }
};
}  // namespace

ThreadPool& ThreadPool::instance() {
  // Never destroyed: at process exit an async call may still be running on a libuv thread, and
  // joining the workers under it would hang or crash; the OS reclaims the threads.
  static ThreadPool* pool = new ThreadPool();
  return *pool;
}

ThreadPool::ThreadPool() {
  requested_.store(default_threads());
  start(requested_.load());
}

ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::start(int n) {
  n = std::max(1, n);
  quit_.store(false);
  for (int i = 1; i < n; ++i) {
    try {
      workers_.emplace_back([this] { worker_loop(); });
    } catch (const std::system_error&) {  // e.g. a pids limit: run with the threads we have
      break;
    }
  }
  started_.store(1 + static_cast<int>(workers_.size()));
}

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    quit_.store(true);
  }
  wake_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  started_.store(1);
}

ThreadPool::Resize ThreadPool::set_num_threads(int n) {
  n = std::max(1, n);
  requested_.store(n);
  std::unique_lock<std::mutex> own(owner_, std::try_to_lock);
  if (!own.owns_lock()) {  // a call is running on the pool: the next call applies the change
    resize_pending_.store(true);
    return Resize::kDeferred;
  }
  resize_pending_.store(false);
  if (started_.load() != n) {
    stop();
    start(n);
  }
  return started_.load() == n ? Resize::kDone : Resize::kShort;
}

void ThreadPool::apply_pending_resize() {
  if (!resize_pending_.exchange(false)) return;
  const int n = requested_.load();
  if (started_.load() == n) return;
  stop();
  start(n);
}

int ThreadPool::claim(uint32_t id) {
  uint64_t t = ticket_.load(std::memory_order_acquire);
  for (;;) {
    if (ticket_job(t) != id) return -1;
    const int part = ticket_next(t);
    if (part >= ticket_parts(t)) return -1;
    if (ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire)) return part;
  }
}

void ThreadPool::run_part(int part) {
  const int64_t chunk = job_chunk_.load(std::memory_order_relaxed);
  const int64_t begin = part * chunk;
  const int64_t end = std::min(job_n_.load(std::memory_order_relaxed), begin + chunk);
  InJob in_job;
  try {
    (*job_fn_.load(std::memory_order_relaxed))(begin, end);
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!job_error_) job_error_ = std::current_exception();
  }
  job_pending_.fetch_sub(1, std::memory_order_acq_rel);
}

void ThreadPool::worker_loop() {
  uint32_t seen = ticket_job(ticket_.load(std::memory_order_acquire));
  for (;;) {
    // Poll briefly, then sleep until the next job or shutdown.
    int spins = 0;
    auto has_news = [&] {
      return ticket_job(ticket_.load(std::memory_order_acquire)) != seen || quit_.load(std::memory_order_acquire);
    };
    while (!has_news()) {
      if (++spins < kSpinIterations) {
        cpu_relax(spins);
        continue;
      }
      std::unique_lock<std::mutex> lock(wake_mutex_);
      wake_cv_.wait(lock, has_news);
      break;
    }
    if (quit_.load(std::memory_order_acquire)) return;
    seen = ticket_job(ticket_.load(std::memory_order_acquire));
    for (int part; (part = claim(seen)) >= 0;) run_part(part);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const RangeFn& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t max_parts = std::max<int64_t>(1, n / grain);
  if (tl_in_job || std::min<int64_t>(requested_.load(), max_parts) <= 1) {
    fn(0, n);
    return;
  }
  std::unique_lock<std::mutex> own(owner_, std::try_to_lock);
  if (!own.owns_lock()) {  // another caller drives the pool: do this job alone
    fn(0, n);
    return;
  }
  apply_pending_resize();
  const int parts_wanted = static_cast<int>(std::min<int64_t>({started_.load(), max_parts, kMaxParts}));
  if (parts_wanted <= 1) {
    fn(0, n);
    return;
  }
  const int64_t chunk = (n + parts_wanted - 1) / parts_wanted;
  const int parts = static_cast<int>((n + chunk - 1) / chunk);
  job_fn_.store(&fn, std::memory_order_relaxed);
  job_n_.store(n, std::memory_order_relaxed);
  job_chunk_.store(chunk, std::memory_order_relaxed);
  job_pending_.store(parts, std::memory_order_relaxed);
  const uint32_t id = ++job_id_;
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    ticket_.store(uint64_t(id) << 32 | uint64_t(parts) << 16, std::memory_order_release);
  }
  wake_cv_.notify_all();
  for (int part; (part = claim(id)) >= 0;) run_part(part);
  for (int spins = 0; job_pending_.load(std::memory_order_acquire) != 0; ++spins) cpu_relax(spins);
  if (job_error_) {
    std::exception_ptr e;
    std::swap(e, job_error_);
    std::rethrow_exception(e);
  }
}

namespace {
// The shared state of one parallel_stages call: the next stage to claim of each slice (each on
// its own cache line: the owners claim them every stage) and the count of finished items.
struct alignas(64) SliceCursor {
  std::atomic<int64_t> next{0};
};
struct StageGrid {
  int64_t stages, slices;
  std::unique_ptr<SliceCursor[]> cursor;
  alignas(64) std::atomic<int64_t> done{0};
  // Claims (cursor's stage, slice) if that stage is runnable; -1 otherwise.
  int64_t try_claim(int64_t slice, int64_t finished) {
    std::atomic<int64_t>& next = cursor[size_t(slice)].next;
    int64_t t = next.load(std::memory_order_relaxed);
    if (t >= stages || finished < t * slices) return -1;
    return next.compare_exchange_strong(t, t + 1, std::memory_order_acq_rel) ? t : -1;
  }
  // Runs one runnable item of a slice in [j0, j1) outside [skip0, skip1); false when none is.
  bool run_one(const StageFn& fn, int64_t finished, int64_t j0, int64_t j1, int64_t skip0, int64_t skip1) {
    for (int64_t j = j0; j < j1; ++j) {
      if (j >= skip0 && j < skip1) continue;
      const int64_t t = try_claim(j, finished);
      if (t < 0) continue;
      fn(t, j);
      done.fetch_add(1, std::memory_order_acq_rel);
      return true;
    }
    return false;
  }
};
// How long a participant waits for one of its own items before taking another slice's runnable
// item. A home item that is runnable but unclaimed means its owner is a whole stage behind (late
// to wake, descheduled); stealing it earlier costs the cache locality of the weights.
constexpr auto kStealAfter = std::chrono::microseconds(20);
// Polls with `pause` this many times before each poll also yields the core (see cpu_relax).
constexpr int kStagePausesBeforeYield = 4000;
}  // namespace

void parallel_stages(int64_t stages, int64_t slices, const StageFn& fn) {
  if (stages <= 0 || slices <= 0) return;
  StageGrid grid{stages, slices, std::make_unique<SliceCursor[]>(size_t(slices))};
  const int64_t total = stages * slices;
  parallel_for(slices, 1, [&](int64_t h0, int64_t h1) {
    if (h0 == 0 && h1 == slices) {  // alone (one part): in order, no atomics needed but harmless
      for (int64_t t = 0; t < stages; ++t)
        for (int64_t j = 0; j < slices; ++j) {
          if (grid.try_claim(j, grid.done.load(std::memory_order_acquire)) < 0) continue;  // taken already
          fn(t, j);
          grid.done.fetch_add(1, std::memory_order_acq_rel);
        }
      // A late participant may have claimed items this thread skipped: wait for them below.
    }
    int spins = 0;
    std::chrono::steady_clock::time_point idle_since{};
    for (;;) {
      const int64_t finished = grid.done.load(std::memory_order_acquire);
      if (finished >= total) return;
      if (grid.run_one(fn, finished, h0, h1, 0, 0)) {  // our own slices first
        spins = 0;
        continue;
      }
      // Nothing of our own: after kStealAfter of waiting, any runnable item.
      if (spins == 0) idle_since = std::chrono::steady_clock::now();
      if ((spins & 63) == 63 && std::chrono::steady_clock::now() - idle_since >= kStealAfter &&
          grid.run_one(fn, finished, 0, slices, h0, h1)) {
        spins = 0;
        continue;
      }
      ++spins;
      if (spins >= kStagePausesBeforeYield) {
        std::this_thread::yield();
      } else {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
    }
  });
}

}  // namespace rnnkit
