// LSTM post-GEMM math (PyTorch gate order i, f, g, o; no peepholes):
//   i = σ(a_i)  f = σ(a_f)  g = tanh(a_g)  o = σ(a_o)
//   c = g ⊙ i + c_prev ⊙ f ;  h = o ⊙ tanh(c)
#pragma once
#include "activations.h"

namespace rnnkit {
namespace RNNKIT_KERNEL_NS {

// gates: [4H] pre-activations in, activations out; c_prev, c, h: [H].
template <typename S>
inline void lstm_forward_row(S* __restrict gates, S* __restrict c, S* __restrict h, const S* __restrict c_prev,
                             int64_t H, int64_t k0, int64_t k1) {
  S* gi = gates;
  S* gf = gates + H;
  S* gg = gates + 2 * H;
  S* go = gates + 3 * H;
  for (int64_t k = k0; k < k1; ++k) {
    S i = sigmoid(gi[k]), f = sigmoid(gf[k]), g = tanh_act(gg[k]), o = sigmoid(go[k]);
    S cn = g * i + c_prev[k] * f;
    gi[k] = i; gf[k] = f; gg[k] = g; go[k] = o;
    c[k] = cn;
    h[k] = o * tanh_act(cn);
  }
}

// dgates: [4H] out (gradients of the pre-activations); dc: [H] carried dc_t in, dc_{t-1} out.
// gates: [4H] activations; c, c_prev: [H]; dh: [H] carried; dy: [H].
template <typename S>
inline void lstm_backward_row(S* __restrict dgates, const S* __restrict gates, const S* __restrict c, const S* __restrict c_prev,
                              const S* __restrict dh, const S* __restrict dy, S* __restrict dc, int64_t H, int64_t k0, int64_t k1) {
  const S* gi = gates;
  const S* gf = gates + H;
  const S* gg = gates + 2 * H;
  const S* go = gates + 3 * H;
  for (int64_t k = k0; k < k1; ++k) {
    S i = gi[k], f = gf[k], g = gg[k], o = go[k];
    S dht = dh[k] + dy[k];
    S tc = tanh_act(c[k]);
    S dct = dc[k] + dht * o * (S(1) - tc * tc);
    dgates[k] = dct * g * i * (S(1) - i);
    dgates[H + k] = dct * c_prev[k] * f * (S(1) - f);
    dgates[2 * H + k] = dct * i * (S(1) - g * g);
    dgates[3 * H + k] = dht * tc * o * (S(1) - o);
    dc[k] = dct * f;
  }
}

}  // namespace RNNKIT_KERNEL_NS
}  // namespace rnnkit
