// SimpleRNN post-GEMM math: h = act(a), a = W x + b_W + R h_prev + b_R (already summed by GEMMs).
#pragma once
#include "activations.h"

namespace rnnkit {

// a: [H] pre-activation (in); h: [H] out.
template <typename S, bool kRelu>
inline void rnn_forward_row(S* h, const S* a, int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; ++k) h[k] = kRelu ? relu_act(a[k]) : tanh_act(a[k]);
}

// da: [H] out; h: [H] the step's output; dh: [H] carried gradient; dy: [H] or null.
template <typename S, bool kRelu>
inline void rnn_backward_row(S* da, const S* h, const S* dh, const S* dy, int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; ++k) {
    S g = dh[k] + (dy ? dy[k] : S(0));
    S d = kRelu ? (h[k] > S(0) ? S(1) : S(0)) : S(1) - h[k] * h[k];
    da[k] = g * d;
  }
}

}  // namespace rnnkit
