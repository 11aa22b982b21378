#include "scratch.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

namespace rnnkit {

namespace {

struct PoolState {
  std::mutex mutex;
  std::vector<void*> lists[64];  // by log2 of the size class
  size_t cached = 0;
};
// Never destroyed: a call may still finish on another thread during process exit.
PoolState& pool() {
  static PoolState* p = new PoolState();
  return *p;
}

int index_of(size_t size_class) { return __builtin_ctzll(size_class); }

}  // namespace

void* ScratchPool::take(size_t bytes, size_t& size_class) {
  size_class = 4096;
  while (size_class < bytes) {
    if (size_class > (SIZE_MAX >> 2)) throw std::bad_alloc();
    size_class <<= 1;
  }
  PoolState& s = pool();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto& list = s.lists[index_of(size_class)];
    if (!list.empty()) {
      void* p = list.back();
      list.pop_back();
      s.cached -= size_class;
      return p;
    }
  }
  void* p = std::aligned_alloc(64, size_class);
  if (!p) throw std::bad_alloc();
  return p;
}

void ScratchPool::give(void* p, size_t size_class) {
  PoolState& s = pool();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.cached + size_class <= kMaxCachedBytes) {
      try {
        s.lists[index_of(size_class)].push_back(p);
        s.cached += size_class;
        return;
      } catch (const std::bad_alloc&) {
        // no room for the list entry: free the block below
      }
    }
  }
  std::free(p);
}

size_t ScratchPool::cached_bytes() {
  PoolState& s = pool();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.cached;
}

}  // namespace rnnkit
