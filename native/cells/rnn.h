// SimpleRNN post-GEMM math: h = act(a), a = W x + b_W + R h_prev + b_R (already summed by GEMMs).
#pragma once
#include "activations.h"

namespace rnnkit {
namespace RNNKIT_KERNEL_NS {

// a: [H] pre-activation (in); h: [H] out.
template <typename S, bool kRelu>
inline void rnn_forward_row(S* __restrict h, const S* __restrict a, int64_t k0, int64_t k1) {
  if constexpr (kRelu) {
    for (int64_t k = k0; k < k1; ++k) h[k] = relu_act(a[k]);
  } else {
    tanh_n(a + k0, h + k0, k1 - k0);
  }
}

// da: [H] out; h: [H] the step's output; dh: [H] carried gradient; dy: [H].
template <typename S, bool kRelu>
inline void rnn_backward_row(S* __restrict da, const S* __restrict h, const S* __restrict dh, const S* __restrict dy, int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; ++k) {
    S g = dh[k] + dy[k];
    S d = kRelu ? (h[k] > S(0) ? S(1) : S(0)) : S(1) - h[k] * h[k];
    da[k] = g * d;
  }
}

}  // namespace RNNKIT_KERNEL_NS
}  // namespace rnnkit
