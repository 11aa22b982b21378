// The N-API surface of rnnkit. Everything a JavaScript caller can pass is checked here (types,
// lengths, sizes, detached buffers) before any kernel runs, so no argument can crash the process;
// the typed TypeScript layer in lib/ checks first with user-facing names.
//
//   workspaceSize(config) -> number
//   forward(config, buffers) / forwardAsync(config, buffers) -> undefined / Promise<undefined>
//   backward(config, buffers) / backwardAsync(config, buffers)
//   gemm({ transA?, transB?, m, n, k, alpha?, beta? }, { a, b, c }) -> undefined: c = alpha·op(a)·op(b) + beta·c
//   setNumThreads(n) -> 'applied' | 'deferred', getNumThreads(), setMaxTrainingBytes(bytes), getMaxTrainingBytes()
//   measurePeak({ ms?, threads? }) -> this machine's FMA peak and packed-GEMM rate (core/peak.h)
//
// config:  { cell: 'rnn_tanh'|'rnn_relu'|'lstm'|'gru', linearBeforeReset?, reverse?,
//            steps, batch, inputSize, hiddenSize }
// buffers: Float32Array or Float64Array (one type per call); sync calls use them in place, async
//          calls on private copies (see SequenceCall::use_private_copies).
#include <napi.h>

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "../core/blas.h"
#include "../core/isa.h"
#include "../core/packed_gemm.h"
#include "../core/peak.h"
#include "../core/orthogonal.h"
#include "../core/sequence.h"
#include "../core/thread_pool.h"

#include "checks.h"
#include "grid_binding.h"

namespace rnnkit {
namespace {

using namespace binding;

// One fully checked call: plain config and raw pointers, runnable on any thread.
struct SequenceCall {
  SeqConfig cfg;
  DType dtype = DType::kFloat32;
  bool backward = false;
  // forward
  const void *x = nullptr, *h0 = nullptr, *c0 = nullptr;
  CellParamSet<const void> params;  // cells/cell_params.h
  void *y = nullptr, *h_n = nullptr, *c_n = nullptr, *workspace = nullptr;
  // backward
  const void *dy = nullptr, *dh_n = nullptr, *dc_n = nullptr;
  void *dx = nullptr, *dh0 = nullptr, *dc0 = nullptr;
  CellParamSet<void> grads;
  std::vector<BufferBinding> bindings;
  std::vector<std::unique_ptr<uint8_t[]>> owned;

  // Async calls work on private copies: JavaScript may transfer, resize or change its buffers while
  // the work runs on another thread, so inputs are copied in now and outputs copied out on completion.
  void use_private_copies() {
    for (BufferBinding& b : bindings) {
      owned.emplace_back(new uint8_t[b.bytes]);
      if (!b.output) std::memcpy(owned.back().get(), *b.field, b.bytes);
      *b.field = owned.back().get();
    }
  }
  // Copies the outputs back into their typed arrays; throws if one was detached or changed meanwhile.
  void copy_outputs_back(Napi::Env env) {
    for (BufferBinding& b : bindings) {
      if (!b.output) continue;
      DType d = dtype;
      const int64_t length = int64_t(b.bytes / (dtype == DType::kFloat64 ? 8 : 4));
      void* dst = typed_array_data(b.ref.Value(), b.name + " (after the call)", length, "as when the call started", &d);
      std::memcpy(dst, *b.field, b.bytes);
    }
  }

  // The raw single layer-direction API: weights are prepared per call (the layers use prepared
  // stacks instead, see grid_binding.cc). A reverse direction runs on a time-reversed copy.
  template <typename S>
  void run_typed() {
    LayerWeightsView<S> v;
    for (int j = 0; j < kCellParamCount; ++j) v.p[j] = static_cast<const S*>(params.p[j]);
    PreparedLayer<S> W(cfg, v);
    StepPlan plan;
    plan.T = cfg.T; plan.B = cfg.B;
    const int64_t T = cfg.T, B = cfg.B, I = cfg.I, P = cfg.state_size();
    // [T, B, w] with the time order reversed (a copy), or the data itself.
    auto time_reversed = [&](const void* src, int64_t w, std::vector<S>& dst) -> const S* {
      const S* p = static_cast<const S*>(src);
      if (!cfg.reverse || !p) return p;
      dst.resize(size_t(T * B * w));
      for (int64_t t = 0; t < T; ++t) std::memcpy(dst.data() + t * B * w, p + (T - 1 - t) * B * w, sizeof(S) * B * w);
      return dst.data();
    };
    auto reverse_into = [&](const std::vector<S>& src, int64_t w, void* dst) {
      S* d = static_cast<S*>(dst);
      for (int64_t t = 0; t < T; ++t) std::memcpy(d + t * B * w, src.data() + (T - 1 - t) * B * w, sizeof(S) * B * w);
    };
    std::vector<S> x_rev, y_rev, dy_rev, dx_rev;
    if (!backward) {
      ForwardBuffers<S> f;
      f.x = time_reversed(x, I, x_rev);
      f.h0 = static_cast<const S*>(h0); f.c0 = static_cast<const S*>(c0);
      if (cfg.reverse && y) { y_rev.resize(size_t(T * B * P)); f.y = y_rev.data(); } else { f.y = static_cast<S*>(y); }
      f.h_n = static_cast<S*>(h_n); f.c_n = static_cast<S*>(c_n);
      f.workspace = static_cast<S*>(workspace);
      sequence_forward<S>(W, plan, f);
      if (cfg.reverse && y) reverse_into(y_rev, P, y);
    } else {
      BackwardBuffers<S> b;
      b.x = time_reversed(x, I, x_rev);
      b.workspace = static_cast<const S*>(workspace);
      b.dy = time_reversed(dy, P, dy_rev);
      b.dh_n = static_cast<const S*>(dh_n); b.dc_n = static_cast<const S*>(dc_n);
      if (cfg.reverse && dx) { dx_rev.resize(size_t(T * B * I)); b.dx = dx_rev.data(); } else { b.dx = static_cast<S*>(dx); }
      b.dh0 = static_cast<S*>(dh0); b.dc0 = static_cast<S*>(dc0);
      for (int j = 0; j < kCellParamCount; ++j) b.grad.p[j] = static_cast<S*>(grads.p[j]);
      sequence_backward<S>(W, plan, b);
      if (cfg.reverse && dx) reverse_into(dx_rev, I, dx);
    }
  }
  void run() { dtype == DType::kFloat64 ? run_typed<double>() : run_typed<float>(); }
};

void parse_call(const Napi::CallbackInfo& info, bool backward, SequenceCall* call) {
  Napi::Env env = info.Env();
  if (info.Length() < 2) throw Napi::TypeError::New(env, "expected (config, buffers)");
  SequenceCall& k = *call;
  k.cfg = read_config(info[0]);
  k.backward = backward;
  const SeqConfig& c = k.cfg;
  const int64_t T = c.T, B = c.B, I = c.I, H = c.H;
  const bool lstm = c.cell == CellKind::kLstm;
  BufferReader r(info[1], &k.bindings);
  const std::string s_x = shape_str({{"steps", T}, {"batch", B}, {"inputSize", I}});
  const int64_t P = c.state_size();
  const char* p_name = c.P > 0 ? "projSize" : "hiddenSize";
  const std::string s_y = shape_str({{"steps", T}, {"batch", B}, {p_name, P}});
  const std::string s_state = shape_str({{"batch", B}, {p_name, P}});
  const std::string s_cell = shape_str({{"batch", B}, {"hiddenSize", H}});
  const int64_t ws = workspace_elems(c);
  const std::string s_ws = "[" + std::to_string(ws) + "] (workspaceSize(config))";

  r.bind(&k.x, "x", T * B * I, s_x, true, false);
  // The parameters (cell_params.h); backward reads no bias. A peephole buffer is checked even for a
  // cell without peepholes (then ignored), as this API always did.
  for (int j = 0; j < kCellParamCount; ++j) {
    const CellParam p = CellParam(j);
    const CellParamInfo& info = kCellParams[j];
    const bool has = cell_has_param(c, p);
    if (backward && info.optional) continue;
    if (has || p == kPeephole) {
      r.bind(&k.params[p], info.name, cell_param_elems(c, p), cell_param_shape(c, p), has && !info.optional, false);
    }
  }
  if (!backward) {
    r.bind(&k.h0, "h0", B * P, s_state, false, false);
    if (lstm) r.bind(&k.c0, "c0", B * H, s_cell, false, false);
    r.bind(&k.y, "y", T * B * P, s_y, false, true);
    r.bind(&k.h_n, "hN", B * P, s_state, false, true);
    if (lstm) r.bind(&k.c_n, "cN", B * H, s_cell, false, true);
    r.bind(&k.workspace, "workspace", ws, s_ws, false, !backward);
  } else {
    r.bind(&k.workspace, "workspace", ws, s_ws, true, !backward);
    r.bind(&k.dy, "dy", T * B * P, s_y, false, false);
    r.bind(&k.dh_n, "dhN", B * P, s_state, false, false);
    if (lstm) r.bind(&k.dc_n, "dcN", B * H, s_cell, false, false);
    r.bind(&k.dx, "dx", T * B * I, s_x, false, true);
    r.bind(&k.dh0, "dh0", B * P, s_state, false, true);
    if (lstm) r.bind(&k.dc0, "dc0", B * H, s_cell, false, true);
    for (int j = 0; j < kCellParamCount; ++j) {
      const CellParam p = CellParam(j);
      const CellParamInfo& info = kCellParams[j];
      if (cell_has_param(c, p))
        r.bind(&k.grads[p], info.gradient, cell_param_elems(c, p), cell_param_shape(c, p), !info.gradient_optional, true);
    }
  }
  r.check();
  k.dtype = r.dtype();
  if (backward || k.workspace) check_training(env, c, k.dtype);
}

void run_guarded(Napi::Env env, SequenceCall& call) {
  try {
    call.run();
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "out of memory for this sequence (reduce batch or steps)");
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("rnnkit: ") + e.what());
  }
}

class SequenceWorker : public Napi::AsyncWorker {
 public:
  SequenceWorker(Napi::Env env, std::unique_ptr<SequenceCall> call)
      : Napi::AsyncWorker(env, "rnnkit.sequence"), call_(std::move(call)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      call_->run();
    } catch (const std::bad_alloc&) {
      error_ = "out of memory for this sequence (reduce batch or steps)";
    } catch (const std::exception& e) {
      error_ = std::string("rnnkit: ") + e.what();
    }
  }
  // Settles the promise. When the call completes while its environment is being torn down (a
  // worker_thread that exits or is terminated mid-call), N-API can no longer run JavaScript and
  // every call into it fails: there is nobody left to tell, so the failure is dropped instead of
  // escaping as an exception (which would abort the whole process).
  void OnWorkComplete(Napi::Env env, napi_status status) override {
    if (status != napi_cancelled) {
      try {
        Napi::HandleScope scope(env);
        settle(env);
      } catch (...) {
      }
    }
    Destroy();
  }

 private:
  void settle(Napi::Env env) {
    if (!error_.empty()) {
      deferred_.Reject(Napi::RangeError::New(env, error_).Value());
      return;
    }
    try {
      call_->copy_outputs_back(env);
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
      return;
    }
    deferred_.Resolve(env.Undefined());
  }

  std::unique_ptr<SequenceCall> call_;  // owns the references that keep the buffers alive
  Napi::Promise::Deferred deferred_;
  std::string error_;
};

Napi::Value Run(const Napi::CallbackInfo& info, bool backward) {
  SequenceCall call;
  parse_call(info, backward, &call);
  run_guarded(info.Env(), call);
  return info.Env().Undefined();
}

Napi::Value RunAsync(const Napi::CallbackInfo& info, bool backward) {
  Napi::Env env = info.Env();
  auto call = std::make_unique<SequenceCall>();
  try {
    parse_call(info, backward, call.get());
  } catch (const Napi::Error& e) {  // argument errors reject the promise rather than throw
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(e.Value());
    return d.Promise();
  }
  call->use_private_copies();
  auto* worker = new SequenceWorker(env, std::move(call));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

Napi::Value Forward(const Napi::CallbackInfo& info) { return Run(info, false); }
Napi::Value Backward(const Napi::CallbackInfo& info) { return Run(info, true); }
Napi::Value ForwardAsync(const Napi::CallbackInfo& info) { return RunAsync(info, false); }
Napi::Value BackwardAsync(const Napi::CallbackInfo& info) { return RunAsync(info, true); }

// workspaceSize(config, dtype = 'float32'): scalars of the training workspace; a RangeError when
// training this configuration would pass the limits (see check_training).
Napi::Value WorkspaceSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SeqConfig c = read_config(info[0]);
  DType dtype = DType::kFloat32;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    const std::string d = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    if (d == "float64") dtype = DType::kFloat64;
    else if (d != "float32") throw Napi::TypeError::New(env, "dtype: expected 'float32' or 'float64'");
  }
  check_training(env, c, dtype);
  return Napi::Number::New(env, double(workspace_elems(c)));
}

// setMaxTrainingBytes(bytes) / getMaxTrainingBytes(): the memory a training call may use.
Napi::Value SetMaxTrainingBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "bytes: expected a positive number");
  const double v = info[0].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || v < 1) throw Napi::RangeError::New(env, "bytes: expected a finite number >= 1");
  g_max_training_bytes.store(v);
  return env.Undefined();
}

Napi::Value GetMaxTrainingBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), g_max_training_bytes.load());
}

// orthonormalizeRows(q: Float64Array, n, blocks = 1): the rows of each of the `blocks` stacked
// [n, n] matrices of q made orthonormal, in place; blocks run in parallel on the pool.
Napi::Value OrthonormalizeRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto count = [&](size_t i, const char* name, double hi) {
    if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(env, std::string(name) + ": expected a positive integer");
    double v = info[i].As<Napi::Number>().DoubleValue();
    if (!(v >= 1) || v != std::floor(v) || v > hi)
      throw Napi::RangeError::New(env, std::string(name) + ": expected an integer in [1, " + std::to_string(int64_t(hi)) + "]");
    return int64_t(v);
  };
  const int64_t n = count(1, "n", 46340);
  const int64_t blocks = info.Length() > 2 && !info[2].IsUndefined() ? count(2, "blocks", 1 << 20) : 1;
  if (double(blocks) * double(n) * double(n) > 9e15) throw Napi::RangeError::New(env, "blocks·n·n: too large");
  DType d = DType::kFloat64;
  void* data = typed_array_data(info[0], "q", blocks * n * n, shape_str({{"blocks", blocks}, {"n", n}, {"n", n}}), &d);
  double* q = static_cast<double*>(data);
  parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) orthonormalize_rows(q + b * n * n, n);
  });
  return env.Undefined();
}

// C[m, n] = alpha · op(A) · op(B) + beta · C, row-major, on the calling thread (OpenBLAS threads):
// the dense layers of a model (one GEMM over every step). A is [m, k] ([k, m] with transA), B is
// [k, n] ([n, k] with transB); every buffer must hold exactly its elements, all of one dtype.
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject()) throw Napi::TypeError::New(env, "gemm: expected (config, buffers)");
  Napi::Object cfg = info[0].As<Napi::Object>();
  const bool ta = read_flag(cfg, "transA", "config"), tb = read_flag(cfg, "transB", "config");
  const int64_t M = read_dim(cfg, "m"), N = read_dim(cfg, "n"), K = read_dim(cfg, "k");
  const double alpha = read_number(cfg, "config", "alpha", 1, -1e30, 1e30);
  const double beta = read_number(cfg, "config", "beta", 0, -1e30, 1e30);
  if (double(M) * double(K) >= kInt32Limit || double(K) * double(N) >= kInt32Limit || double(M) * double(N) >= kInt32Limit)
    throw Napi::RangeError::New(env, "gemm: every matrix must stay below 2^31 elements");
  std::vector<BufferBinding> bindings;
  BufferReader reader(info[1], &bindings);
  const void *a = nullptr, *b = nullptr;
  void* c = nullptr;
  reader.bind(&a, "a", M * K, ta ? shape_str({{"k", K}, {"m", M}}) : shape_str({{"m", M}, {"k", K}}), true, false);
  reader.bind(&b, "b", K * N, tb ? shape_str({{"n", N}, {"k", K}}) : shape_str({{"k", K}, {"n", N}}), true, false);
  reader.bind(&c, "c", M * N, shape_str({{"m", M}, {"n", N}}), true, true);
  reader.check();
  if (c == a || c == b) throw Napi::TypeError::New(env, "gemm: c must not be the same array as a or b");
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  if (reader.dtype() == DType::kFloat64)
    gemm(ta, tb, M, N, K, alpha, static_cast<const double*>(a), lda, static_cast<const double*>(b), ldb, beta,
         static_cast<double*>(c), N);
  else
    gemm(ta, tb, M, N, K, float(alpha), static_cast<const float*>(a), lda, static_cast<const float*>(b), ldb, float(beta),
         static_cast<float*>(c), N);
  return env.Undefined();
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "n: expected a positive integer");
  double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= 1) || n != std::floor(n) || n > 1024) throw Napi::RangeError::New(env, "n: expected an integer in [1, 1024]");
  ThreadPool& pool = ThreadPool::instance();
  const ThreadPool::Resize r = pool.set_num_threads(static_cast<int>(n));
  if (r == ThreadPool::Resize::kShort)
    throw Napi::Error::New(env, "setNumThreads(" + std::to_string(int(n)) + "): the system refused to start more threads; "
                                "the pool keeps running with " + std::to_string(pool.started()) + " (is a pids or thread limit set?)");
  // 'deferred': a running call holds the pool; the next call to take it applies the change.
  return Napi::String::New(env, r == ThreadPool::Resize::kDeferred ? "deferred" : "applied");
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), ThreadPool::instance().num_threads());
}

// Which kernel builds run: { isa, best, gemm } — isa is the step kernels' (RNNKIT_ISA or the best
// this CPU runs), best what the CPU could run, gemm the packed GEMM's current kernel.
Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("isa", isa_name(default_isa()));
  o.Set("best", isa_name(best_isa()));
  o.Set("gemm", packed_gemm_isa());
  return o;
}

// measurePeak({ ms?, threads? }) -> { isa, gemmIsa, threads, fmaPeakGflops1, fmaPeakGflopsAll,
// gemmGflops1, gemmGflopsAll, l2ReadGBs1 }: this machine's FMA peak, packed-GEMM rate and one
// thread's L2 read rate (core/peak.h), on the calling thread (it blocks for about 5·ms). threads: the pool's participants for the all-thread
// figures, 1 .. the threads the pool runs (default: all of them).
Napi::Value MeasurePeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ThreadPool& pool = ThreadPool::instance();
  PeakOptions opt;
  opt.threads = pool.started();
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsObject() || info[0].IsArray() || info[0].IsFunction())
      throw Napi::TypeError::New(env, "measurePeak: options: expected an object { ms?, threads? }");
    Napi::Object o = info[0].As<Napi::Object>();
    Napi::Array keys = o.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      const std::string k = keys.Get(i).ToString().Utf8Value();
      if (k != "ms" && k != "threads")
        throw Napi::TypeError::New(env, "measurePeak: options." + k + ": unknown option; valid options: ms, threads");
    }
    Napi::Value ms = o.Get("ms");
    if (!ms.IsUndefined()) {
      if (!ms.IsNumber()) throw Napi::TypeError::New(env, "measurePeak: options.ms: expected a number of milliseconds in [1, 60000]");
      const double v = ms.As<Napi::Number>().DoubleValue();
      if (!(v >= 1 && v <= 60000))
        throw Napi::RangeError::New(env, "measurePeak: options.ms: expected a number of milliseconds in [1, 60000], got " + std::to_string(v));
      opt.ms = v;
    }
    Napi::Value th = o.Get("threads");
    if (!th.IsUndefined()) {
      const std::string range = "[1, " + std::to_string(pool.started()) + "] (the threads the pool runs; setNumThreads raises them)";
      if (!th.IsNumber()) throw Napi::TypeError::New(env, "measurePeak: options.threads: expected an integer in " + range);
      const double v = th.As<Napi::Number>().DoubleValue();
      if (!(v >= 1) || v != std::floor(v) || v > pool.started())
        throw Napi::RangeError::New(env, "measurePeak: options.threads: expected an integer in " + range + ", got " + std::to_string(v));
      opt.threads = int(v);
    }
  }
  PeakResult r;
  try {
    r = measure_peak(opt);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "measurePeak: out of memory");
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", r.isa);
  o.Set("gemmIsa", r.gemm_isa);
  o.Set("threads", r.threads);
  o.Set("ms", opt.ms);
  o.Set("fmaPeakGflops1", r.fma_gflops_1);
  o.Set("fmaPeakGflopsAll", r.fma_gflops_all);
  o.Set("gemmGflops1", r.gemm_gflops_1);
  o.Set("gemmGflopsAll", r.gemm_gflops_all);
  o.Set("l2ReadGBs1", r.l2_read_gbs_1);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // All parallelism comes from rnnkit's own pool, which splits every GEMM itself: BLAS runs one
  // thread per call, so the two never compete for the cores.
  blas_set_num_threads(1);
  exports.Set("workspaceSize", Napi::Function::New(env, WorkspaceSize, "workspaceSize"));
  exports.Set("forward", Napi::Function::New(env, Forward, "forward"));
  exports.Set("forwardAsync", Napi::Function::New(env, ForwardAsync, "forwardAsync"));
  exports.Set("backward", Napi::Function::New(env, Backward, "backward"));
  exports.Set("backwardAsync", Napi::Function::New(env, BackwardAsync, "backwardAsync"));
  exports.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("orthonormalizeRows", Napi::Function::New(env, OrthonormalizeRows, "orthonormalizeRows"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfo, "cpuInfo"));
  exports.Set("setMaxTrainingBytes", Napi::Function::New(env, SetMaxTrainingBytes, "setMaxTrainingBytes"));
  exports.Set("getMaxTrainingBytes", Napi::Function::New(env, GetMaxTrainingBytes, "getMaxTrainingBytes"));
  exports.Set("measurePeak", Napi::Function::New(env, MeasurePeak, "measurePeak"));
  binding::register_grid(env, exports);
  return exports;
}

}  // namespace
}  // namespace rnnkit

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return rnnkit::Init(env, exports); }
NODE_API_MODULE(rnnkit, InitModule)
