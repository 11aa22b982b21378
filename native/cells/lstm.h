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
  // In passes over the row rather than one loop per unit: a unit's five activations and its cell
  // form one chain of ~100 dependent operations, and a short row (batch 1: 128 units, 8 vectors a
  // gate) gives the out-of-order core too few units to overlap; each pass's elements are
  // independent. Same functions, same bits. Measured alone, H = 128: 276–306 against 346–372 ns a
  // row (B = 64 × 256 units: 39 against 41 µs, where the rows come from L2).
  const int64_t n = k1 - k0;
  sigmoid_n(gi + k0, gi + k0, n);
  sigmoid_n(gf + k0, gf + k0, n);
  sigmoid_n(go + k0, go + k0, n);
  tanh_n(gg + k0, gg + k0, n);
  for (int64_t k = k0; k < k1; ++k) c[k] = gg[k] * gi[k] + c_prev[k] * gf[k];
  mul_tanh_n(c + k0, go + k0, h + k0, n);
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
  tanh_n(c + k0, dgates + 3 * H + k0, k1 - k0);  // tanh(c), read below before its slot is written
  for (int64_t k = k0; k < k1; ++k) {
    S i = gi[k], f = gf[k], g = gg[k], o = go[k];
    S dht = dh[k] + dy[k];
    S tc = dgates[3 * H + k];
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
