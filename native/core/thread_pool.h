// One persistent pool for the GEMM slices and element-wise gate kernels.
//
// parallel_for splits [0, n) into at most num_threads() contiguous parts; the calling thread runs
// parts too. Only one caller owns the workers at a time: a second concurrent caller (another async
// job, another worker_thread) runs its whole range inline instead of queueing, so concurrent calls
// never oversubscribe the cores and never wait on each other.
//
// Job hand-off: the owner writes the job's fields, then publishes ticket = (job id, parts, next
// part) in one atomic word. A thread claims part k only by a compare-and-swap from (id, parts, k)
// to (id, parts, k + 1), and the part count it tests comes from that same word. So a worker that
// arrives late can never claim a part of an earlier job while the owner is rewriting the fields
// for the next one, run a part twice, or miscount the parts still pending (all three happened
// with a separate counter and part count when there were more threads than free cores). The
// fields of job id are rewritten only after every part of it has run, so a successful claim
// always reads its own job's fields.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rnnkit {

class ThreadPool {
 public:
  using RangeFn = std::function<void(int64_t begin, int64_t end)>;

  static ThreadPool& instance();

  // Asks for n participants in all (the caller included); n >= 1. Never blocks on running work:
  // when another call owns the pool, the change is recorded and applied by the next call that
  // takes the pool (returns kDeferred). Otherwise the threads are started now; if the system
  // refuses a thread, the pool keeps the ones it has and started() tells how many (returns kShort).
  enum class Resize { kDone, kDeferred, kShort };
  Resize set_num_threads(int n);
  // The participants asked for (applied or pending).
  int num_threads() const { return requested_.load(); }
  // Participants actually running (1 + worker threads).
  int started() const { return started_.load(); }

  // Runs fn over [0, n) in parts of at least `grain` elements. An exception thrown by fn on any
  // thread is rethrown here after every part has finished.
  void parallel_for(int64_t n, int64_t grain, const RangeFn& fn);

  ~ThreadPool();

 private:
  ThreadPool();
  void start(int n);  // never throws: keeps the threads the system gives
  void stop();
  void apply_pending_resize();  // with owner_ held
  void worker_loop();
  // Claims the next part of job `id`; -1 when the job has no part left (or is not current).
  int claim(uint32_t id);
  void run_part(int part);

  std::atomic<int> requested_{1};
  std::atomic<int> started_{1};
  std::atomic<bool> resize_pending_{false};
  std::vector<std::thread> workers_;
  std::mutex owner_;  // held by the caller that currently drives the workers

  std::mutex wake_mutex_;
  std::condition_variable wake_cv_;
  std::atomic<bool> quit_{false};

  std::atomic<uint64_t> ticket_{0};  // job id | parts | next part (thread_pool.cc)
  uint32_t job_id_ = 0;              // owner only
  // The current job; written by the owner before publishing its ticket, read after a claim.
  std::atomic<const RangeFn*> job_fn_{nullptr};
  std::atomic<int64_t> job_n_{0};
  std::atomic<int64_t> job_chunk_{0};
  std::atomic<int> job_pending_{0};
  std::mutex error_mutex_;
  std::exception_ptr job_error_;
};

// Convenience: run fn(begin, end) over [0, n); inline when the work is too small to share.
inline void parallel_for(int64_t n, int64_t grain, const ThreadPool::RangeFn& fn) {
  ThreadPool::instance().parallel_for(n, grain, fn);
}

// Runs fn(stage, slice) for every stage in [0, stages) and slice in [0, slices), where every item
// of a stage may read what every item of the previous stage wrote (a recurrence: stage = time
// step, slice = a range of hidden units). One pool job for all the stages: each participant owns
// a home range of slices, runs its items stage after stage, and meets the others at one atomic
// counter per stage instead of a pool hand-off. An item becomes runnable when the whole previous
// stage is done; it is claimed by one compare-and-swap, so it runs exactly once, by any thread. A
// participant that finds no home item runnable for a while takes another slice's runnable item,
// so a worker that is late, asleep or descheduled (or absent: a nested or concurrent call runs
// every part on its own thread) delays the job instead of deadlocking it. Items of one slice
// never run at the same time (each waits for the previous stage), and the order within a stage is
// the only freedom, so results cannot depend on which thread ran what. fn must not throw.
using StageFn = std::function<void(int64_t stage, int64_t slice)>;
void parallel_stages(int64_t stages, int64_t slices, const StageFn& fn);

}  // namespace rnnkit
