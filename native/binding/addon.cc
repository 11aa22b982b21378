// The N-API surface of rnnkit. Everything a JavaScript caller can pass is checked here (types,
// lengths, sizes, detached buffers) before any kernel runs, so no argument can crash the process;
// the typed TypeScript layer in lib/ checks first with user-facing names.
//
//   workspaceSize(config) -> number
//   forward(config, buffers) / forwardAsync(config, buffers) -> undefined / Promise<undefined>
//   backward(config, buffers) / backwardAsync(config, buffers)
//   setNumThreads(n) -> 'applied' | 'deferred', getNumThreads(), setMaxTrainingBytes(bytes), getMaxTrainingBytes()
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
#include "../core/orthogonal.h"
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

constexpr double kInt32Limit = double(std::numeric_limits<int32_t>::max());

double physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? double(pages) * double(page) : 8.0 * (1ull << 30);
}

double default_max_training_bytes() {
  const char* env = std::getenv("RNNKIT_MAX_TRAINING_BYTES");
  if (env && *env) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    if (end && *end == '\0' && std::isfinite(v) && v >= 1) return v;
  }
  return physical_memory_bytes() / 2;
}

std::atomic<double> g_max_training_bytes{default_max_training_bytes()};

std::string format_bytes(double b) {
  char text[64];
  if (b >= double(1ull << 30)) std::snprintf(text, sizeof text, "%.2f GiB", b / double(1ull << 30));
  else if (b >= double(1 << 20)) std::snprintf(text, sizeof text, "%.2f MiB", b / double(1 << 20));
  else std::snprintf(text, sizeof text, "%.0f bytes", b);
  return std::string(text) + " (" + std::to_string(int64_t(b)) + " bytes)";
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

double read_number(const Napi::Object& obj, const char* where, const char* name, double fallback, double lo, double hi) {
  Napi::Value v = obj.Get(name);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(obj.Env(), std::string(where) + "." + name + ": expected a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < lo || d > hi)
    throw Napi::RangeError::New(obj.Env(), std::string(where) + "." + name + ": expected a finite number in [" +
                                               std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                                               std::to_string(d));
  return d;
}

// An activation: { name: 'Sigmoid' | 'Tanh' | … (the ONNX names), alpha?, beta? }, defaults as ONNX.
ActSpec read_activation(const Napi::Object& cfg, const char* key, ActSpec fallback) {
  Napi::Env env = cfg.Env();
  Napi::Value v = cfg.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  const std::string where = std::string("config.") + key;
  if (!v.IsObject()) throw Napi::TypeError::New(env, where + ": expected { name, alpha?, beta? }");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value n = o.Get("name");
  const std::string name = n.IsString() ? n.As<Napi::String>().Utf8Value() : "";
  struct Known { const char* name; Act kind; double alpha, beta; };
  static const Known known[] = {
      {"Sigmoid", Act::kSigmoid, 0, 0},     {"Tanh", Act::kTanh, 0, 0},
      {"Relu", Act::kRelu, 0, 0},           {"HardSigmoid", Act::kHardSigmoid, 0.2, 0.5},
      {"Affine", Act::kAffine, 1, 0},       {"LeakyRelu", Act::kLeakyRelu, 0.01, 0},
      {"ThresholdedRelu", Act::kThresholdedRelu, 1, 0}, {"ScaledTanh", Act::kScaledTanh, 1, 1},
      {"Elu", Act::kElu, 1, 0},             {"Softsign", Act::kSoftsign, 0, 0},
      {"Softplus", Act::kSoftplus, 0, 0}};
  for (const Known& k : known) {
    if (name != k.name) continue;
    ActSpec a;
    a.kind = k.kind;
    a.alpha = read_number(o, where.c_str(), "alpha", k.alpha, -1e30, 1e30);
    a.beta = read_number(o, where.c_str(), "beta", k.beta, -1e30, 1e30);
    return a;
  }
  throw Napi::TypeError::New(env, where + ".name: expected one of Sigmoid, Tanh, Relu, HardSigmoid, Affine, LeakyRelu, "
                                          "ThresholdedRelu, ScaledTanh, Elu, Softsign, Softplus");
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
  CellOptions& o = c.opt;
  o.cand_act.kind = c.cell == CellKind::kRnnRelu ? Act::kRelu : Act::kTanh;
  o.gate_act = read_activation(cfg, "gateActivation", o.gate_act);
  o.cand_act = read_activation(cfg, "candidateActivation", o.cand_act);
  o.out_act = read_activation(cfg, "outputActivation", o.out_act);
  o.clip = read_number(cfg, "config", "clip", 0, 0, 1e30);
  const bool lstm = c.cell == CellKind::kLstm;
  const char* lstm_only[] = {"peephole", "noInputGate", "noForgetGate", "noOutputGate", "coupledInputForget", "cellClip",
                             "fullGateRecurrence"};
  if (!lstm)
    for (const char* k : lstm_only)
      if (!cfg.Get(k).IsUndefined()) throw Napi::TypeError::New(env, std::string("config.") + k + ": only for 'lstm' cells");
  if (c.cell != CellKind::kLstm && c.cell != CellKind::kGru && !cfg.Get("gateActivation").IsUndefined())
    throw Napi::TypeError::New(env, "config.gateActivation: SimpleRNN cells have no gates (use candidateActivation)");
  o.peephole = read_flag(cfg, "peephole");
  o.no_input_gate = read_flag(cfg, "noInputGate");
  o.no_forget_gate = read_flag(cfg, "noForgetGate");
  o.no_output_gate = read_flag(cfg, "noOutputGate");
  o.coupled = read_flag(cfg, "coupledInputForget");
  o.full_gate_recurrence = read_flag(cfg, "fullGateRecurrence");
  o.cell_clip = read_number(cfg, "config", "cellClip", 0, 0, 1e30);
  if (!cfg.Get("projSize").IsUndefined() && !lstm)
    throw Napi::TypeError::New(env, "config.projSize: only for 'lstm' cells");
  if (!cfg.Get("projSize").IsUndefined()) c.P = read_dim(cfg, "projSize");
  c.proj_clip = read_number(cfg, "config", "projClip", 0, 0, 1e30);
  if (c.proj_clip > 0 && c.P == 0) throw Napi::TypeError::New(env, "config.projClip: needs config.projSize");
  if (o.coupled && (o.no_input_gate || o.no_forget_gate))
    throw Napi::RangeError::New(env, "config.coupledInputForget: cannot be combined with noInputGate or noForgetGate "
                                     "(CIFG derives f from i)");
  c.reverse = read_flag(cfg, "reverse");
  c.T = read_dim(cfg, "steps");
  c.B = read_dim(cfg, "batch");
  c.I = read_dim(cfg, "inputSize");
  c.H = read_dim(cfg, "hiddenSize");
  // Inference works one step (and one bounded projection chunk) at a time: every matrix handed to
  // BLAS indexes with 32-bit integers, and the whole input and output stay addressable.
  const double GH = double(c.gate_width());
  const double widest = std::max({double(c.I), GH, double(c.H), double(c.P)});
  if (double(c.B) * widest >= kInt32Limit || GH * std::max({double(c.I), double(c.H), double(c.P)}) >= kInt32Limit)
    throw Napi::RangeError::New(env, "config: batch·max(inputSize, gates·hiddenSize) and the weight matrices must stay "
                                     "below 2^31 elements");
  if (double(c.T) * double(c.B) * widest >= 9e15)
    throw Napi::RangeError::New(env, "config: steps·batch·max(inputSize, gates·hiddenSize) must stay below 2^53");
  return c;
}

// Training keeps every step: its whole-sequence GEMMs run over steps·batch rows with 32-bit
// indices, and its memory (the workspace, then backward's own scratch) must fit under the limit
// set by setMaxTrainingBytes() / RNNKIT_MAX_TRAINING_BYTES (default: half the physical memory),
// so that a too-long sequence is a RangeError instead of the process being killed for memory.
void check_training(Napi::Env env, const SeqConfig& c, DType dtype) {
  const double GH = double(c.gate_width());
  const double widest = std::max({double(c.I), GH, double(c.H), double(c.P)});
  if (double(c.T) * double(c.B) * widest >= kInt32Limit)
    throw Napi::RangeError::New(env, "config: training needs steps·batch·max(inputSize, gates·hiddenSize) below 2^31 "
                                     "(got " + std::to_string(int64_t(double(c.T) * double(c.B) * widest)) +
                                     "); split the sequence (truncated BPTT) or the batch");
  const double elem = dtype == DType::kFloat64 ? 8 : 4;
  const double ws = double(workspace_elems(c)) * elem, scratch = double(backward_scratch_elems(c)) * elem;
  const double limit = g_max_training_bytes.load();
  if (ws + scratch > limit)
    throw Napi::RangeError::New(env, "config: training this sequence needs " + format_bytes(ws + scratch) + " (workspace " +
                                         format_bytes(ws) + ", backward scratch " + format_bytes(scratch) +
                                         "), above the limit of " + format_bytes(limit) +
                                         "; shorten the sequence or the batch, or raise the limit with "
                                         "setMaxTrainingBytes() or RNNKIT_MAX_TRAINING_BYTES");
}

// One typed array of a call: where its data pointer is stored in the call, and whether the call writes it.
struct BufferBinding {
  std::string name;
  Napi::Reference<Napi::Value> ref;  // keeps the typed array alive until the call ends
  void** field;                      // the call's pointer to the data (swapped for a private copy when async)
  size_t bytes;
  bool output;
};

// Returns the typed array's data or throws a TypeError/RangeError naming it: Float32Array or
// Float64Array only, not detached, not shared, exactly `length` elements.
void* typed_array_data(const Napi::Value& v, const std::string& name, int64_t length, const std::string& shape,
                       DType* dtype) {
  Napi::Env env = v.Env();
  const std::string expected = std::string(*dtype == DType::kUnset ? "Float32Array or Float64Array" : dtype_name(*dtype));
  if (!v.IsTypedArray()) throw Napi::TypeError::New(env, name + ": expected a " + expected + " of shape " + shape);
  napi_typedarray_type type;
  size_t elements = 0, offset = 0;
  napi_value buffer;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &elements, &data, &buffer, &offset) != napi_ok)
    throw Napi::TypeError::New(env, name + ": could not read the typed array");
  DType d;
  switch (type) {
    case napi_float32_array: d = DType::kFloat32; break;
    case napi_float64_array: d = DType::kFloat64; break;
    default: throw Napi::TypeError::New(env, name + ": expected a " + expected + " of shape " + shape);
  }
  if (*dtype == DType::kUnset) *dtype = d;
  else if (d != *dtype)
    throw Napi::TypeError::New(env, name + ": expected a " + dtype_name(*dtype) +
                                        " (all buffers of a call share one dtype), got a " + dtype_name(d));
  bool is_plain = false;
  napi_is_arraybuffer(env, buffer, &is_plain);
  if (!is_plain)
    throw Napi::TypeError::New(env, name + ": typed arrays over a SharedArrayBuffer are not accepted (another thread "
                                           "could change them during the call); copy into a regular " + dtype_name(d));
  bool detached = false;
  napi_is_detached_arraybuffer(env, buffer, &detached);
  if (detached) throw Napi::TypeError::New(env, name + ": its ArrayBuffer is detached (was it transferred?)");
  if (static_cast<int64_t>(elements) != length)
    throw Napi::RangeError::New(env, name + ": expected " + std::to_string(length) + " elements for shape " + shape +
                                         ", got " + std::to_string(elements));
  return data;
}

// Reads the typed arrays of one call, all of one dtype, and records them as bindings.
// Two phases, so no JavaScript runs between checking a buffer and using it: bind() only reads
// buffers[name] (which may run a getter or a Proxy trap, and that code could resize or transfer a
// buffer read earlier); check() then validates every value read, with no JavaScript in between.
class BufferReader {
 public:
  BufferReader(const Napi::Value& value, std::vector<BufferBinding>* bindings) : bindings_(bindings) {
    if (!value.IsObject()) throw Napi::TypeError::New(value.Env(), "buffers: expected an object of typed arrays");
    obj_ = value.As<Napi::Object>();
  }
  DType dtype() const { return dtype_; }

  // Reads buffers[name] now; check() sets *field to its data, or null when absent and optional.
  template <typename P>
  void bind(P** field, const char* name, int64_t length, const std::string& shape, bool required, bool output) {
    *field = nullptr;
    pending_.push_back({obj_.Get(name), (void**)field, name, length, shape, required, output});
  }

  void check() {
    Napi::Env env = obj_.Env();
    for (Pending& p : pending_) {
      if (p.value.IsUndefined() || p.value.IsNull()) {
        if (p.required)
          throw Napi::TypeError::New(env, std::string(p.name) + ": required, expected a " +
                                              (dtype_ == DType::kUnset ? "Float32Array or Float64Array" : dtype_name(dtype_)) +
                                              " of shape " + p.shape);
        continue;
      }
      *p.field = typed_array_data(p.value, p.name, p.length, p.shape, &dtype_);
    }
    // Bindings (and the references that keep the arrays alive) once every buffer has passed.
    for (Pending& p : pending_) {
      if (!*p.field) continue;
      const size_t bytes = size_t(p.length) * (dtype_ == DType::kFloat64 ? 8 : 4);
      // const void* and void* share a representation: one slot type serves inputs and outputs.
      bindings_->push_back({p.name, Napi::Persistent(p.value), p.field, bytes, p.output});
    }
    pending_.clear();
  }

 private:
  struct Pending {
    Napi::Value value;
    void** field;
    const char* name;
    int64_t length;
    std::string shape;
    bool required, output;
  };
  Napi::Object obj_;
  DType dtype_ = DType::kUnset;
  std::vector<BufferBinding>* bindings_;
  std::vector<Pending> pending_;
};

// One fully checked call: plain config and raw pointers, runnable on any thread.
struct SequenceCall {
  SeqConfig cfg;
  DType dtype = DType::kFloat32;
  bool backward = false;
  // forward
  const void *x = nullptr, *h0 = nullptr, *c0 = nullptr, *w_ih = nullptr, *w_hh = nullptr, *b_ih = nullptr,
             *b_hh = nullptr, *peep = nullptr, *w_hr = nullptr, *w_gr = nullptr;
  void *y = nullptr, *h_n = nullptr, *c_n = nullptr, *workspace = nullptr;
  // backward
  const void *dy = nullptr, *dh_n = nullptr, *dc_n = nullptr;
  void *dx = nullptr, *dh0 = nullptr, *dc0 = nullptr, *dw_ih = nullptr, *dw_hh = nullptr, *db_ih = nullptr,
       *db_hh = nullptr, *dpeep = nullptr, *dw_hr = nullptr, *dw_gr = nullptr;
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

  template <typename S>
  void run_typed() {
    if (!backward) {
      ForwardBuffers<S> f;
      f.x = static_cast<const S*>(x); f.h0 = static_cast<const S*>(h0); f.c0 = static_cast<const S*>(c0);
      f.w_ih = static_cast<const S*>(w_ih); f.w_hh = static_cast<const S*>(w_hh);
      f.b_ih = static_cast<const S*>(b_ih); f.b_hh = static_cast<const S*>(b_hh);
      f.peep = static_cast<const S*>(peep); f.w_hr = static_cast<const S*>(w_hr); f.w_gr = static_cast<const S*>(w_gr);
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
      b.peep = static_cast<const S*>(peep); b.dpeep = static_cast<S*>(dpeep);
      b.w_hr = static_cast<const S*>(w_hr); b.dw_hr = static_cast<S*>(dw_hr);
      b.w_gr = static_cast<const S*>(w_gr); b.dw_gr = static_cast<S*>(dw_gr);
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
  BufferReader r(info[1], &k.bindings);
  const std::string s_x = shape_str({{"steps", T}, {"batch", B}, {"inputSize", I}});
  const int64_t P = c.state_size();
  const char* p_name = c.P > 0 ? "projSize" : "hiddenSize";
  const std::string s_y = shape_str({{"steps", T}, {"batch", B}, {p_name, P}});
  const std::string s_state = shape_str({{"batch", B}, {p_name, P}});
  const std::string s_cell = shape_str({{"batch", B}, {"hiddenSize", H}});
  const std::string s_wih = shape_str({{"gates·hiddenSize", G * H}, {"inputSize", I}});
  const std::string s_whh = shape_str({{"gates·hiddenSize", G * H}, {p_name, P}});
  const std::string s_whr = shape_str({{"projSize", P}, {"hiddenSize", H}});
  const std::string s_b = shape_str({{"gates·hiddenSize", GH}});
  const std::string s_peep = shape_str({{"3·hiddenSize", 3 * H}});
  const int64_t ws = workspace_elems(c);
  const std::string s_ws = "[" + std::to_string(ws) + "] (workspaceSize(config))";

  r.bind(&k.x, "x", T * B * I, s_x, true, false);
  r.bind(&k.w_ih, "weightIh", GH * I, s_wih, true, false);
  r.bind(&k.w_hh, "weightHh", GH * P, s_whh, true, false);
  if (c.P > 0) r.bind(&k.w_hr, "weightHr", P * H, s_whr, true, false);
  const std::string s_wgr = shape_str({{"3·hiddenSize", 3 * H}, {"3·hiddenSize", 3 * H}});
  if (c.opt.full_gate_recurrence) r.bind(&k.w_gr, "weightGr", 9 * H * H, s_wgr, true, false);
  if (!backward) {
    r.bind(&k.h0, "h0", B * P, s_state, false, false);
    if (lstm) r.bind(&k.c0, "c0", B * H, s_cell, false, false);
    r.bind(&k.b_ih, "biasIh", GH, s_b, false, false);
    r.bind(&k.b_hh, "biasHh", GH, s_b, false, false);
    r.bind(&k.peep, "peephole", 3 * H, s_peep, c.opt.peephole, false);
    r.bind(&k.y, "y", T * B * P, s_y, false, true);
    r.bind(&k.h_n, "hN", B * P, s_state, false, true);
    if (lstm) r.bind(&k.c_n, "cN", B * H, s_cell, false, true);
    r.bind(&k.workspace, "workspace", ws, s_ws, false, !backward);
  } else {
    r.bind(&k.workspace, "workspace", ws, s_ws, true, !backward);
    r.bind(&k.peep, "peephole", 3 * H, s_peep, c.opt.peephole, false);
    if (c.opt.peephole) r.bind(&k.dpeep, "dPeephole", 3 * H, s_peep, false, true);
    r.bind(&k.dy, "dy", T * B * P, s_y, false, false);
    r.bind(&k.dh_n, "dhN", B * P, s_state, false, false);
    if (lstm) r.bind(&k.dc_n, "dcN", B * H, s_cell, false, false);
    r.bind(&k.dx, "dx", T * B * I, s_x, false, true);
    r.bind(&k.dh0, "dh0", B * P, s_state, false, true);
    if (lstm) r.bind(&k.dc0, "dc0", B * H, s_cell, false, true);
    r.bind(&k.dw_ih, "dWeightIh", GH * I, s_wih, true, true);
    r.bind(&k.dw_hh, "dWeightHh", GH * P, s_whh, true, true);
    if (c.P > 0) r.bind(&k.dw_hr, "dWeightHr", P * H, s_whr, true, true);
    if (c.opt.full_gate_recurrence) r.bind(&k.dw_gr, "dWeightGr", 9 * H * H, s_wgr, true, true);
    r.bind(&k.db_ih, "dBiasIh", GH, s_b, false, true);
    r.bind(&k.db_hh, "dBiasHh", GH, s_b, false, true);
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
  exports.Set("orthonormalizeRows", Napi::Function::New(env, OrthonormalizeRows, "orthonormalizeRows"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("setMaxTrainingBytes", Napi::Function::New(env, SetMaxTrainingBytes, "setMaxTrainingBytes"));
  exports.Set("getMaxTrainingBytes", Napi::Function::New(env, GetMaxTrainingBytes, "getMaxTrainingBytes"));
  return exports;
}

}  // namespace
}  // namespace rnnkit

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return rnnkit::Init(env, exports); }
NODE_API_MODULE(rnnkit, InitModule)
