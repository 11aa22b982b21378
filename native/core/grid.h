// The grid driver: L layers × D directions over a whole (variable-length) batch in one call, on a
// prepared stack (oneDNN's linear_execution, PyTorch's layer stack, TF1 bidirectional_dynamic_rnn).
//
// Caller layout: time-major x [T, B, I], outputs [T, B, width] (or batch-major [B, T, ·]: batch_first); states [L·D, B, P] (PyTorch's
// h_n order: layer-major, direction-minor). The driver orders the batch by length once (longest
// first) and hands each layer-direction packed rows (sequence.h): step s of the forward direction
// reads the sequence's s-th valid time, step s of the reverse direction its (n−1−s)-th, so the
// reverse direction reverses each sequence's valid part only. Each direction's outputs land in its
// half of the layer output (concat), time-aligned; sum/mul/ave merge the top layer's halves.
//
// Valid times: `lengths` (post padding: times [0, n); pre padding: [T − n, T)), or a 0/1 mask
// [B, T] (any pattern: the valid times in order; Keras semantics: state and output carried over
// masked steps), or all T. Outputs at invalid times are zero (lengths) or carried (mask).
//
// Inference (no run kept) goes through the sequence in time chunks (grid.cc, grid_infer): beyond
// the caller's buffers it holds O(chunk · B · width), not O(T), for a unidirectional stack (layer
// by layer within each chunk); a bidirectional layer below the top needs its whole output (the
// reverse direction of the layer above starts at the end), O(T) inherently. io.y may be null
// (outputs not wanted: final states only), in training too. Results are bit-identical to one
// whole-sequence pass.
//
// Dropout (training only) comes from a counter-based generator: the keep decision for (seed,
// stream, time, sequence, feature) is a hash, so masks are the same whatever the thread count and
// the same in forward and backward. Inverted scaling (kept values × 1/keep).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "prepared.h"
#include "sequence.h"

namespace rnnkit {

enum class MergeMode { kConcat, kSum, kMul, kAve };

struct DropoutSpec {
  uint64_t seed = 0;
  double input_keep = 1;    // on each layer-direction's input (TF1 input_keep_prob, Keras dropout)
  double state_keep = 1;    // on h_{t−1} before the recurrence (TF1 state_keep_prob, Keras recurrent_dropout)
  double output_keep = 1;   // on each layer-direction's output (TF1 output_keep_prob)
  double between_keep = 1;  // on the output of every layer but the last (PyTorch dropout), shared by directions
  bool variational = false;        // one mask per sequence for all steps (input, state, output)
  bool state_on_initial = false;   // the state mask also applies to h0 (Keras) or not (TF1)
  bool any() const { return input_keep < 1 || state_keep < 1 || output_keep < 1 || between_keep < 1; }
};

// The keep mask value (0 or 1/keep) of one element.
double dropout_value(uint64_t seed, uint64_t stream, int64_t t, int64_t b, int64_t j, double keep);

struct GridShape {
  int64_t T = 0, B = 0;
  // Valid times per sequence: one of lengths (int32 [B], each in [1, T]) or mask ([B, T] bytes).
  const int32_t* lengths = nullptr;
  bool pre_padding = false;
  const uint8_t* mask = nullptr;
  // A single direction returning its outputs in processing order (Keras goBackwards): position s
  // of a sequence holds its s-th step (lengths), or T−1−t (mask, as Keras reverses the whole input).
  bool processing_order_output = false;
  // The caller's x, y, dy and dx are batch-major [B, T, ·] instead of time-major [T, B, ·] (the
  // gather into packed rows reads either; layers in between stay time-major).
  bool batch_first = false;
};

// What a training forward keeps for backward (owned, freed with the run).
template <typename S>
struct GridRun;

template <typename S>
struct GridForwardIO {
  const S* x = nullptr;   // [T, B, I]
  const S* h0 = nullptr;  // [L·D, B, P] or null
  const S* c0 = nullptr;  // [L·D, B, H] or null (LSTM)
  S* y = nullptr;         // [T, B, width] (width: Σ P_d for concat, P otherwise), or null: not wanted
  S* h_n = nullptr;       // [L·D, B, P] or null
  S* c_n = nullptr;       // [L·D, B, H] or null
};

template <typename S>
struct GridBackwardIO {
  const S* dy = nullptr;     // [T, B, width] or null
  const S* dh_n = nullptr;   // [L·D, B, P] or null
  const S* dc_n = nullptr;   // [L·D, B, H] or null
  S* dx = nullptr;           // [T, B, I] or null
  S* dh0 = nullptr;          // [L·D, B, P] or null
  S* dc0 = nullptr;          // [L·D, B, H] or null
  // Per layer-direction (index layer·D + dir) weight gradients, laid out as the weights.
  std::vector<BackwardBuffers<S>> grads;  // only the grad fields are read
};

// Checks the shape (lengths/mask values) and returns "" or a message naming the bad entry.
std::string grid_check_shape(const GridShape& shape);

// Forward. With `training`, returns the run backward needs; else null.
template <typename S>
std::shared_ptr<GridRun<S>> grid_forward(std::shared_ptr<const PreparedStack<S>> stack, const GridShape& shape,
                                         MergeMode merge, const DropoutSpec& dropout, bool training,
                                         const GridForwardIO<S>& io);

template <typename S>
void grid_backward(const GridRun<S>& run, const GridBackwardIO<S>& io);

// Bytes a training forward of this shape keeps (workspace + packed inputs), and the peak scratch
// of its backward; used for the memory limit before anything is allocated.
template <typename S>
double grid_training_bytes(const PreparedStack<S>& stack, int64_t T, int64_t B);

// The run's bytes (for the garbage collector's accounting).
template <typename S>
size_t grid_run_bytes(const GridRun<S>& run);

}  // namespace rnnkit
