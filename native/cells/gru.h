// GRU post-GEMM math (PyTorch gate order r, z, n):
//   r = σ(a_r)  z = σ(a_z)  h = (1 − z) ⊙ n + z ⊙ h_prev
//   reset before (Cho 2014, Keras reset_after=False): n = tanh(W_n x + b_n + R_n (r ⊙ h_prev))
//   linear before reset (PyTorch, cuDNN, ONNX lbr=1):  n = tanh(W_n x + b_Wn + r ⊙ (R_n h_prev + b_Rn))
#pragma once
#include "activations.h"

namespace rnnkit {
namespace RNNKIT_KERNEL_NS {

// ---- linear before reset: one recurrent GEMM, hh = h_prev · R^T (no bias) ----
// gates: [3H] x-projection (with b_W) in, activations r, z, n out; hn: [H] out (R_n h_prev + b_Rn);
// hh: [3H]; b_hh: [3H]; h_prev, h: [H].
template <typename S>
inline void gru_lbr_forward_row(S* __restrict gates, S* __restrict hn, S* __restrict h, const S* __restrict hh, const S* __restrict b_hh, const S* __restrict h_prev,
                                int64_t H, int64_t k0, int64_t k1) {
  // In passes, so the activations run over spans (activations.h): r, z; then n; then h.
  const int64_t len = k1 - k0;
  for (int64_t k = k0; k < k1; ++k) {
    gates[k] = gates[k] + hh[k] + b_hh[k];
    gates[H + k] = gates[H + k] + hh[H + k] + b_hh[H + k];
    hn[k] = hh[2 * H + k] + b_hh[2 * H + k];
  }
  sigmoid_n(gates + k0, gates + k0, len);
  sigmoid_n(gates + H + k0, gates + H + k0, len);
  for (int64_t k = k0; k < k1; ++k) gates[2 * H + k] = gates[2 * H + k] + gates[k] * hn[k];
  tanh_n(gates + 2 * H + k0, gates + 2 * H + k0, len);
  for (int64_t k = k0; k < k1; ++k) {
    const S z = gates[H + k], n = gates[2 * H + k];
    h[k] = (S(1) - z) * n + z * h_prev[k];
  }
}

// dgx: [3H] out, gradients of the x-side pre-activations; dgh: [3H] out, of the h-side ones
// (they differ in the n block: dgh_n = dgx_n ⊙ r); dh_prev: [H] out, the direct path (dh ⊙ z).
template <typename S>
inline void gru_lbr_backward_row(S* __restrict dgx, S* __restrict dgh, S* __restrict dh_prev, const S* __restrict gates, const S* __restrict hn, const S* __restrict h_prev,
                                 const S* __restrict dh, const S* __restrict dy, int64_t H, int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; ++k) {
    S r = gates[k], z = gates[H + k], n = gates[2 * H + k];
    S dht = dh[k] + dy[k];
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
inline void gru_rb_forward_rz_row(S* __restrict gates, S* __restrict rh, const S* __restrict h_prev, int64_t H, int64_t k0, int64_t k1) {
  sigmoid_n(gates + k0, gates + k0, k1 - k0);
  sigmoid_n(gates + H + k0, gates + H + k0, k1 - k0);
  for (int64_t k = k0; k < k1; ++k) rh[k] = gates[k] * h_prev[k];
}
// Phase 2. gates n block: pre-activation in (x-side + R_n rh), activation out.
template <typename S>
inline void gru_rb_forward_n_row(S* __restrict gates, S* __restrict h, const S* __restrict h_prev, int64_t H, int64_t k0, int64_t k1) {
  tanh_n(gates + 2 * H + k0, gates + 2 * H + k0, k1 - k0);
  for (int64_t k = k0; k < k1; ++k) {
    const S z = gates[H + k], n = gates[2 * H + k];
    h[k] = (S(1) - z) * n + z * h_prev[k];
  }
}
// Backward phase 1: dgates z and n blocks; dh_prev = dh ⊙ z (direct path); dht kept for phase 2.
template <typename S>
inline void gru_rb_backward_zn_row(S* __restrict dgates, S* __restrict dh_prev, const S* __restrict gates, const S* __restrict h_prev, const S* __restrict dh,
                                   const S* __restrict dy, int64_t H, int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; ++k) {
    S z = gates[H + k], n = gates[2 * H + k];
    S dht = dh[k] + dy[k];
    dgates[H + k] = dht * (h_prev[k] - n) * z * (S(1) - z);
    dgates[2 * H + k] = dht * (S(1) - z) * (S(1) - n * n);
    dh_prev[k] = dht * z;
  }
}
// Backward phase 2, given drh = d(r ⊙ h_prev) = dgates_n · R_n: dgates r block, and dh_prev += drh ⊙ r.
template <typename S>
inline void gru_rb_backward_r_row(S* __restrict dgates, S* __restrict dh_prev, const S* __restrict gates, const S* __restrict h_prev, const S* __restrict drh,
                                  int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; ++k) {
    S r = gates[k];
    dgates[k] = drh[k] * h_prev[k] * r * (S(1) - r);
    dh_prev[k] += drh[k] * r;
  }
}

}  // namespace RNNKIT_KERNEL_NS
}  // namespace rnnkit
