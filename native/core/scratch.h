// Scratch memory for calls, recycled across calls: a small inference call (one step of a batch of
// streams) used to malloc a few large buffers and free them again, and glibc hands blocks of that
// size to mmap (or trims them off the heap's top on free), so every call paid ~100 page faults for
// the kernel to map and zero them again. Blocks come back here instead and wait for the next call.
//
// One pool for the whole process, shared by every thread (the JavaScript threads, the libuv
// threads of async calls, the worker pool) behind one mutex, taken twice per block: concurrent
// calls always get distinct blocks. Blocks are sized in powers of two (≥ 4 KB); at most
// kMaxCachedBytes wait for reuse (the rest go back to malloc), so what the pool holds is bounded
// whatever the number of threads. The contents of a block are undefined (not zeroed).
#pragma once
#include <utility>
#include <cstddef>
#include <cstdint>

namespace rnnkit {

class ScratchPool {
 public:
  static constexpr size_t kMaxCachedBytes = size_t(32) << 20;
  // A block of at least `bytes` (64-byte aligned); `size_class` receives its size for give().
  static void* take(size_t bytes, size_t& size_class);
  static void give(void* p, size_t size_class);
  // Bytes waiting in the pool (for tests and diagnostics).
  static size_t cached_bytes();
};

// n scalars of scratch for the lifetime of the object (uninitialised; n = 0: no memory).
template <typename S>
class Scratch {
 public:
  Scratch() = default;
  explicit Scratch(int64_t n) { reset(n); }
  ~Scratch() { release(); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  Scratch(Scratch&& o) noexcept : p_(o.p_), n_(o.n_), size_class_(o.size_class_) { o.p_ = nullptr; o.n_ = 0; }
  // Drops the old block and takes one for n scalars.
  void reset(int64_t n) {
    release();
    if (n <= 0) return;
    p_ = static_cast<S*>(ScratchPool::take(size_t(n) * sizeof(S), size_class_));
    n_ = n;
  }
  S* data() const { return p_; }
  int64_t size() const { return n_; }
  void swap(Scratch& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    std::swap(size_class_, o.size_class_);
  }

 private:
  void release() {
    if (p_) ScratchPool::give(p_, size_class_);
    p_ = nullptr;
    n_ = 0;
  }
  S* p_ = nullptr;
  int64_t n_ = 0;
  size_t size_class_ = 0;
};

}  // namespace rnnkit
