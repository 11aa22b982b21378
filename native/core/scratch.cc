#include "scratch.h"

#include <cstdlib>
#include <cstring>
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

namespace {
// The ASan build (CMakeLists.txt) hands every block out as all-ones bytes: NaN as float and as
// double, so a read of scratch that nothing wrote shows in the results instead of reading whatever
// an earlier call left (often the very values it would have computed).
inline void* handed_out(void* p, size_t size_class) {
#ifdef RNNKIT_SCRATCH_POISON
  std::memset(p, 0xFF, size_class);
#else
  (void)size_class;
#endif
  return p;
}
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
      return handed_out(p, size_class);
    }
  }
  void* p = std::aligned_alloc(64, size_class);
  if (!p) throw std::bad_alloc();
  return handed_out(p, size_class);
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
