// Whole-sequence forward and backpropagation through time for one layer-direction, on prepared
// weights (prepared.h), in processing order over packed rows.
//
// Packed rows (PyTorch's packed sequences): the batch is sorted by length, longest first, and step
// s (s = 0 .. T−1, in the order the direction processes its inputs) holds the first B_s sequences
// that are still running, B_0 = B ≥ B_1 ≥ … ≥ 1, as rows [off_s, off_s + B_s) of every [N, ·]
// matrix (N = Σ B_s). Step s works on B_s rows only: no work on padding. A uniform batch is the
// case B_s = B, off_s = s·B (plain time-major [T, B, ·]). Reversal and the mapping to the caller's
// layout are the grid driver's (grid.h): this core always runs s = 0, 1, …
//
// The training workspace (workspace_elems(cfg) scalars) holds:
//   gates [N, G·H]     gate activations (pre-activations with options set: cfg.general())
//   hs    [B + N, P]   rows [0, B) = h0, then step s's output h_s at rows B + off_s
//   cs    [B + N, H]   LSTM cell states, same rows
//   aux   [N, H]       GRU: R_n h_prev + b_Rn (linear before reset) or r ⊙ h_prev (reset before)
//   ms    [N, H]       LSTMP only: o ⊙ act(c_t) before the projection
//   acts  [B + N, 3H]  FGR only: effective i, f, o of each step (rows [0, B) are zeros)
//   hd    [N, P]       state dropout only: the masked h_prev each step's recurrence read
#pragma once
#include <cstdint>

#include "../cells/cell_kinds.h"
#include "prepared.h"

namespace rnnkit {

// The packing of one call: T steps of a batch of B; sizes null = uniform.
struct StepPlan {
  int64_t T = 0, B = 0;
  const int64_t* sizes = nullptr;    // [T] B_s, non-increasing, B_0 = B, each >= 1
  const int64_t* offsets = nullptr;  // [T + 1] off_s, off_T = N
  int64_t size(int64_t s) const { return sizes ? sizes[s] : B; }
  int64_t offset(int64_t s) const { return offsets ? offsets[s] : s * B; }
  int64_t rows() const { return offset(T); }
  bool uniform() const { return sizes == nullptr || sizes[T - 1] == B; }
};

// cfg.T and cfg.B give the sizes; N = rows of the packing (T·B when uniform).
int64_t workspace_elems(const SeqConfig& cfg, int64_t N, bool state_dropout);
inline int64_t workspace_elems(const SeqConfig& cfg) { return workspace_elems(cfg, cfg.T * cfg.B, false); }
// Scalars sequence_backward allocates for itself.
int64_t backward_scratch_elems(const SeqConfig& cfg, int64_t N);
inline int64_t backward_scratch_elems(const SeqConfig& cfg) { return backward_scratch_elems(cfg, cfg.T * cfg.B); }

template <typename S>
struct ForwardBuffers {
  const S* x = nullptr;           // [N, I] packed
  const S* h0 = nullptr;          // [B, P] or null (zeros), sorted rows
  const S* c0 = nullptr;          // [B, H] or null (zeros); LSTM
  const S* state_mask = nullptr;  // [N, P] or null: h_prev of step s is read as h_prev ⊙ mask rows off_s
  S* y = nullptr;                 // [N, P] or null
  S* h_n = nullptr;               // [B, P] or null: each sequence's state after its last step
  S* c_n = nullptr;               // [B, H] or null; LSTM
  S* workspace = nullptr;         // for training; null for inference (O(B·H) memory)
  // Inference, LSTM full gate recurrence: the effective i, f, o [B, 3H] the first step reads as
  // the previous step's (null: zeros), and where the last step's go (null: dropped). With these and
  // h0/c0 a sequence can run in pieces (the grid driver's time chunks): a piece's h_n/c_n/acts_n
  // are the next piece's h0/c0/acts0. For inference h_n may alias h0, c_n c0 and acts_n acts0
  // (the initial values are read by the first step only, the final ones written after it).
  const S* acts0 = nullptr;
  S* acts_n = nullptr;
};

// The steps inference projects at once (a chunk of the input projection, kProjectionChunk
// scalars of gates at most): sequence_forward runs a plan of at most this many steps of a batch of
// at most B in one projection, whatever the packing, so a caller that splits a sequence into
// pieces of this many steps gets the same projections (bit for bit) as one call.
int64_t inference_chunk_steps(const SeqConfig& cfg, int64_t T, int64_t B);

template <typename S>
struct BackwardBuffers {
  const S* x = nullptr;           // [N, I] packed, as in the forward
  const S* workspace = nullptr;   // as filled by the training forward
  const S* state_mask = nullptr;  // as in the forward
  const S* dy = nullptr;          // [N, P] or null
  const S* dh_n = nullptr;        // [B, P] or null
  const S* dc_n = nullptr;        // [B, H] or null; LSTM
  S* dx = nullptr;                // [N, I] or null
  bool dx_accumulate = false;     // add into dx instead of overwriting it
  S* dh0 = nullptr;               // [B, P] or null
  S* dc0 = nullptr;               // [B, H] or null
  // The parameters' gradients, laid out as the parameters (cells/cell_params.h): weightIh and
  // weightHh always, the others where the cell has them (the biases may be null: not wanted).
  CellParamSet<S> grad;
};

// W's config gives the cell; plan gives T, B and the packing.
template <typename S>
void sequence_forward(const PreparedLayer<S>& W, const StepPlan& plan, const ForwardBuffers<S>& buf);

template <typename S>
void sequence_backward(const PreparedLayer<S>& W, const StepPlan& plan, const BackwardBuffers<S>& buf);

}  // namespace rnnkit
