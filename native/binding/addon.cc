// The N-API surface of rnnkit. Everything a JavaScript caller can pass is checked here (types,
// lengths, sizes, detached buffers) before any kernel runs, so no argument can crash the process;
// the typed TypeScript layer in lib/ checks first with user-facing names.
//
//   workspaceSize(config) -> number
//   forward(config, buffers) / forwardAsync(config, buffers) -> undefined / Promise<undefined>
//   backward(config, buffers) / backwardAsync(config, buffers)
//   setNumThreads(n), getNumThreads()
//
// config:  { cell: 'rnn_tanh'|'rnn_relu'|'lstm'|'gru', linearBeforeReset?, reverse?,
//            steps, batch, inputSize, hiddenSize }
// buffers: Float32Array or Float64Array (one type per call), used in place, never copied.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "../core/blas.h"
#include "../core/sequence.h"
#include "../core/thread_pool.h"

namespace rnnkit {
namespace {

enum class DType { kUnset, kFloat32, kFloat64 };

const char* dtype_name(DType d) { return d == DType::kFloat64 ? "Float64Array" : "Float32Array"; }

std::string shape_str(std::initializer_list<std::pair<const char*, int64_t>> dims) {
  std::string names = "[", values = "[";
  bool first = true;
  for (auto& d : dims) {
    if (!first) { names += ", "; values += ", "; }
    names += d.first;
    values += std::to_string(d.second);
    first = false;
  }
  return names + "] = " + values + "]";
}

int64_t read_dim(const Napi::Object& cfg, const char* name) {
  Napi::Env env = cfg.Env();
  Napi::Value v = cfg.Get(name);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("config.") + name + ": expected a positive integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1) || d != std::floor(d) || d > double(std::numeric_limits<int32_t>::max()))
    throw Napi::RangeError::New(env, std::string("config.") + name + ": expected a positive integer below 2^31, got " +
                                         std::to_string(d));
  return static_cast<int64_t>(d);
}

bool read_flag(const Napi::Object& cfg, const char* name) {
  Napi::Value v = cfg.Get(name);
  if (v.IsUndefined() || v.IsNull()) return false;
  if (!v.IsBoolean()) throw Napi::TypeError::New(cfg.Env(), std::string("config.") + name + ": expected a boolean");
  return v.As<Napi::Boolean>().Value();
}

SeqConfig read_config(const Napi::Value& value) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throw Napi::TypeError::New(env, "config: expected an object");
  Napi::Object cfg = value.As<Napi::Object>();
  SeqConfig c;
  Napi::Value cell = cfg.Get("cell");
  std::string name = cell.IsString() ? cell.As<Napi::String>().Utf8Value() : "";
  if (name == "rnn_tanh") c.cell = CellKind::kRnnTanh;
  else if (name == "rnn_relu") c.cell = CellKind::kRnnRelu;
  else if (name == "lstm") c.cell = CellKind::kLstm;
  else if (name == "gru") c.cell = CellKind::kGru;
  else throw Napi::TypeError::New(env, "config.cell: expected 'rnn_tanh', 'rnn_relu', 'lstm' or 'gru'");
  c.linear_before_reset = read_flag(cfg, "linearBeforeReset");
  c.reverse = read_flag(cfg, "reverse");
  c.T = read_dim(cfg, "steps");
  c.B = read_dim(cfg, "batch");
  c.I = read_dim(cfg, "inputSize");
  c.H = read_dim(cfg, "hiddenSize");
  // Every matrix handed to BLAS must index with 32-bit integers.
  const double limit = double(std::numeric_limits<int32_t>::max());
  const double GH = double(c.gate_width());
  const double widest = std::max({double(c.I), GH, double(c.H)});
  if (double(c.T) * double(c.B) * widest >= limit || GH * std::max(double(c.I), double(c.H)) >= limit)
    throw Napi::RangeError::New(env, "config: steps·batch·max(inputSize, gates·hiddenSize) must stay below 2^31");
  return c;
}

// Reads the typed arrays of one call, all of one dtype, and keeps them referenced.
class BufferReader {
 public:
  BufferReader(const Napi::Value& value, std::vector<Napi::Reference<Napi::Value>>* keep) : keep_(keep) {
    if (!value.IsObject()) throw Napi::TypeError::New(value.Env(), "buffers: expected an object of typed arrays");
    obj_ = value.As<Napi::Object>();
  }
  DType dtype() const { return dtype_; }

  // Returns the data pointer of buffers[name], or null when it is absent and optional.
  void* get(const char* name, int64_t length, const std::string& shape, bool required) {
    Napi::Env env = obj_.Env();
    Napi::Value v = obj_.Get(name);
    if (v.IsUndefined() || v.IsNull()) {
      if (required) throw Napi::TypeError::New(env, std::string(name) + ": required, expected a " +
                                                        expected_type() + " of shape " + shape);
      return nullptr;
    }
    if (!v.IsTypedArray()) throw Napi::TypeError::New(env, std::string(name) + ": expected a " + expected_type() +
                                                               " of shape " + shape);
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    DType d;
    switch (ta.TypedArrayType()) {
      case napi_float32_array: d = DType::kFloat32; break;
      case napi_float64_array: d = DType::kFloat64; break;
      default:
        throw Napi::TypeError::New(env, std::string(name) + ": expected a " + expected_type() + " of shape " + shape);
    }
    if (dtype_ == DType::kUnset) dtype_ = d;
    else if (d != dtype_)
      throw Napi::TypeError::New(env, std::string(name) + ": expected a " + dtype_name(dtype_) +
                                          " (all buffers of a call share one dtype), got a " + dtype_name(d));
    Napi::ArrayBuffer ab = ta.ArrayBuffer();
    if (ab.IsDetached())
      throw Napi::TypeError::New(env, std::string(name) + ": its ArrayBuffer is detached (was it transferred?)");
    if (static_cast<int64_t>(ta.ElementLength()) != length)
      throw Napi::RangeError::New(env, std::string(name) + ": expected " + std::to_string(length) +
                                           " elements for shape " + shape + ", got " +
                                           std::to_string(ta.ElementLength()));
    keep_->push_back(Napi::Persistent(v));
    return static_cast<uint8_t*>(ab.Data()) + ta.ByteOffset();
  }

 private:
  std::string expected_type() const {
    return dtype_ == DType::kUnset ? "Float32Array or Float64Array" : dtype_name(dtype_);
  }
  Napi::Object obj_;
  DType dtype_ = DType::kUnset;
  std::vector<Napi::Reference<Napi::Value>>* keep_;
};

// One fully checked call: plain config and raw pointers, runnable on any thread.
struct SequenceCall {
  SeqConfig cfg;
  DType dtype = DType::kFloat32;
  bool backward = false;
  // forward
  const void *x = nullptr, *h0 = nullptr, *c0 = nullptr, *w_ih = nullptr, *w_hh = nullptr, *b_ih = nullptr,
             *b_hh = nullptr;
  void *y = nullptr, *h_n = nullptr, *c_n = nullptr, *workspace = nullptr;
  // backward
  const void *dy = nullptr, *dh_n = nullptr, *dc_n = nullptr;
  void *dx = nullptr, *dh0 = nullptr, *dc0 = nullptr, *dw_ih = nullptr, *dw_hh = nullptr, *db_ih = nullptr,
       *db_hh = nullptr;
  std::vector<Napi::Reference<Napi::Value>> keep;

  template <typename S>
  void run_typed() {
    if (!backward) {
      ForwardBuffers<S> f;
      f.x = static_cast<const S*>(x); f.h0 = static_cast<const S*>(h0); f.c0 = static_cast<const S*>(c0);
      f.w_ih = static_cast<const S*>(w_ih); f.w_hh = static_cast<const S*>(w_hh);
      f.b_ih = static_cast<const S*>(b_ih); f.b_hh = static_cast<const S*>(b_hh);
      f.y = static_cast<S*>(y); f.h_n = static_cast<S*>(h_n); f.c_n = static_cast<S*>(c_n);
      f.workspace = static_cast<S*>(workspace);
      sequence_forward<S>(cfg, f);
    } else {
      BackwardBuffers<S> b;
      b.x = static_cast<const S*>(x); b.w_ih = static_cast<const S*>(w_ih); b.w_hh = static_cast<const S*>(w_hh);
      b.workspace = static_cast<const S*>(workspace);
      b.dy = static_cast<const S*>(dy); b.dh_n = static_cast<const S*>(dh_n); b.dc_n = static_cast<const S*>(dc_n);
      b.dx = static_cast<S*>(dx); b.dh0 = static_cast<S*>(dh0); b.dc0 = static_cast<S*>(dc0);
      b.dw_ih = static_cast<S*>(dw_ih); b.dw_hh = static_cast<S*>(dw_hh);
      b.db_ih = static_cast<S*>(db_ih); b.db_hh = static_cast<S*>(db_hh);
      sequence_backward<S>(cfg, b);
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
  const int64_t T = c.T, B = c.B, I = c.I, H = c.H, G = c.gates(), GH = c.gate_width();
  const bool lstm = c.cell == CellKind::kLstm;
  BufferReader r(info[1], &k.keep);
  const std::string s_x = shape_str({{"steps", T}, {"batch", B}, {"inputSize", I}});
  const std::string s_y = shape_str({{"steps", T}, {"batch", B}, {"hiddenSize", H}});
  const std::string s_state = shape_str({{"batch", B}, {"hiddenSize", H}});
  const std::string s_wih = shape_str({{"gates·hiddenSize", G * H}, {"inputSize", I}});
  const std::string s_whh = shape_str({{"gates·hiddenSize", G * H}, {"hiddenSize", H}});
  const std::string s_b = shape_str({{"gates·hiddenSize", GH}});
  const int64_t ws = workspace_elems(c);
  const std::string s_ws = "[" + std::to_string(ws) + "] (workspaceSize(config))";

  k.x = r.get("x", T * B * I, s_x, true);
  k.w_ih = r.get("weightIh", GH * I, s_wih, true);
  k.w_hh = r.get("weightHh", GH * H, s_whh, true);
  if (!backward) {
    k.h0 = r.get("h0", B * H, s_state, false);
    if (lstm) k.c0 = r.get("c0", B * H, s_state, false);
    k.b_ih = r.get("biasIh", GH, s_b, false);
    k.b_hh = r.get("biasHh", GH, s_b, false);
    k.y = r.get("y", T * B * H, s_y, false);
    k.h_n = r.get("hN", B * H, s_state, false);
    if (lstm) k.c_n = r.get("cN", B * H, s_state, false);
    k.workspace = r.get("workspace", ws, s_ws, false);
  } else {
    k.workspace = r.get("workspace", ws, s_ws, true);
    k.dy = r.get("dy", T * B * H, s_y, false);
    k.dh_n = r.get("dhN", B * H, s_state, false);
    if (lstm) k.dc_n = r.get("dcN", B * H, s_state, false);
    k.dx = r.get("dx", T * B * I, s_x, false);
    k.dh0 = r.get("dh0", B * H, s_state, false);
    if (lstm) k.dc0 = r.get("dc0", B * H, s_state, false);
    k.dw_ih = r.get("dWeightIh", GH * I, s_wih, true);
    k.dw_hh = r.get("dWeightHh", GH * H, s_whh, true);
    k.db_ih = r.get("dBiasIh", GH, s_b, false);
    k.db_hh = r.get("dBiasHh", GH, s_b, false);
  }
  k.dtype = r.dtype();
}

void run_guarded(Napi::Env env, SequenceCall& call) {
  try {
    call.run();
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "out of memory for this sequence (reduce batch or steps)");
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
      SetError("out of memory for this sequence (reduce batch or steps)");
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::unique_ptr<SequenceCall> call_;  // owns the references that keep the buffers alive
  Napi::Promise::Deferred deferred_;
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
  auto* worker = new SequenceWorker(env, std::move(call));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

Napi::Value Forward(const Napi::CallbackInfo& info) { return Run(info, false); }
Napi::Value Backward(const Napi::CallbackInfo& info) { return Run(info, true); }
Napi::Value ForwardAsync(const Napi::CallbackInfo& info) { return RunAsync(info, false); }
Napi::Value BackwardAsync(const Napi::CallbackInfo& info) { return RunAsync(info, true); }

Napi::Value WorkspaceSize(const Napi::CallbackInfo& info) {
  SeqConfig c = read_config(info[0]);
  return Napi::Number::New(info.Env(), double(workspace_elems(c)));
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "n: expected a positive integer");
  double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= 1) || n != std::floor(n) || n > 1024) throw Napi::RangeError::New(env, "n: expected an integer in [1, 1024]");
  ThreadPool::instance().set_num_threads(static_cast<int>(n));
  return env.Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), ThreadPool::instance().num_threads());
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
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  return exports;
}

}  // namespace
}  // namespace rnnkit

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return rnnkit::Init(env, exports); }
NODE_API_MODULE(rnnkit, InitModule)
