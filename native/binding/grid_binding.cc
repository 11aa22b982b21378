// Prepared stacks and the grid driver, from JavaScript.
//
//   prepareStack(spec, weights) -> stack handle (an opaque object)
//     spec:    { numLayers, numDirections, version?, cells: [cell config × numLayers·numDirections] }
//              (a cell config is forward()'s config without steps, batch and reverse)
//     weights: [{ weightIh, weightHh, biasIh?, biasHh?, peephole?, weightHr?, weightGr? } × cells]
//     The weights are copied and packed now; the handle is immutable (prepare again after a change).
//   stackForward(stack, call) / stackForwardAsync -> { y, hN, cN?, run? }
//     call: { steps, batch, x [T, B, I] ([B, T, I] with batchFirst), lengths? Int32Array [B], mask? Uint8Array [B, T],
//             prePadding?, processingOrder?, h0? [L·D, B, P], c0? [L·D, B, H],
//             merge?: 'concat' | 'sum' | 'mul' | 'ave', training?, outputs?: 'sequence' | 'states',
//             dropout?: { seed, inputKeep, stateKeep, outputKeep, betweenKeep, variational, stateOnInitial } }
//     outputs 'states': the caller wants the final states only (a layer returning its last output):
//     no y is made or returned, and inference then needs no memory in proportion to the steps
//     (grid.cc, grid_infer) but for the input and a bidirectional stack's intermediate layers.
//   stackBackward(run, call) / stackBackwardAsync -> { dx?, dh0, dc0?, grads: [{ weightIh, … } × cells] }
//     call: { dy? [T, B, width] (the forward's layout), dhN? [L·D, B, P], dcN? [L·D, B, H], inputGradient? (default true) }
//   stackInfo(stack) -> { version, bytes, float64, layers, directions }
//
// Outputs are allocated natively and handed to JavaScript without a copy. An async call copies its
// inputs (O(input), never the weights: it holds the prepared stack) so JavaScript may change,
// transfer or resize its buffers meanwhile; its work touches no JavaScript.
#include "grid_binding.h"

#include <algorithm>
#include <atomic>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "../core/grid.h"
#include "../core/thread_pool.h"
#include "checks.h"

namespace rnnkit {
namespace binding {
namespace {

constexpr napi_type_tag kStackTag = {0x5f1d2c3b4a596877ull, 0x8899aabbccddeeffull};
constexpr napi_type_tag kRunTag = {0x1b2c3d4e5f607182ull, 0x93a4b5c6d7e8f901ull};

struct StackHolder {
  std::shared_ptr<PreparedStackBase> stack;
  size_t bytes = 0;
};

struct RunHolder {
  std::shared_ptr<PreparedStackBase> stack;
  std::shared_ptr<GridRun<float>> f32;
  std::shared_ptr<GridRun<double>> f64;
  int64_t T = 0, B = 0, width = 0;
  bool batch_first = false;  // the forward's layout, which dy and dx share
  size_t bytes = 0;
};

// Live native objects (for tests and the memory accounting of services).
std::atomic<int64_t> g_live_stacks{0}, g_live_runs{0}, g_live_stack_bytes{0}, g_live_run_bytes{0};

void count(const StackHolder* h, int sign) {
  g_live_stacks += sign;
  g_live_stack_bytes += sign * int64_t(h->bytes);
}
void count(const RunHolder* h, int sign) {
  g_live_runs += sign;
  g_live_run_bytes += sign * int64_t(h->bytes);
}

// The native memory of live stacks and runs, as V8 is told of it (napi_adjust_external_memory):
// only what exceeds kUnreportedNativeBytes. Every byte reported counts towards V8's external-memory
// limit, and crossing it starts a full mark-compact: a training loop that reported each run's
// activations (D2: ~45 MB a call, released right after its backward) had V8 mark the whole heap
// every 3–4 calls (18–19 mark-compacts in 4 s; 3 without the reports), on helper threads that take
// the cores from the kernels' threads while those meet at their per-step barriers.
// Under the budget a loop that releases its runs (or changes the weights, which frees the stale
// ones) reports nothing; runs left to the garbage collector pile up to the budget unreported, and
// every byte past it is reported, so V8 still collects them. Per thread: each Node environment (the
// main thread, each worker) has its own heap and calls in on its own thread.
constexpr int64_t kUnreportedNativeBytes = int64_t(256) << 20;
struct NativeBytes {
  int64_t live = 0, reported = 0;
};
thread_local NativeBytes t_native_bytes;
void account_native_bytes(napi_env env, int64_t delta) {
  NativeBytes& n = t_native_bytes;
  n.live += delta;
  const int64_t want = std::max<int64_t>(0, n.live - kUnreportedNativeBytes);
  if (want == n.reported) return;
  int64_t unused = 0;
  napi_adjust_external_memory(env, want - n.reported, &unused);
  n.reported = want;
}

template <typename Holder>
void finalize_holder(napi_env env, void* data, void*) {
  Holder* h = static_cast<Holder*>(data);
  account_native_bytes(env, -int64_t(h->bytes));
  if (h->stack) count(h, -1);  // (a released holder was uncounted then)
  delete h;
}

// A plain object that owns `holder` (freed with the object) and carries `tag`.
template <typename Holder>
Napi::Object wrap_holder(Napi::Env env, Holder* holder, const napi_type_tag& tag) {
  Napi::Object obj = Napi::Object::New(env);
  if (napi_wrap(env, obj, holder, finalize_holder<Holder>, nullptr, nullptr) != napi_ok) {
    delete holder;
    throw Napi::Error::New(env, "rnnkit: could not wrap a native object");
  }
  napi_type_tag_object(env, obj, &tag);
  count(holder, +1);
  account_native_bytes(env, int64_t(holder->bytes));
  return obj;
}

template <typename Holder>
Holder* unwrap_holder(const Napi::Value& v, const napi_type_tag& tag, const std::string& what) {
  Napi::Env env = v.Env();
  bool ok = false;
  if (v.IsObject()) napi_check_object_type_tag(env, v, &tag, &ok);
  if (!ok) throw Napi::TypeError::New(env, what);
  void* data = nullptr;
  if (napi_unwrap(env, v, &data) != napi_ok || !data) throw Napi::TypeError::New(env, what);
  return static_cast<Holder*>(data);
}

// An output typed array created now over an uninitialised Node buffer (freed by the garbage
// collector like any other, never waiting for the event loop) and zeroed, then written, by the
// call's work, which may run on another thread: JavaScript cannot reach it before the call
// returns it. Nothing touches its pages on the JavaScript thread (a zero-filled allocation of a
// few hundred kilobytes costs ~0.1 ms there in page faults).
struct OutputArray {
  Napi::Reference<Napi::Value> ref;
  void* data = nullptr;
  size_t bytes = 0;
  bool present() const { return data != nullptr; }
  void zero() const { if (data) std::memset(data, 0, bytes); }
  // An output the call writes whole: nothing to do, but in the sanitizer build (RNNKIT_SCRATCH_POISON)
  // it is filled with NaN first, so that an element the work left unwritten fails the tests instead of
  // leaking the buffer's old contents.
  void poison() const {
#ifdef RNNKIT_SCRATCH_POISON
    if (data) std::memset(data, 0xFF, bytes);
#endif
  }
};

// A typed array of n elements over `buffer` (an ArrayBuffer) from byte `offset`.
Napi::Value typed_view(Napi::Env env, bool f64, size_t n, const Napi::ArrayBuffer& buffer, size_t offset) {
  return f64 ? Napi::Value(Napi::Float64Array::New(env, n, buffer, offset))
             : Napi::Value(Napi::Float32Array::New(env, n, buffer, offset));
}

// An uninitialised Node buffer of `bytes`: its data and its ArrayBuffer (and the data's byte
// offset in it, a multiple of 8).
struct RawBuffer {
  void* data = nullptr;
  napi_value ab = nullptr;
  size_t offset = 0;
};
RawBuffer new_buffer(Napi::Env env, size_t bytes) {
  RawBuffer r;
  napi_value buf = nullptr;
  size_t length = 0;
  napi_typedarray_type type;
  if (napi_create_buffer(env, bytes, &r.data, &buf) != napi_ok ||
      napi_get_typedarray_info(env, buf, &type, &length, &r.data, &r.ab, &r.offset) != napi_ok || r.offset % 8 != 0)
    throw Napi::RangeError::New(env, "out of memory for an output of " + std::to_string(bytes) + " bytes");
  return r;
}

OutputArray new_output(Napi::Env env, bool f64, size_t n) {
  OutputArray o;
  o.bytes = std::max<size_t>(n, 1) * (f64 ? 8 : 4);
  const RawBuffer r = new_buffer(env, o.bytes);
  o.ref = Napi::Persistent(typed_view(env, f64, n, Napi::ArrayBuffer(env, r.ab), r.offset));
  o.data = r.data;
  return o;
}

// The outputs of one call, each (out, n elements) with out null for an absent one. Those under
// kSharedOutputBytes share one Node buffer, each at a 64-byte boundary; larger ones get their own.
// Every Node buffer costs a malloc on this thread and a free by V8's array-buffer sweeper on one of
// its worker threads (the two contend for malloc's arena lock): a small call's three or more
// outputs in separate buffers were ~12 % of an LSTM(64 → 128) B 1 T 1 forward (perf). Sharing keeps
// a small block alive as long as any of its arrays; a large output does not pin or get pinned.
constexpr size_t kSharedOutputBytes = size_t(64) << 10;
void new_outputs(Napi::Env env, bool f64, const std::vector<std::pair<OutputArray*, size_t>>& outs) {
  const size_t es = f64 ? 8 : 4;
  auto bytes_of = [&](size_t n) { return std::max<size_t>(n, 1) * es; };
  auto padded = [](size_t b) { return (b + 63) / 64 * 64; };
  size_t shared = 0;
  int shared_count = 0;
  for (const auto& [o, n] : outs)
    if (o && bytes_of(n) < kSharedOutputBytes) shared += padded(bytes_of(n)), ++shared_count;
  if (shared_count < 2) shared = 0;  // one small output alone: its own buffer, as any other
  RawBuffer block;
  if (shared) block = new_buffer(env, shared + 64);  // + 64: the data may start anywhere 8-aligned
  const size_t lead = shared ? padded(reinterpret_cast<uintptr_t>(block.data)) - reinterpret_cast<uintptr_t>(block.data) : 0;
  size_t at = lead;
  for (const auto& [o, n] : outs) {
    if (!o) continue;
    if (!shared || bytes_of(n) >= kSharedOutputBytes) {
      *o = new_output(env, f64, n);
      continue;
    }
    o->bytes = bytes_of(n);
    o->data = static_cast<char*>(block.data) + at;
    o->ref = Napi::Persistent(typed_view(env, f64, n, Napi::ArrayBuffer(env, block.ab), block.offset + at));
    at += padded(o->bytes);
  }
}

int64_t read_count(const Napi::Object& o, const char* name, const std::string& where, int64_t lo, int64_t hi) {
  Napi::Value v = o.Get(name);
  const std::string what = where + "." + name;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), what + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= double(lo) && d <= double(hi)) || d != std::floor(d))
    throw Napi::RangeError::New(o.Env(), what + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(d));
  return int64_t(d);
}

// An Int32Array / Uint8Array argument (lengths, mask): checked like the float buffers.
template <typename I>
const I* index_array(const Napi::Value& v, const std::string& name, int64_t length, const std::string& shape) {
  Napi::Env env = v.Env();
  constexpr napi_typedarray_type want = std::is_same_v<I, int32_t> ? napi_int32_array : napi_uint8_array;
  const char* type_name = std::is_same_v<I, int32_t> ? "Int32Array" : "Uint8Array";
  if (!v.IsTypedArray()) throw Napi::TypeError::New(env, name + ": expected an " + std::string(type_name) + " of shape " + shape);
  napi_typedarray_type type;
  size_t elements = 0, offset = 0;
  napi_value buffer;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &elements, &data, &buffer, &offset) != napi_ok || type != want)
    throw Napi::TypeError::New(env, name + ": expected an " + std::string(type_name) + " of shape " + shape);
  bool plain = false, detached = false;
  napi_is_arraybuffer(env, buffer, &plain);
  if (!plain) throw Napi::TypeError::New(env, name + ": typed arrays over a SharedArrayBuffer are not accepted");
  napi_is_detached_arraybuffer(env, buffer, &detached);
  if (detached) throw Napi::TypeError::New(env, name + ": its ArrayBuffer is detached (was it transferred?)");
  if (int64_t(elements) != length)
    throw Napi::RangeError::New(env, name + ": expected " + std::to_string(length) + " elements for shape " + shape +
                                         ", got " + std::to_string(elements));
  return static_cast<const I*>(data);
}

// ---------------------------------------------------------------------------------------------
// prepareStack

template <typename S>
std::shared_ptr<PreparedStackBase> build_stack(int L, int D, const std::vector<SeqConfig>& cells,
                                               const std::vector<LayerWeightsView<S>>& views) {
  auto st = std::make_shared<PreparedStack<S>>();
  st->layers = L;
  st->directions = D;
  st->float64 = std::is_same_v<S, double>;
  for (size_t i = 0; i < cells.size(); ++i) {
    st->cells.push_back(std::make_unique<PreparedLayer<S>>(cells[i], views[i]));
    st->bytes += st->cells.back()->bytes();
  }
  return st;
}

Napi::Value PrepareStack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject()) throw Napi::TypeError::New(env, "spec: expected { numLayers, numDirections, cells }");
  Napi::Object spec = info[0].As<Napi::Object>();
  const int L = int(read_count(spec, "numLayers", "spec", 1, 4096));
  const int D = int(read_count(spec, "numDirections", "spec", 1, 2));
  const double version = read_number(spec, "spec", "version", 0, -9e15, 9e15);
  Napi::Value cells_v = spec.Get("cells");
  if (!cells_v.IsArray() || cells_v.As<Napi::Array>().Length() != uint32_t(L * D))
    throw Napi::TypeError::New(env, "spec.cells: expected an array of numLayers·numDirections = " + std::to_string(L * D) + " cell configs");
  if (!info[1].IsArray() || info[1].As<Napi::Array>().Length() != uint32_t(L * D))
    throw Napi::TypeError::New(env, "weights: expected an array of numLayers·numDirections = " + std::to_string(L * D) + " objects");
  Napi::Array cells_a = cells_v.As<Napi::Array>(), weights_a = info[1].As<Napi::Array>();
  std::vector<SeqConfig> cells;
  for (int i = 0; i < L * D; ++i) cells.push_back(read_cell(cells_a.Get(uint32_t(i)), "spec.cells[" + std::to_string(i) + "]"));
  const SeqConfig& c0 = cells[0];
  for (int i = 0; i < L * D; ++i) {
    const SeqConfig& c = cells[size_t(i)];
    const std::string w = "spec.cells[" + std::to_string(i) + "]";
    if (c.cell != c0.cell || c.H != c0.H || c.state_size() != c0.state_size())
      throw Napi::TypeError::New(env, w + ": every cell of a stack must have the cell kind, hiddenSize and projSize of cells[0]");
    const int64_t want_i = i < D ? c0.I : int64_t(D) * c0.state_size();
    if (c.I != want_i)
      throw Napi::RangeError::New(env, w + ".inputSize: expected " + std::to_string(want_i) +
                                           (i < D ? " (the stack's input size, cells[0].inputSize)" : " (numDirections·output size of the layer below)") +
                                           ", got " + std::to_string(c.I));
  }
  // Every buffer of every cell is read first, then all are checked, then copied: no JavaScript runs
  // between the checks and the copies.
  std::vector<std::unique_ptr<BufferReader>> readers;
  std::vector<std::vector<BufferBinding>> bindings(size_t(L * D));
  std::vector<CellParamSet<const void>> ptrs(size_t(L * D));
  for (int i = 0; i < L * D; ++i) {
    const SeqConfig& c = cells[size_t(i)];
    const std::string w = "weights[" + std::to_string(i) + "]";
    readers.push_back(std::make_unique<BufferReader>(weights_a.Get(uint32_t(i)), &bindings[size_t(i)], w));
    BufferReader& r = *readers.back();
    for (int j = 0; j < kCellParamCount; ++j) {
      const CellParam p = CellParam(j);
      const CellParamInfo& info = kCellParams[j];
      if (cell_has_param(c, p))
        r.bind(&ptrs[size_t(i)][p], info.name, cell_param_elems(c, p), cell_param_shape(c, p), !info.optional, false,
               w + "." + info.name);
    }
  }
  DType dtype = DType::kUnset;
  for (int i = 0; i < L * D; ++i) {
    readers[size_t(i)]->check();
    const DType d = readers[size_t(i)]->dtype();
    if (dtype == DType::kUnset) dtype = d;
    else if (d != dtype)
      throw Napi::TypeError::New(env, "weights[" + std::to_string(i) + "]: expected " + dtype_name(dtype) + "s like weights[0] (one dtype per stack), got " + dtype_name(d));
  }
  auto make_views = [&](auto tag) {
    using S = decltype(tag);
    std::vector<LayerWeightsView<S>> views(size_t(L * D));
    for (int i = 0; i < L * D; ++i)
      for (int j = 0; j < kCellParamCount; ++j) views[size_t(i)].p[j] = static_cast<const S*>(ptrs[size_t(i)].p[j]);
    return views;
  };
  auto holder = std::make_unique<StackHolder>();
  try {
    holder->stack = dtype == DType::kFloat64 ? build_stack<double>(L, D, cells, make_views(double()))
                                             : build_stack<float>(L, D, cells, make_views(float()));
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "prepareStack: out of memory for the weights");
  }
  holder->stack->version = version;
  holder->bytes = holder->stack->bytes;
  return wrap_holder(env, holder.release(), kStackTag);
}

// releaseStack(stack) / releaseRun(run): frees the native memory now instead of when the garbage
// collector and then the event loop get to the handle (calls in flight keep what they use until
// they finish). Using a released handle is an error.
Napi::Value ReleaseStack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  StackHolder* h = unwrap_holder<StackHolder>(info.Length() ? info[0] : env.Undefined(), kStackTag,
                                              "stack: expected a handle from prepareStack()");
  if (h->stack) {
    account_native_bytes(env, -int64_t(h->bytes));
    count(h, -1);
    h->stack.reset();
    h->bytes = 0;
  }
  return env.Undefined();
}

Napi::Value ReleaseRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RunHolder* h = unwrap_holder<RunHolder>(info.Length() ? info[0] : env.Undefined(), kRunTag,
                                          "run: expected the run of a stackForward(…, { training: true })");
  if (h->stack) {
    account_native_bytes(env, -int64_t(h->bytes));
    count(h, -1);
    h->stack.reset();
    h->f32.reset();
    h->f64.reset();
    h->bytes = 0;
  }
  return env.Undefined();
}

Napi::Value StackInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  StackHolder* h = unwrap_holder<StackHolder>(info.Length() ? info[0] : env.Undefined(), kStackTag,
                                              "stack: expected a handle from prepareStack()");
  if (!h->stack) throw Napi::TypeError::New(env, "stack: this prepared stack was released");
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", h->stack->version);
  o.Set("bytes", double(h->stack->bytes));
  o.Set("float64", h->stack->float64);
  o.Set("layers", h->stack->layers);
  o.Set("directions", h->stack->directions);
  return o;
}

// ---------------------------------------------------------------------------------------------
// Calls

// One checked call, runnable on any thread: work() computes, result(env) builds the JS value.
struct Call {
  virtual ~Call() = default;
  virtual void work() = 0;
  virtual Napi::Value result(Napi::Env env) = 0;
};

// Memory for the input copies of async calls, recycled: a fresh block of a few hundred kilobytes
// costs the JavaScript thread its page faults as the copy first writes it (~0.3 ms for 256 KB,
// measured: the larger part of issuing a call); a recycled block is already mapped. Blocks are
// sized in powers of two; at most kMaxCachedBytes wait for reuse, the rest go back to malloc.
class CopyPool {
 public:
  static constexpr size_t kMaxCachedBytes = size_t(64) << 20;
  static void* take(size_t bytes, size_t& size_class) {
    size_class = 64;
    while (size_class < bytes) size_class <<= 1;
    {
      std::lock_guard<std::mutex> lock(mutex());
      auto& list = lists()[index(size_class)];
      if (!list.empty()) {
        void* p = list.back();
        list.pop_back();
        cached() -= size_class;
        return p;
      }
    }
    void* p = std::malloc(size_class);
    if (!p) throw std::bad_alloc();
    return p;
  }
  static void give(void* p, size_t size_class) {
    {
      std::lock_guard<std::mutex> lock(mutex());
      if (cached() + size_class <= kMaxCachedBytes) {
        lists()[index(size_class)].push_back(p);
        cached() += size_class;
        return;
      }
    }
    std::free(p);
  }

 private:
  static int index(size_t size_class) { return __builtin_ctzll(size_class); }
  // Never destroyed (a call may finish during process exit).
  static std::mutex& mutex() { static auto* m = new std::mutex(); return *m; }
  static std::vector<void*>* lists() { static auto* l = new std::vector<void*>[64]; return l; }
  static size_t& cached() { static size_t n = 0; return n; }
};

// A copy an async call owns (recycled through CopyPool).
class InputCopy {
 public:
  InputCopy() = default;
  InputCopy(const InputCopy&) = delete;
  InputCopy& operator=(const InputCopy&) = delete;
  ~InputCopy() { if (data_) CopyPool::give(data_, size_class_); }
  const void* assign(const void* p, size_t bytes) {
    data_ = CopyPool::take(std::max<size_t>(1, bytes), size_class_);
    std::memcpy(data_, p, bytes);
    return data_;
  }
  // A block of `bytes` for an async call to write (copied out on completion), from the same pool.
  void* reserve(size_t bytes) {
    data_ = CopyPool::take(std::max<size_t>(1, bytes), size_class_);
    return data_;
  }

 private:
  void* data_ = nullptr;
  size_t size_class_ = 0;
};

// Borrows a checked input (sync), or copies it (async, so JavaScript may change it meanwhile).
template <typename T>
const T* keep(const T* p, size_t bytes, bool copy, InputCopy& own) {
  if (!p || !copy) return p;
  return static_cast<const T*>(own.assign(p, bytes));
}

template <typename S>
const PreparedStack<S>& typed(const PreparedStackBase& b) { return static_cast<const PreparedStack<S>&>(b); }

struct ForwardCall : Call {
  std::shared_ptr<PreparedStackBase> stack;
  GridShape shape;
  MergeMode merge = MergeMode::kConcat;
  DropoutSpec dropout;
  bool training = false;
  bool want_y = true;  // call.outputs 'sequence' (the default) or 'states'
  int64_t width = 0;
  const void* x = nullptr;
  const void* h0 = nullptr;
  const void* c0 = nullptr;
  InputCopy x_own, h0_own, c0_own, lengths_own, mask_own;
  OutputArray y, hn, cn;
  // call.y, the caller's array for the output: a sync call writes it in place (y is it); an async
  // call writes y_stage and copies it into y_user on completion (JavaScript may transfer or resize
  // the array meanwhile: it is checked again then).
  Napi::Reference<Napi::Value> y_user;  // (async only)
  InputCopy y_stage;  // (pooled, so no fresh pages or buffer per call)
  std::shared_ptr<GridRun<float>> run_f;
  std::shared_ptr<GridRun<double>> run_d;
  size_t run_bytes = 0;

  template <typename S>
  void work_typed(std::shared_ptr<GridRun<S>>& run) {
    auto st = std::static_pointer_cast<const PreparedStack<S>>(std::shared_ptr<const PreparedStackBase>(stack));
    GridForwardIO<S> io;
    io.x = static_cast<const S*>(x);
    io.h0 = static_cast<const S*>(h0);
    io.c0 = static_cast<const S*>(c0);
    io.y = static_cast<S*>(y.data);
    io.h_n = static_cast<S*>(hn.data);
    io.c_n = static_cast<S*>(cn.data);
    run = grid_forward<S>(st, shape, merge, dropout, training, io);
    if (run) run_bytes = grid_run_bytes(*run);
  }
  void work() override {
    // Both write every element of every output (y: each direction's columns of every position, its
    // output, carried or zero; the final states of every row): no zero fill first.
    y.poison();
    hn.poison();
    cn.poison();
    if (stack->float64) work_typed<double>(run_d);
    else work_typed<float>(run_f);
  }
  Napi::Value result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    if (!y_user.IsEmpty()) {  // async: into the caller's array now
      DType d = stack->float64 ? DType::kFloat64 : DType::kFloat32;
      const int64_t length = int64_t(y.bytes / (stack->float64 ? 8 : 4));
      void* dst = typed_array_data(y_user.Value(), "call.y (after the call)", length, "as when the call started", &d);
      std::memcpy(dst, y.data, y.bytes);
      o.Set("y", y_user.Value());
    } else if (y.present()) {
      o.Set("y", y.ref.Value());
    }
    o.Set("hN", hn.ref.Value());
    if (cn.present()) o.Set("cN", cn.ref.Value());
    if (training) {
      auto* h = new RunHolder();
      h->stack = stack;
      h->f32 = run_f;
      h->f64 = run_d;
      h->T = shape.T;
      h->B = shape.B;
      h->width = width;
      h->batch_first = shape.batch_first;
      h->bytes = run_bytes;
      o.Set("run", wrap_holder(env, h, kRunTag));
      o.Set("runBytes", double(run_bytes));
    }
    return o;
  }
};

double read_keep(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return 1;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("call.dropout.") + name + ": expected a keep probability in (0, 1]");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d > 0 && d <= 1))
    throw Napi::RangeError::New(o.Env(), std::string("call.dropout.") + name + ": expected a keep probability in (0, 1], got " + std::to_string(d));
  return d;
}

std::unique_ptr<ForwardCall> parse_forward(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  auto k = std::make_unique<ForwardCall>();
  StackHolder* h = unwrap_holder<StackHolder>(info.Length() ? info[0] : env.Undefined(), kStackTag,
                                              "stack: expected a handle from prepareStack()");
  if (!h->stack) throw Napi::TypeError::New(env, "stack: this prepared stack was released");
  k->stack = h->stack;
  const PreparedStackBase& base = *h->stack;
  if (info.Length() < 2 || !info[1].IsObject()) throw Napi::TypeError::New(env, "call: expected an object");
  Napi::Object call = info[1].As<Napi::Object>();
  const int L = base.layers, D = base.directions;
  const SeqConfig c = base.float64 ? typed<double>(base).at(0, 0).config() : typed<float>(base).at(0, 0).config();
  const int64_t T = read_dim(call, "steps", "call"), B = read_dim(call, "batch", "call");
  const int64_t I = c.I, P = c.state_size(), H = c.H, LD = int64_t(L) * D;
  const bool lstm = c.cell == CellKind::kLstm;
  k->shape.T = T;
  k->shape.B = B;
  k->shape.pre_padding = read_flag(call, "prePadding", "call");
  k->shape.processing_order_output = read_flag(call, "processingOrder", "call");
  k->shape.batch_first = read_flag(call, "batchFirst", "call");
  if (k->shape.processing_order_output && D != 1)
    throw Napi::TypeError::New(env, "call.processingOrder: only for a single direction");
  Napi::Value merge = call.Get("merge");
  if (!merge.IsUndefined()) {
    const std::string m = merge.IsString() ? merge.As<Napi::String>().Utf8Value() : "";
    if (m == "concat") k->merge = MergeMode::kConcat;
    else if (m == "sum") k->merge = MergeMode::kSum;
    else if (m == "mul") k->merge = MergeMode::kMul;
    else if (m == "ave") k->merge = MergeMode::kAve;
    else throw Napi::TypeError::New(env, "call.merge: expected 'concat', 'sum', 'mul' or 'ave'");
    if (k->merge != MergeMode::kConcat && D != 2) throw Napi::TypeError::New(env, "call.merge: '" + m + "' needs two directions");
  }
  k->width = k->merge == MergeMode::kConcat ? D * P : P;
  k->training = read_flag(call, "training", "call");
  Napi::Value outputs = call.Get("outputs");
  if (!outputs.IsUndefined()) {
    const std::string m = outputs.IsString() ? outputs.As<Napi::String>().Utf8Value() : "";
    if (m == "states") k->want_y = false;
    else if (m != "sequence") throw Napi::TypeError::New(env, "call.outputs: expected 'sequence' or 'states'");
  }
  Napi::Value dv = call.Get("dropout");
  if (!dv.IsUndefined()) {
    if (!dv.IsObject()) throw Napi::TypeError::New(env, "call.dropout: expected an object");
    Napi::Object d = dv.As<Napi::Object>();
    const double seed = read_number(d, "call.dropout", "seed", 0, 0, 9007199254740991.0);
    if (seed != std::floor(seed)) throw Napi::RangeError::New(env, "call.dropout.seed: expected an integer");
    k->dropout.seed = uint64_t(seed);
    k->dropout.input_keep = read_keep(d, "inputKeep");
    k->dropout.state_keep = read_keep(d, "stateKeep");
    k->dropout.output_keep = read_keep(d, "outputKeep");
    k->dropout.between_keep = read_keep(d, "betweenKeep");
    k->dropout.variational = read_flag(d, "variational", "call.dropout");
    k->dropout.state_on_initial = read_flag(d, "stateOnInitial", "call.dropout");
  }
  // Sizes: every matrix a step hands to the kernels indexes with 32 bits.
  const double widest = std::max({double(I), double(c.gate_width()), double(D * P), double(H)});
  if (double(B) * widest >= kInt32Limit)
    throw Napi::RangeError::New(env, "call.batch: batch·max(inputSize, gates·hiddenSize) must stay below 2^31");
  if (double(T) * double(B) * widest >= 9e15)
    throw Napi::RangeError::New(env, "call: steps·batch·max(inputSize, gates·hiddenSize) must stay below 2^53");
  if (k->training) {
    if (double(T) * double(B) * widest >= kInt32Limit)
      throw Napi::RangeError::New(env, "call: training needs steps·batch·max(inputSize, gates·hiddenSize) below 2^31; "
                                       "split the sequence (truncated BPTT) or the batch");
    const double need = base.float64 ? grid_training_bytes(typed<double>(base), T, B) : grid_training_bytes(typed<float>(base), T, B);
    const double limit = g_max_training_bytes.load();
    if (need > limit)
      throw Napi::RangeError::New(env, "call: training this sequence needs about " + format_bytes(need) + ", above the limit of " +
                                           format_bytes(limit) + "; shorten the sequence or the batch, or raise the limit with "
                                           "setMaxTrainingBytes() or RNNKIT_MAX_TRAINING_BYTES");
  }
  // Buffers: read every value, then check them all (no JavaScript in between), then use them.
  std::vector<BufferBinding> bindings;
  BufferReader r(call, &bindings, "call", base.float64 ? DType::kFloat64 : DType::kFloat32);
  const std::string s_x = k->shape.batch_first ? shape_str({{"batch", B}, {"steps", T}, {"inputSize", I}})
                                               : shape_str({{"steps", T}, {"batch", B}, {"inputSize", I}});
  const char* p_name = c.P > 0 ? "projSize" : "hiddenSize";
  const std::string s_h = shape_str({{"layers·directions", LD}, {"batch", B}, {p_name, P}});
  const std::string s_c = shape_str({{"layers·directions", LD}, {"batch", B}, {"hiddenSize", H}});
  r.bind(&k->x, "x", T * B * I, s_x, true, false);
  void* y_user = nullptr;
  const std::string s_y = k->shape.batch_first ? shape_str({{"batch", B}, {"steps", T}, {"width", k->width}})
                                               : shape_str({{"steps", T}, {"batch", B}, {"width", k->width}});
  r.bind(&y_user, "y", T * B * k->width, s_y, false, true);
  r.bind(&k->h0, "h0", LD * B * P, s_h, false, false);
  if (lstm) r.bind(&k->c0, "c0", LD * B * H, s_c, false, false);
  Napi::Value lengths = call.Get("lengths"), mask = call.Get("mask");
  r.check();
  if (y_user && !k->want_y) throw Napi::TypeError::New(env, "call.y: only with outputs 'sequence' (no per-step output is made with 'states')");
  if (!lengths.IsUndefined() && !mask.IsUndefined())
    throw Napi::TypeError::New(env, "call: give lengths or mask, not both");
  if (!lengths.IsUndefined()) k->shape.lengths = index_array<int32_t>(lengths, "call.lengths", B, shape_str({{"batch", B}}));
  if (!mask.IsUndefined()) k->shape.mask = index_array<uint8_t>(mask, "call.mask", B * T, shape_str({{"batch", B}, {"steps", T}}));
  if (k->shape.pre_padding && !k->shape.lengths) throw Napi::TypeError::New(env, "call.prePadding: needs call.lengths");
  const std::string problem = grid_check_shape(k->shape);
  if (!problem.empty()) throw Napi::RangeError::New(env, "call." + problem);
  // Keep the inputs: borrowed by a sync call, copied by an async one.
  const size_t es = base.float64 ? 8 : 4;
  k->x = keep(k->x, size_t(T * B * I) * es, async, k->x_own);
  k->h0 = keep(k->h0, size_t(LD * B * P) * es, async, k->h0_own);
  k->c0 = keep(k->c0, size_t(LD * B * H) * es, async, k->c0_own);
  k->shape.lengths = keep(k->shape.lengths, size_t(B) * sizeof(int32_t), async, k->lengths_own);
  k->shape.mask = keep(k->shape.mask, size_t(B * T), async, k->mask_own);
  if (y_user) {
    // It must not overlap what the call reads: x, h0, c0 (the output is written while they are read).
    const size_t y_bytes = size_t(T * B * k->width) * es;
    auto overlaps = [&](const void* p, size_t n) {
      const char *a = static_cast<const char*>(p), *b = static_cast<const char*>(y_user);
      return p && a < b + y_bytes && b < a + n;
    };
    if (overlaps(k->x, size_t(T * B * I) * es) || overlaps(k->h0, size_t(LD * B * P) * es) || overlaps(k->c0, size_t(LD * B * H) * es))
      throw Napi::RangeError::New(env, "call.y: shares memory with an input (x, h0 or c0); the output needs a buffer of its own");
    for (const BufferBinding& b : bindings) {
      if (b.field != reinterpret_cast<void**>(&y_user)) continue;
      if (async) k->y_user = Napi::Persistent(b.ref.Value());
      else k->y.ref = Napi::Persistent(b.ref.Value());
    }
    k->y.data = async ? k->y_stage.reserve(y_bytes) : y_user;
    k->y.bytes = y_bytes;
  }
  new_outputs(env, base.float64, {{k->want_y && !y_user ? &k->y : nullptr, size_t(T * B * k->width)},
                                   {&k->hn, size_t(LD * B * P)},
                                   {lstm ? &k->cn : nullptr, size_t(LD * B * H)}});
  return k;
}

struct BackwardCall : Call {
  RunHolder run;  // a copy of the holder's pointers: the run stays alive while the call does
  const void* dy = nullptr;
  const void* dh_n = nullptr;
  const void* dc_n = nullptr;
  bool input_gradient = true;
  InputCopy dy_own, dh_own, dc_own;
  // Outputs: dx, dh0, dc0, then per cell one per parameter (cell_params.h), absent where the cell has none.
  static constexpr int kPerCell = kCellParamCount;
  std::vector<OutputArray> out;

  template <typename S>
  void work_typed(const GridRun<S>& grid_run) {
    const PreparedStack<S>& st = typed<S>(*run.stack);
    const int LD = st.layers * st.directions;
    GridBackwardIO<S> io;
    io.dy = static_cast<const S*>(dy);
    io.dh_n = static_cast<const S*>(dh_n);
    io.dc_n = static_cast<const S*>(dc_n);
    io.dx = static_cast<S*>(out[0].data);
    io.dh0 = static_cast<S*>(out[1].data);
    io.dc0 = static_cast<S*>(out[2].data);
    io.grads.resize(size_t(LD));
    for (int i = 0; i < LD; ++i)
      for (int j = 0; j < kPerCell; ++j) io.grads[size_t(i)].grad.p[j] = static_cast<S*>(out[size_t(3 + kPerCell * i + j)].data);
    grid_backward(grid_run, io);
  }
  void work() override {
    // grid_backward writes every element of every output (dx with zeros where no step reads the
    // input): no zero fill (it was a serial memset of all the gradients on the calling thread, ~1 %
    // of a GRU(128 → 256) B 32 training step, perf).
    for (const OutputArray& o : out) o.poison();
    if (run.stack->float64) work_typed<double>(*run.f64);
    else work_typed<float>(*run.f32);
  }
  Napi::Value result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    if (out[0].present()) o.Set("dx", out[0].ref.Value());
    o.Set("dh0", out[1].ref.Value());
    if (out[2].present()) o.Set("dc0", out[2].ref.Value());
    const int LD = run.stack->layers * run.stack->directions;
    Napi::Array grads = Napi::Array::New(env, size_t(LD));
    for (int i = 0; i < LD; ++i) {
      Napi::Object g = Napi::Object::New(env);
      for (int j = 0; j < kPerCell; ++j) {
        const OutputArray& v = out[size_t(3 + kPerCell * i + j)];
        if (v.present()) g.Set(kCellParams[j].name, v.ref.Value());
      }
      grads.Set(uint32_t(i), g);
    }
    o.Set("grads", grads);
    return o;
  }
};

// The outputs of a backward call, allocated now (see OutputArray).
template <typename S>
void allocate_gradients(Napi::Env env, BackwardCall& k) {
  const PreparedStack<S>& st = typed<S>(*k.run.stack);
  const int LD = st.layers * st.directions;
  const SeqConfig& c0 = st.at(0, 0).config();
  const bool f64 = std::is_same_v<S, double>;
  const int64_t T = k.run.T, B = k.run.B;
  k.out.resize(size_t(3 + BackwardCall::kPerCell * LD));
  std::vector<std::pair<OutputArray*, size_t>> outs;
  if (k.input_gradient) outs.emplace_back(&k.out[0], size_t(T * B * c0.I));
  outs.emplace_back(&k.out[1], size_t(LD * B * c0.state_size()));
  if (c0.cell == CellKind::kLstm) outs.emplace_back(&k.out[2], size_t(LD * B * c0.H));
  for (int i = 0; i < LD; ++i) {
    const PreparedLayer<S>& W = *st.cells[size_t(i)];
    const SeqConfig& c = W.config();
    for (int j = 0; j < BackwardCall::kPerCell; ++j)
      if (W.has(CellParam(j)))
        outs.emplace_back(&k.out[size_t(3 + BackwardCall::kPerCell * i + j)], size_t(cell_param_elems(c, CellParam(j))));
  }
  new_outputs(env, f64, outs);
}

std::unique_ptr<BackwardCall> parse_backward(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  auto k = std::make_unique<BackwardCall>();
  RunHolder* h = unwrap_holder<RunHolder>(info.Length() ? info[0] : env.Undefined(), kRunTag,
                                          "run: expected the run of a stackForward(…, { training: true })");
  if (!h->stack) throw Napi::Error::New(env, "run: this run was released (its weights changed); run forward again");
  k->run = *h;
  k->run.bytes = 0;
  const PreparedStackBase& base = *h->stack;
  const SeqConfig c = base.float64 ? typed<double>(base).at(0, 0).config() : typed<float>(base).at(0, 0).config();
  const int64_t T = h->T, B = h->B, W = h->width, P = c.state_size(), H = c.H, LD = int64_t(base.layers) * base.directions;
  Napi::Value cv = info.Length() > 1 ? info[1] : env.Undefined();
  if (!cv.IsObject()) throw Napi::TypeError::New(env, "call: expected an object");
  Napi::Object call = cv.As<Napi::Object>();
  Napi::Value ig = call.Get("inputGradient");
  if (!ig.IsUndefined()) {
    if (!ig.IsBoolean()) throw Napi::TypeError::New(env, "call.inputGradient: expected a boolean");
    k->input_gradient = ig.As<Napi::Boolean>().Value();
  }
  std::vector<BufferBinding> bindings;
  BufferReader r(call, &bindings, "call", base.float64 ? DType::kFloat64 : DType::kFloat32);
  const char* p_name = c.P > 0 ? "projSize" : "hiddenSize";
  const std::string s_dy = h->batch_first ? shape_str({{"batch", B}, {"steps", T}, {"width", W}})
                                          : shape_str({{"steps", T}, {"batch", B}, {"width", W}});
  r.bind(&k->dy, "dy", T * B * W, s_dy, false, false);
  r.bind(&k->dh_n, "dhN", LD * B * P, shape_str({{"layers·directions", LD}, {"batch", B}, {p_name, P}}), false, false);
  if (c.cell == CellKind::kLstm)
    r.bind(&k->dc_n, "dcN", LD * B * H, shape_str({{"layers·directions", LD}, {"batch", B}, {"hiddenSize", H}}), false, false);
  r.check();
  const size_t es = base.float64 ? 8 : 4;
  k->dy = keep(k->dy, size_t(T * B * W) * es, async, k->dy_own);
  k->dh_n = keep(k->dh_n, size_t(LD * B * P) * es, async, k->dh_own);
  k->dc_n = keep(k->dc_n, size_t(LD * B * H) * es, async, k->dc_own);
  if (base.float64) allocate_gradients<double>(env, *k);
  else allocate_gradients<float>(env, *k);
  return k;
}

std::string describe(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e)) return "out of memory for this call (reduce batch or steps)";
  return std::string("rnnkit: ") + e.what();
}

class CallWorker;

// The async calls of one JavaScript thread (the main thread or one worker_thread): at most
// max_running_calls() of them are on libuv threads at a time; the others wait here, on nothing (not
// on a libuv thread, which file and network work need too). Calls beyond what the cores can run
// add no throughput: they slow the running ones and the JavaScript thread that competes with them.
// A call runs on the pool's num_threads() threads, so cores / num_threads() calls fit (one with the
// default, every core's thread; two on 2 cores after setNumThreads(1), where one call at a time
// served 7.1-7.3k one-step requests/s in the load test's per-request server and two 8.5-9.0k).
struct CallQueue {
  int running = 0;
  bool start_scheduled = false;
  std::deque<CallWorker*> waiting;
};
CallQueue& call_queue() {
  static thread_local CallQueue q;
  return q;
}
int max_running_calls() {
  static const int forced = [] {
    const char* v = std::getenv("RNNKIT_MAX_RUNNING_CALLS");
    return v ? std::max(0, std::atoi(v)) : 0;
  }();
  if (forced > 0) return forced;
  static const int cores = std::max(1, int(std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, ThreadPool::instance().num_threads()));
}
Napi::Value MaxRunningCalls(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), max_running_calls()); }
// Queues waiting calls on libuv while fewer than max_running_calls() run.
void start_waiting_calls();
Napi::Value StartWaitingCalls(const Napi::CallbackInfo& info) {
  call_queue().start_scheduled = false;
  start_waiting_calls();
  return info.Env().Undefined();
}

class CallWorker : public Napi::AsyncWorker {
 public:
  CallWorker(Napi::Env env, std::unique_ptr<Call> call)
      : Napi::AsyncWorker(env, "rnnkit.stack"), call_(std::move(call)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      call_->work();
    } catch (const std::exception& e) {
      error_ = describe(e);
    }
  }
  void OnWorkComplete(Napi::Env env, napi_status status) override {
    // As SequenceWorker (addon.cc): an environment being torn down has nobody left to tell.
    if (status != napi_cancelled) {
      try {
        Napi::HandleScope scope(env);
        if (!error_.empty()) {
          deferred_.Reject(Napi::RangeError::New(env, error_).Value());
        } else {
          Napi::Value v;
          try {
            v = call_->result(env);
          } catch (const Napi::Error& e) {  // (e.g. an output array transferred during the call)
            deferred_.Reject(e.Value());
          }
          if (!v.IsEmpty()) deferred_.Resolve(v);
        }
      } catch (...) {
      }
    }
    Destroy();
    --call_queue().running;
    start_waiting_calls();
  }

 private:
  std::unique_ptr<Call> call_;
  Napi::Promise::Deferred deferred_;
  std::string error_;
};

void start_waiting_calls() {
  CallQueue& q = call_queue();
  while (q.running < max_running_calls() && !q.waiting.empty()) {
    CallWorker* w = q.waiting.front();
    q.waiting.pop_front();
    ++q.running;
    w->Queue();
  }
}

Napi::Value run_sync(Napi::Env env, Call& call) {
  try {
    call.work();
  } catch (const std::exception& e) {
    throw Napi::RangeError::New(env, describe(e));
  }
  return call.result(env);
}

template <typename Parse>
Napi::Value run_async(const Napi::CallbackInfo& info, Parse parse) {
  Napi::Env env = info.Env();
  std::unique_ptr<Call> call;
  try {
    call = parse(info, true);
  } catch (const Napi::Error& e) {  // argument errors reject the promise rather than throw
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(e.Value());
    return d.Promise();
  }
  auto* worker = new CallWorker(env, std::move(call));
  Napi::Promise p = worker->promise();
  CallQueue& q = call_queue();
  q.waiting.push_back(worker);
  if (!q.start_scheduled) {
    // Start the calls once the code issuing them yields (a microtask): a loop issuing many calls
    // then runs alone instead of competing for the cores with the first ones.
    Napi::Value queue_microtask = env.Global().Get("queueMicrotask");
    if (queue_microtask.IsFunction()) {
      queue_microtask.As<Napi::Function>().Call({Napi::Function::New(env, StartWaitingCalls, "rnnkitStartCalls")});
      q.start_scheduled = true;
    } else {
      start_waiting_calls();
    }
  }
  return p;
}

Napi::Value StackForward(const Napi::CallbackInfo& info) {
  auto call = parse_forward(info, false);
  return run_sync(info.Env(), *call);
}
Napi::Value StackForwardAsync(const Napi::CallbackInfo& info) { return run_async(info, parse_forward); }
Napi::Value StackBackward(const Napi::CallbackInfo& info) {
  auto call = parse_backward(info, false);
  return run_sync(info.Env(), *call);
}
Napi::Value StackBackwardAsync(const Napi::CallbackInfo& info) { return run_async(info, parse_backward); }

// dropoutMask(seed, stream, steps, batch, width, keep): the generator's values, for tests.
Napi::Value DropoutMask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info.Length() && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  const double seed = read_number(o, "args", "seed", 0, 0, 9007199254740991.0);
  const int64_t stream = read_count(o, "stream", "args", 0, int64_t(1) << 40);
  const int64_t T = read_dim(o, "steps", "args"), B = read_dim(o, "batch", "args"), W = read_dim(o, "width", "args");
  const double keep = read_number(o, "args", "keep", 1, 1e-9, 1);
  if (double(T) * double(B) * double(W) > 1e8) throw Napi::RangeError::New(env, "args: at most 1e8 values");
  OutputArray out = new_output(env, true, size_t(T * B * W));
  out.zero();
  double* v = static_cast<double*>(out.data);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < W; ++j) v[(t * B + b) * W + j] = dropout_value(uint64_t(seed), uint64_t(stream), t, b, j, keep);
  return out.ref.Value();
}

// liveObjects() -> { stacks, runs, stackBytes, runBytes }: prepared stacks and training runs alive.
Napi::Value LiveObjects(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("stacks", double(g_live_stacks.load()));
  o.Set("runs", double(g_live_runs.load()));
  o.Set("stackBytes", double(g_live_stack_bytes.load()));
  o.Set("runBytes", double(g_live_run_bytes.load()));
  // This thread's environment: its stacks' and runs' bytes, and how many of them V8 has been told of.
  o.Set("envBytes", double(t_native_bytes.live));
  o.Set("reportedBytes", double(t_native_bytes.reported));
  o.Set("unreportedBudget", double(kUnreportedNativeBytes));
#if defined(__GLIBC__)
  struct mallinfo2 mi = mallinfo2();
  o.Set("mallocInUse", double(mi.uordblks + mi.hblkhd));
#endif
  return o;
}

// cellParameters() -> [{ name, gradient, torch, optional, gradientOptional }]: the parameter table
// (cells/cell_params.h) that lib/native.ts mirrors.
Napi::Value CellParameters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array a = Napi::Array::New(env, kCellParamCount);
  for (int j = 0; j < kCellParamCount; ++j) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", kCellParams[j].name);
    o.Set("gradient", kCellParams[j].gradient);
    o.Set("torch", kCellParams[j].torch);
    o.Set("optional", kCellParams[j].optional);
    o.Set("gradientOptional", kCellParams[j].gradient_optional);
    a.Set(uint32_t(j), o);
  }
  return a;
}

}  // namespace

void register_grid(Napi::Env env, Napi::Object exports) {
  exports.Set("prepareStack", Napi::Function::New(env, PrepareStack, "prepareStack"));
  exports.Set("releaseStack", Napi::Function::New(env, ReleaseStack, "releaseStack"));
  exports.Set("releaseRun", Napi::Function::New(env, ReleaseRun, "releaseRun"));
  exports.Set("stackInfo", Napi::Function::New(env, StackInfo, "stackInfo"));
  exports.Set("stackForward", Napi::Function::New(env, StackForward, "stackForward"));
  exports.Set("stackForwardAsync", Napi::Function::New(env, StackForwardAsync, "stackForwardAsync"));
  exports.Set("stackBackward", Napi::Function::New(env, StackBackward, "stackBackward"));
  exports.Set("stackBackwardAsync", Napi::Function::New(env, StackBackwardAsync, "stackBackwardAsync"));
  exports.Set("maxRunningCalls", Napi::Function::New(env, MaxRunningCalls, "maxRunningCalls"));
  exports.Set("liveObjects", Napi::Function::New(env, LiveObjects, "liveObjects"));
  exports.Set("dropoutMask", Napi::Function::New(env, DropoutMask, "dropoutMask"));
  exports.Set("cellParameters", Napi::Function::New(env, CellParameters, "cellParameters"));
}

}  // namespace binding
}  // namespace rnnkit
