// Explicitly vectorised float32 sigmoid and tanh over spans, for the AVX-512 and AVX2 builds of the
// step kernels (activations.h includes this after the scalar functions; the generic build and
// double keep the scalar loops there).
//
// sigmoid: the scalar fast_exp / sigmoid (Cephes exp) with the division replaced by a reciprocal
// estimate and Newton–Raphson steps (recip below); tanh: a rational approximation (Eigen's), not the
// scalar tanh_act's polynomial-or-exp pair (tanh below). The element-wise step is bound by the
// number of vector operations (two ports): on a B 64 × 128-unit LSTM slice, 1.88 ns a unit with
// the scalar functions auto-vectorised, ~1.3 with these. Measured against double precision by
// test/activation-accuracy.test.ts.
//
// Every lane runs the same instructions, the tail of a span through masked loads and stores, so an
// element's value never depends on where it sits in a span or how a row was split (batch invariance,
// the thread split of a step).
#pragma once
#if defined(__x86_64__) && defined(__GNUC__) && (defined(__AVX512F__) || defined(__AVX2__))
#include <immintrin.h>

#include <cstdint>

#define RNNKIT_SIMD_SPANS 1

namespace rnnkit {
namespace RNNKIT_KERNEL_NS {
namespace simd {

#if defined(__AVX512F__)
using V = __m512;
constexpr int64_t kW = 16;
inline V set1(float v) { return _mm512_set1_ps(v); }
inline V add(V a, V b) { return _mm512_add_ps(a, b); }
inline V sub(V a, V b) { return _mm512_sub_ps(a, b); }
inline V mul(V a, V b) { return _mm512_mul_ps(a, b); }
inline V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }    // a·b + c
inline V fnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }  // c − a·b
inline V vmax(V a, V b) { return _mm512_max_ps(a, b); }  // b when a is NaN
inline V vmin(V a, V b) { return _mm512_min_ps(a, b); }
inline V vxor(V a, V b) { return _mm512_xor_ps(a, b); }
inline V vand(V a, V b) { return _mm512_and_ps(a, b); }
inline V vandnot(V a, V b) { return _mm512_andnot_ps(a, b); }  // ~a & b
inline V vor(V a, V b) { return _mm512_or_ps(a, b); }
// x >= y ? a : b, lane-wise (false for NaN).
inline V select_ge(V x, V y, V a, V b) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, y, _CMP_GE_OQ), b, a); }
inline V rcp_estimate(V d) { return _mm512_rcp14_ps(d); }
// p·2^n for integral n (vscalefps; NaN stays NaN).
inline V scale2(V p, V n) { return _mm512_scalef_ps(p, n); }
struct Tail {
  __mmask16 m;
  explicit Tail(int64_t n) : m(static_cast<__mmask16>((1u << n) - 1u)) {}
  V load(const float* p) const { return _mm512_maskz_loadu_ps(m, p); }
  void store(float* p, V v) const { _mm512_mask_storeu_ps(p, m, v); }
};
inline V load(const float* p) { return _mm512_loadu_ps(p); }
inline void store(float* p, V v) { _mm512_storeu_ps(p, v); }
#else
using V = __m256;
constexpr int64_t kW = 8;
inline V set1(float v) { return _mm256_set1_ps(v); }
inline V add(V a, V b) { return _mm256_add_ps(a, b); }
inline V sub(V a, V b) { return _mm256_sub_ps(a, b); }
inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
inline V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline V fnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
inline V vmax(V a, V b) { return _mm256_max_ps(a, b); }
inline V vmin(V a, V b) { return _mm256_min_ps(a, b); }
inline V vxor(V a, V b) { return _mm256_xor_ps(a, b); }
inline V vand(V a, V b) { return _mm256_and_ps(a, b); }
inline V vandnot(V a, V b) { return _mm256_andnot_ps(a, b); }
inline V vor(V a, V b) { return _mm256_or_ps(a, b); }
inline V select_ge(V x, V y, V a, V b) { return _mm256_blendv_ps(b, a, _mm256_cmp_ps(x, y, _CMP_GE_OQ)); }
inline V rcp_estimate(V d) { return _mm256_rcp_ps(d); }
// p·2^n for integral n in [−126, 127] (the exponent field built directly; a NaN n gives a finite
// factor, but then p is NaN too).
inline V scale2(V p, V n) {
  return mul(p, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23)));
}
struct Tail {
  __m256i m;
  explicit Tail(int64_t n)
      : m(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))) {}
  V load(const float* p) const { return _mm256_maskload_ps(p, m); }
  void store(float* p, V v) const { _mm256_maskstore_ps(p, m, v); }
};
inline V load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, V v) { _mm256_storeu_ps(p, v); }
#endif

inline V sign_mask() { return set1(-0.0f); }  // the sign bit alone

// 1 / d: the estimate and Newton–Raphson steps r ← r + r·(1 − d·r), each squaring the relative
// error: one after vrcp14ps (2^-14 → ~2^-28), two after vrcpps (1.5·2^-12 → ~1.3e-7 → ~2e-14;
// with one, the AVX2 sigmoid's error reached 1.7e-7 of the 2e-7 bound).
inline V newton(V d, V r) { return fmadd(fnmadd(d, r, set1(1.0f)), r, r); }
inline V recip(V d) {
#if defined(__AVX512F__)
  return newton(d, rcp_estimate(d));
#else
  return newton(d, newton(d, rcp_estimate(d)));
#endif
}

// fast_exp (activations.h), lane-wise. The clamp puts the constant first: max/min return their
// second operand when either is NaN, so NaN passes through (and stays NaN to the end).
inline V exp(V x) {
  x = vmin(set1(88.3f), vmax(set1(-87.3f), x));
  const V magic = set1(12582912.0f);  // 1.5·2^23: adding it rounds to the nearest integer
  const V n = sub(fmadd(x, set1(1.44269504088896341f), magic), magic);
  V r = fnmadd(n, set1(0.693359375f), x);
  r = fnmadd(n, set1(-2.12194440e-4f), r);
  V p = set1(1.9875691500e-4f);
  p = fmadd(p, r, set1(1.3981999507e-3f));
  p = fmadd(p, r, set1(8.3334519073e-3f));
  p = fmadd(p, r, set1(4.1665795894e-2f));
  p = fmadd(p, r, set1(1.6666665459e-1f));
  p = fmadd(p, r, set1(5.0000001201e-1f));
  p = add(fmadd(p, mul(r, r), r), set1(1.0f));
  return scale2(p, n);
}

inline V sigmoid(V x) { return recip(add(set1(1.0f), exp(vxor(x, sign_mask())))); }

// tanh: below |x| = 7.9, Eigen's float rational approximation, an odd degree-13 polynomial over an
// even degree-6 one (small |x| keeps its relative accuracy: the numerator is x times a polynomial
// in x²); at and above 7.9, where that one stops short of 1 (it levels off at 1 − 2.4e-7),
// ±(1 − q(|x|)) with q a quadratic fit of 2 / (1 + e^{2t}) on [7.9, 9.02] (error 7e-9), and ±1 from
// 9.02, where tanh rounds to 1. ~28 operations against ~35 for the scalar tanh_act's
// polynomial-or-exp pair. The rational's error is ~2.5e-7 absolute over [2, 7.9] (about 4 ulp; the
// same approximation as onnxruntime's MLAS tanh), against ~7e-8 for tanh_act: the stated bound is
// 3e-7 (test/activation-accuracy.test.ts). NaN passes the clamp (see exp), fails both tests and
// stays NaN.
inline V tanh(V xin) {
  const V x = vmin(set1(7.90531110763549805f), vmax(set1(-7.90531110763549805f), xin));
  const V x2 = mul(x, x);
  V p = set1(-2.76076847742355e-16f);
  p = fmadd(p, x2, set1(2.00018790482477e-13f));
  p = fmadd(p, x2, set1(-8.60467152213735e-11f));
  p = fmadd(p, x2, set1(5.12229709037114e-08f));
  p = fmadd(p, x2, set1(1.48572235717979e-05f));
  p = fmadd(p, x2, set1(6.37261928875436e-04f));
  p = fmadd(p, x2, set1(4.89352455891786e-03f));
  p = mul(p, x);
  V q = set1(1.19825839466702e-06f);
  q = fmadd(q, x2, set1(1.18534705686654e-04f));
  q = fmadd(q, x2, set1(2.26843463243900e-03f));
  q = fmadd(q, x2, set1(4.89352518554385e-03f));
  const V rational = mul(p, recip(q));
  const V ax = vandnot(sign_mask(), xin);
  const V t = vmin(set1(9.02f), ax);
  const V g = fmadd(fmadd(set1(1.93902283e-07f), t, set1(-3.48969772e-06f)), t, set1(1.57346409e-05f));
  const V one = set1(1.0f);
  const V tail = vor(select_ge(ax, set1(9.02f), one, sub(one, g)), vand(xin, sign_mask()));
  return select_ge(ax, set1(7.9f), tail, rational);
}

}  // namespace simd

// The span functions the row kernels call (activations.h has the scalar templates these overload).
inline void sigmoid_n(const float* x, float* y, int64_t n) {
  int64_t k = 0;
  for (; k + simd::kW <= n; k += simd::kW) simd::store(y + k, simd::sigmoid(simd::load(x + k)));
  if (k < n) {
    const simd::Tail t(n - k);
    t.store(y + k, simd::sigmoid(t.load(x + k)));
  }
}
inline void tanh_n(const float* x, float* y, int64_t n) {
  int64_t k = 0;
  for (; k + simd::kW <= n; k += simd::kW) simd::store(y + k, simd::tanh(simd::load(x + k)));
  if (k < n) {
    const simd::Tail t(n - k);
    t.store(y + k, simd::tanh(t.load(x + k)));
  }
}
// y = m ⊙ tanh(x).
inline void mul_tanh_n(const float* x, const float* m, float* y, int64_t n) {
  int64_t k = 0;
  for (; k + simd::kW <= n; k += simd::kW) simd::store(y + k, simd::mul(simd::load(m + k), simd::tanh(simd::load(x + k))));
  if (k < n) {
    const simd::Tail t(n - k);
    t.store(y + k, simd::mul(t.load(m + k), simd::tanh(t.load(x + k))));
  }
}

}  // namespace RNNKIT_KERNEL_NS
}  // namespace rnnkit
#endif
