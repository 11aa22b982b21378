// Argument checks shared by the N-API entry points: typed arrays (dtype, length, detached or shared
// buffers), config objects, and the training memory limit. Every message names the argument and
// the expected shape.
#pragma once
#include <napi.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../core/sequence.h"

namespace rnnkit {
namespace binding {

enum class DType { kUnset, kFloat32, kFloat64 };

inline const char* dtype_name(DType d) { return d == DType::kFloat64 ? "Float64Array" : "Float32Array"; }

inline std::string shape_str(std::initializer_list<std::pair<const char*, int64_t>> dims) {
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

inline double physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? double(pages) * double(page) : 8.0 * (1ull << 30);
}

inline double default_max_training_bytes() {
  const char* env = std::getenv("RNNKIT_MAX_TRAINING_BYTES");
  if (env && *env) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    if (end && *end == '\0' && std::isfinite(v) && v >= 1) return v;
  }
  return physical_memory_bytes() / 2;
}

inline std::atomic<double> g_max_training_bytes{default_max_training_bytes()};

inline std::string format_bytes(double b) {
  char text[64];
  if (b >= double(1ull << 30)) std::snprintf(text, sizeof text, "%.2f GiB", b / double(1ull << 30));
  else if (b >= double(1 << 20)) std::snprintf(text, sizeof text, "%.2f MiB", b / double(1 << 20));
  else std::snprintf(text, sizeof text, "%.0f bytes", b);
  return std::string(text) + " (" + std::to_string(int64_t(b)) + " bytes)";
}

inline int64_t read_dim(const Napi::Object& cfg, const char* name, const std::string& where = "config") {
  Napi::Env env = cfg.Env();
  Napi::Value v = cfg.Get(name);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, where + "." + name + ": expected a positive integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1) || d != std::floor(d) || d > double(std::numeric_limits<int32_t>::max()))
    throw Napi::RangeError::New(env, where + "." + name + ": expected a positive integer below 2^31, got " +
                                         std::to_string(d));
  return static_cast<int64_t>(d);
}

inline bool read_flag(const Napi::Object& cfg, const char* name, const std::string& where = "config") {
  Napi::Value v = cfg.Get(name);
  if (v.IsUndefined() || v.IsNull()) return false;
  if (!v.IsBoolean()) throw Napi::TypeError::New(cfg.Env(), where + "." + name + ": expected a boolean");
  return v.As<Napi::Boolean>().Value();
}

inline double read_number(const Napi::Object& obj, const char* where, const char* name, double fallback, double lo, double hi) {
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
inline ActSpec read_activation(const Napi::Object& cfg, const char* key, ActSpec fallback, const std::string& prefix = "config") {
  Napi::Env env = cfg.Env();
  Napi::Value v = cfg.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  const std::string where = prefix + "." + key;
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

// The cell of one layer-direction (everything but steps, batch and reverse); `w` prefixes messages.
inline SeqConfig read_cell(const Napi::Value& value, const std::string& w) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throw Napi::TypeError::New(env, w + ": expected an object");
  Napi::Object cfg = value.As<Napi::Object>();
  SeqConfig c;
  Napi::Value cell = cfg.Get("cell");
  std::string name = cell.IsString() ? cell.As<Napi::String>().Utf8Value() : "";
  if (name == "rnn_tanh") c.cell = CellKind::kRnnTanh;
  else if (name == "rnn_relu") c.cell = CellKind::kRnnRelu;
  else if (name == "lstm") c.cell = CellKind::kLstm;
  else if (name == "gru") c.cell = CellKind::kGru;
  else throw Napi::TypeError::New(env, w + ".cell: expected 'rnn_tanh', 'rnn_relu', 'lstm' or 'gru'");
  c.linear_before_reset = read_flag(cfg, "linearBeforeReset", w);
  CellOptions& o = c.opt;
  o.cand_act.kind = c.cell == CellKind::kRnnRelu ? Act::kRelu : Act::kTanh;
  o.gate_act = read_activation(cfg, "gateActivation", o.gate_act, w);
  o.cand_act = read_activation(cfg, "candidateActivation", o.cand_act, w);
  o.out_act = read_activation(cfg, "outputActivation", o.out_act, w);
  o.clip = read_number(cfg, w.c_str(), "clip", 0, 0, 1e30);
  const bool lstm = c.cell == CellKind::kLstm;
  const char* lstm_only[] = {"peephole", "noInputGate", "noForgetGate", "noOutputGate", "coupledInputForget", "cellClip",
                             "fullGateRecurrence"};
  if (!lstm)
    for (const char* k : lstm_only)
      if (!cfg.Get(k).IsUndefined()) throw Napi::TypeError::New(env, w + "." + k + ": only for 'lstm' cells");
  if (c.cell != CellKind::kLstm && c.cell != CellKind::kGru && !cfg.Get("gateActivation").IsUndefined())
    throw Napi::TypeError::New(env, w + ".gateActivation: SimpleRNN cells have no gates (use candidateActivation)");
  o.peephole = read_flag(cfg, "peephole", w);
  o.no_input_gate = read_flag(cfg, "noInputGate", w);
  o.no_forget_gate = read_flag(cfg, "noForgetGate", w);
  o.no_output_gate = read_flag(cfg, "noOutputGate", w);
  o.coupled = read_flag(cfg, "coupledInputForget", w);
  o.full_gate_recurrence = read_flag(cfg, "fullGateRecurrence", w);
  o.cell_clip = read_number(cfg, w.c_str(), "cellClip", 0, 0, 1e30);
  if (!cfg.Get("projSize").IsUndefined() && !lstm)
    throw Napi::TypeError::New(env, w + ".projSize: only for 'lstm' cells");
  if (!cfg.Get("projSize").IsUndefined()) c.P = read_dim(cfg, "projSize", w);
  c.proj_clip = read_number(cfg, w.c_str(), "projClip", 0, 0, 1e30);
  if (c.proj_clip > 0 && c.P == 0) throw Napi::TypeError::New(env, w + ".projClip: needs " + w + ".projSize");
  if (o.coupled && (o.no_input_gate || o.no_forget_gate))
    throw Napi::RangeError::New(env, w + ".coupledInputForget: cannot be combined with noInputGate or noForgetGate "
                                     "(CIFG derives f from i)");
  c.I = read_dim(cfg, "inputSize", w);
  c.H = read_dim(cfg, "hiddenSize", w);
  const double GH = double(c.gate_width());
  if (GH * std::max({double(c.I), double(c.H), double(c.P)}) >= kInt32Limit)
    throw Napi::RangeError::New(env, w + ": the weight matrices must stay below 2^31 elements");
  return c;
}

inline SeqConfig read_config(const Napi::Value& value) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throw Napi::TypeError::New(env, "config: expected an object");
  Napi::Object cfg = value.As<Napi::Object>();
  // The order of the checks (and so which error a bad config gets first) is the cell's, then the sizes.
  SeqConfig c = read_cell(value, "config");
  c.reverse = read_flag(cfg, "reverse");
  c.T = read_dim(cfg, "steps");
  c.B = read_dim(cfg, "batch");
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
inline void check_training(Napi::Env env, const SeqConfig& c, DType dtype) {
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
inline void* typed_array_data(const Napi::Value& v, const std::string& name, int64_t length, const std::string& shape,
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
  BufferReader(const Napi::Value& value, std::vector<BufferBinding>* bindings, const std::string& where = "buffers",
               DType expected = DType::kUnset)
      : dtype_(expected), bindings_(bindings) {
    if (!value.IsObject()) throw Napi::TypeError::New(value.Env(), where + ": expected an object of typed arrays");
    obj_ = value.As<Napi::Object>();
  }
  DType dtype() const { return dtype_; }

  // Reads buffers[name] now; check() sets *field to its data, or null when absent and optional.
  template <typename P>
  void bind(P** field, const std::string& key, int64_t length, const std::string& shape, bool required, bool output,
            const std::string& label = "") {
    *field = nullptr;
    pending_.push_back({obj_.Get(key), (void**)field, label.empty() ? key : label, length, shape, required, output});
  }

  void check() {
    Napi::Env env = obj_.Env();
    for (Pending& p : pending_) {
      if (p.value.IsUndefined() || p.value.IsNull()) {
        if (p.required)
          throw Napi::TypeError::New(env, p.name + ": required, expected a " +
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
    std::string name;
    int64_t length;
    std::string shape;
    bool required, output;
  };
  Napi::Object obj_;
  DType dtype_ = DType::kUnset;
  std::vector<BufferBinding>* bindings_;
  std::vector<Pending> pending_;
};


}  // namespace binding
}  // namespace rnnkit
