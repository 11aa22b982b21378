// GRU post-GEMM math (PyTorch gate order r, z, n):
//   r = σ(a_r)  z = σ(a_z)  h = (1 − z) ⊙ n + z ⊙ h_prev
//   reset before (Cho 2014, Keras reset_after=False): n = tanh(W_n x + b_n + R_n (r ⊙ h_prev))
//   linear before reset (PyTorch, cuDNN, ONNX lbr=1):  n = tanh(W_n x + b_Wn + r ⊙ (R_n h_prev + b_Rn))
#pragma once
#include "activations.h"

namespace rnnkit {

// ---- linear before reset: one recurrent GEMM, hh = h_prev · R^T (no bias) ----
// gates: [3H] x-projection (with b_W) in, activations r, z, n out; hn: [H] out (R_n h_prev + b_Rn);
// hh: [3H]; b_hh: [3H] or null; h_prev, h: [H].
template <typename S>
inline void gru_lbr_forward_row(S* gates, S* hn, S* h, const S* hh, const S* b_hh, const S* h_prev,
                                int64_t H, int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; ++k) {
    S br = b_hh ? b_hh[k] : S(0), bz = b_hh ? b_hh[H + k] : S(0), bn = b_hh ? b_hh[2 * H + k] : S(0);
    S r = sigmoid(gates[k] + hh[k] + br);
    S z = sigmoid(gates[H + k] + hh[H + k] + bz);
    S hnk = hh[2 * H + k] + bn;
    S n = tanh_act(gates[2 * H + k] + r * hnk);
    gates[k] = r; gates[H + k] = z; gates[2 * H + k] = n;
    hn[k] = hnk;
    h[k] = (S(1) - z) * n + z * h_prev[k];
  }
}

// dgx: [3H] out, gradients of the x-side pre-activations; dgh: [3H] out, of the h-side ones
// (they differ in the n block: dgh_n = dgx_n ⊙ r); dh_prev: [H] out, the direct path (dh ⊙ z).
template <typename S>
inline void gru_lbr_backward_row(S* dgx, S* dgh, S* dh_prev, const S* gates, const S* hn, const S* h_prev,
                                 const S* dh, const S* dy, int64_t H, int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; ++k) {
    S r = gates[k], z = gates[H + k], n = gates[2 * H + k];
    S dht = dh[k] + (dy ? dy[k] : S(0));
    S dan = dht * (S(1) - z) * (S(1) - n * n);
    S dar = dan * hn[k] * r * (S(1) - r);
    S daz = dht * (h_prev[k] - n) * z * (S(1) - z);
    dgx[k] = dar; dgx[H + k] = daz; dgx[2 * H + k] = dan;
    dgh[k] = dar; dgh[H + k] = daz; dgh[2 * H + k] = dan * r;
    dh_prev[k] = dht * z;
  }
}

// ---- reset before: a GEMM for r, z, then r ⊙ h_prev, then a GEMM for n ----
// Phase 1. gates: [3H] pre-activations of r, z (x- and h-side summed) in, activations out;
// rh: [H] out (r ⊙ h_prev).
template <typename S>
inline void gru_rb_forward_rz_row(S* gates, S* rh, const S* h_prev, int64_t H, int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; ++k) {
    S r = sigmoid(gates[k]);
    S z = sigmoid(gates[H + k]);
    gates[k] = r; gates[H + k] = z;
    rh[k] = r * h_prev[k];
  }
}
// Phase 2. gates n block: pre-activation in (x-side + R_n rh), activation out.
template <typename S>
inline void gru_rb_forward_n_row(S* gates, S* h, const S* h_prev, int64_t H, int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; ++k) {
    S z = gates[H + k];
    S n = tanh_act(gates[2 * H + k]);
    gates[2 * H + k] = n;
    h[k] = (S(1) - z) * n + z * h_prev[k];
  }
}
// Backward phase 1: dgates z and n blocks; dh_prev = dh ⊙ z (direct path); dht kept for phase 2.
template <typename S>
inline void gru_rb_backward_zn_row(S* dgates, S* dh_prev, const S* gates, const S* h_prev, const S* dh,
                                   const S* dy, int64_t H, int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; ++k) {
    S z = gates[H + k], n = gates[2 * H + k];
    S dht = dh[k] + (dy ? dy[k] : S(0));
    dgates[H + k] = dht * (h_prev[k] - n) * z * (S(1) - z);
    dgates[2 * H + k] = dht * (S(1) - z) * (S(1) - n * n);
    dh_prev[k] = dht * z;
  }
}
// Backward phase 2, given drh = d(r ⊙ h_prev) = dgates_n · R_n: dgates r block, and dh_prev += drh ⊙ r.
template <typename S>
inline void gru_rb_backward_r_row(S* dgates, S* dh_prev, const S* gates, const S* h_prev, const S* drh,
                                  int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; ++k) {
    S r = gates[k];
    dgates[k] = drh[k] * h_prev[k] * r * (S(1) - r);
    dh_prev[k] += drh[k] * r;
  }
}

}  // namespace rnnkit
