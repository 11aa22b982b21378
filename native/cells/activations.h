// Scalar activation functions written so the compiler vectorises the loops that call them.
// float: branch-free Cephes-style approximations (max error a few ulp); double: libm, because the
// double instantiation exists to make gradient checks exact, not fast.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

// Each instruction-set build of the kernels (see step_kernels.h) compiles these in its own namespace,
// so no inline function compiled for AVX-512 can be picked by the linker for another build.
#ifndef RNNKIT_KERNEL_NS
#define RNNKIT_KERNEL_NS generic
#endif

namespace rnnkit {
namespace RNNKIT_KERNEL_NS {

inline float fast_exp(float x) {
  // exp(x) = 2^n * exp(r), r = x - n*ln2, |r| <= ln2/2.
  // NaN goes to the clamp's low end here (a float-to-int conversion of NaN is undefined) and is
  // restored at the end, so exp(NaN) = NaN.
  const float xin = x;
  x = !(x >= -87.3f) ? -87.3f : (x > 88.3f ? 88.3f : x);
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to the nearest integer
  float n = (x * 1.44269504088896341f + magic) - magic;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return xin != xin ? xin : p * scale;
}

template <typename S> inline S sigmoid(S x);
template <> inline float sigmoid<float>(float x) { return 1.0f / (1.0f + fast_exp(-x)); }
template <> inline double sigmoid<double>(double x) { return 1.0 / (1.0 + std::exp(-x)); }

template <typename S> inline S tanh_act(S x);
template <> inline float tanh_act<float>(float x) {
  // Small |x|: odd polynomial (no cancellation); otherwise 1 - 2/(exp(2|x|)+1) with the sign restored.
  float ax = x < 0 ? -x : x;
  float z = x * x;
  float poly = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                 1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
  float e = fast_exp(2.0f * ax);
  float big = 1.0f - 2.0f / (e + 1.0f);
  big = x < 0 ? -big : big;
  return ax < 0.625f ? poly : big;
}
template <> inline double tanh_act<double>(double x) { return std::tanh(x); }

// NaN propagates (as in PyTorch): only a value known to be negative becomes 0.
template <typename S> inline S relu_act(S x) { return x < S(0) ? S(0) : x; }

template <typename S> inline S exp_act(S x);
template <> inline float exp_act<float>(float x) { return fast_exp(x); }
template <> inline double exp_act<double>(double x) { return std::exp(x); }

// log(1 + x) for x in [0, 1] (softplus); float: a short series around the midpoint is not worth it,
// libm's log1pf is accurate and vectorises poorly only in the rarely used Softplus.
template <typename S> inline S log1p_act(S x) { return std::log1p(x); }

// Over spans: y[k] = act(x[k]) for k < n (x and y may alias), y[k] = m[k]·tanh(x[k]). The AVX-512
// and AVX2 builds overload the float versions with explicit vector code (simd_math.h).
template <typename S>
inline void sigmoid_n(const S* x, S* y, int64_t n) {
  for (int64_t k = 0; k < n; ++k) y[k] = sigmoid(x[k]);
}
template <typename S>
inline void tanh_n(const S* x, S* y, int64_t n) {
  for (int64_t k = 0; k < n; ++k) y[k] = tanh_act(x[k]);
}
template <typename S>
inline void mul_tanh_n(const S* x, const S* m, S* y, int64_t n) {
  for (int64_t k = 0; k < n; ++k) y[k] = m[k] * tanh_act(x[k]);
}

}  // namespace RNNKIT_KERNEL_NS
}  // namespace rnnkit

#include "simd_math.h"
