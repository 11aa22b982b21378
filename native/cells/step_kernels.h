// The element-wise (post-GEMM) work of one time step, for every cell kind, as a table of plain
// functions. Each runs over a rectangle, rows [b0, b1) × hidden units [k0, k1), of the step's [B, H]
// grid, so the sequence driver can split a step across the thread pool. float has one table per instruction set (AVX-512,
// AVX2+FMA, portable), picked once at load time; double has the portable one (gradient checks).
#pragma once
#include <cstdint>

#include "cell_kinds.h"

namespace rnnkit {

template <typename S>
struct StepArgs {
  int64_t H = 0, GH = 0;        // row strides of [B, H] and [B, G·H] matrices
  S* gates = nullptr;           // [B, G·H] pre-activations in, activations out (forward); activations (backward)
  S* h = nullptr;               // [B, H] output state
  S* c = nullptr;               // [B, H] LSTM cell state out
  const S* h_prev = nullptr;    // [B, H]
  const S* c_prev = nullptr;    // [B, H]
  const S* hh = nullptr;        // [B, G·H] GRU-lbr: h_prev · R^T
  const S* b_hh = nullptr;      // [G·H] GRU-lbr (zeros when the layer has no bias)
  S* aux = nullptr;             // [B, H] GRU: R_n h_prev + b_Rn (lbr) or r ⊙ h_prev (reset before)
  // backward
  const S* h_cur = nullptr;     // [B, H] the step's output state
  const S* c_cur = nullptr;     // [B, H]
  const S* dh = nullptr;        // [B, H] carried gradient of the step's output state
  const S* dy = nullptr;        // [B, H] gradient from the output sequence (zeros when there is none)
  S* dc = nullptr;              // [B, H] LSTM: carried dc in, dc_prev out (in place)
  S* dgx = nullptr;             // [B, G·H] gradients of the x-side pre-activations
  S* dgh = nullptr;             // [B, G·H] of the h-side ones (GRU-lbr; else same as dgx)
  S* dh_prev = nullptr;         // [B, H] direct-path part of the previous state's gradient (GRU)
  const S* drh = nullptr;       // [B, H] GRU reset-before: d(r ⊙ h_prev)
  // general kernels
  const CellOptions* opt = nullptr;
  const S* peep = nullptr;      // [3H] LSTM peepholes p_i, p_f, p_o, or null
  S* acts = nullptr;            // [B, 3H] LSTM FGR: effective i, f, o out (forward), or null
  const S* dacts = nullptr;     // [B, 3H] LSTM FGR: their incoming gradient (backward), or null
};

template <typename S>
using StepKernel = void (*)(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1);

template <typename S>
struct StepKernels {
  const char* isa;
  StepKernel<S> rnn_tanh_forward, rnn_relu_forward, lstm_forward, gru_lbr_forward, gru_rb_rz_forward,
      gru_rb_n_forward;
  StepKernel<S> rnn_tanh_backward, rnn_relu_backward, lstm_backward, gru_lbr_backward, gru_rb_zn_backward,
      gru_rb_r_backward;
  // General kernels (options set; see general.h): pre-activations stay in the workspace.
  StepKernel<S> rnn_general_forward, lstm_general_forward, gru_lbr_general_forward, gru_rb_general_rz_forward,
      gru_rb_general_n_forward;
  StepKernel<S> rnn_general_backward, lstm_general_backward, gru_lbr_general_backward,
      gru_rb_general_zn_backward, gru_rb_general_r_backward;
};

template <typename S>
const StepKernels<S>& step_kernels();

// Per-ISA tables (defined in step_kernels_{generic,avx2,avx512}.cc).
namespace generic { extern const StepKernels<float> kStepKernelsF32; extern const StepKernels<double> kStepKernelsF64; }
namespace avx2 { extern const StepKernels<float> kStepKernelsF32; }
namespace avx512 { extern const StepKernels<float> kStepKernelsF32; }

}  // namespace rnnkit
