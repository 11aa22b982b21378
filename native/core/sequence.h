// Whole-sequence forward and backpropagation through time for one layer-direction.
//
// Data is time-major and row-major: x [T, B, I], y [T, B, P] (P = H unless an LSTM projects). Weights in PyTorch layout and gate
// order: w_ih [G·H, I], w_hh [G·H, H], b_ih [G·H], b_hh [G·H]. Outputs stay at their time index
// when cfg.reverse is set (like PyTorch's reverse direction).
//
// The training workspace (workspace_elems(cfg) scalars) holds, in time order:
//   gates [T, B, G·H]  gate activations
//   hs    [T+1, B, P]  hidden states; forward: row 0 = h0, row t+1 = h_t; reverse: row t = h_t, row T = h0
//   cs    [T+1, B, H]  LSTM cell states, same rows as hs
//   ms    [T, B, H]    LSTMP only: o ⊙ act(c_t) before the projection
//   acts  [T+1, B, 3H] FGR only: effective i, f, o of each step, rows as hs (the t−1 row is zeros)
//   aux   [T, B, H]    GRU only: R_n h_prev + b_Rn (linear before reset) or r ⊙ h_prev (reset before)
// With options set (cfg.general()), gates holds pre-activations instead of activations.
// so that h_prev of every time step forms one contiguous [T·B, H] matrix for the dW_hh GEMM.
#pragma once
#include <cstdint>

#include "../cells/cell_kinds.h"

namespace rnnkit {

int64_t workspace_elems(const SeqConfig& cfg);
// Scalars sequence_backward allocates for itself (gradients of every step's gates, carried states).
int64_t backward_scratch_elems(const SeqConfig& cfg);

template <typename S>
struct ForwardBuffers {
  const S* x = nullptr;     // [T, B, I]
  const S* h0 = nullptr;    // [B, H] or null (zeros)
  const S* c0 = nullptr;    // [B, H] or null (zeros); LSTM
  const S* w_ih = nullptr;  // [G·H, I]
  const S* w_hh = nullptr;  // [G·H, P]   (P = cfg.state_size(): H, or the projection size)
  const S* w_hr = nullptr;  // [P, H] LSTM projection, when cfg.P > 0
  const S* w_gr = nullptr;  // [3H, 3H] LSTM full gate recurrence (rows: gate i, f, o; columns: i, f, o at t−1)
  const S* b_ih = nullptr;  // [G·H] or null
  const S* b_hh = nullptr;  // [G·H] or null
  const S* peep = nullptr;  // [3H] LSTM peepholes (p_i, p_f, p_o) when cfg.opt.peephole
  S* y = nullptr;           // [T, B, H] or null
  S* h_n = nullptr;         // [B, H] or null
  S* c_n = nullptr;         // [B, H] or null; LSTM
  S* workspace = nullptr;   // [workspace_elems] for training; null for inference (O(B·H) memory)
};

template <typename S>
struct BackwardBuffers {
  const S* x = nullptr;          // [T, B, I]
  const S* w_ih = nullptr;       // [G·H, I]
  const S* w_hh = nullptr;       // [G·H, P]
  const S* w_hr = nullptr;       // [P, H] when cfg.P > 0
  const S* w_gr = nullptr;       // [3H, 3H] with full gate recurrence
  const S* workspace = nullptr;  // as filled by the training forward
  const S* peep = nullptr;       // [3H] when cfg.opt.peephole
  const S* dy = nullptr;         // [T, B, H] or null
  const S* dh_n = nullptr;       // [B, H] or null
  const S* dc_n = nullptr;       // [B, H] or null; LSTM
  S* dx = nullptr;               // [T, B, I] or null
  S* dh0 = nullptr;              // [B, H] or null
  S* dc0 = nullptr;              // [B, H] or null
  S* dw_ih = nullptr;            // [G·H, I]
  S* dw_hh = nullptr;            // [G·H, H]
  S* db_ih = nullptr;            // [G·H] or null
  S* db_hh = nullptr;            // [G·H] or null
  S* dpeep = nullptr;            // [3H] or null
  S* dw_hr = nullptr;            // [P, H] when cfg.P > 0
  S* dw_gr = nullptr;            // [3H, 3H] with full gate recurrence
};

template <typename S>
void sequence_forward(const SeqConfig& cfg, const ForwardBuffers<S>& buf);

template <typename S>
void sequence_backward(const SeqConfig& cfg, const BackwardBuffers<S>& buf);

}  // namespace rnnkit
