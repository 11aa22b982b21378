// AVX-512 FMA chains of measure_peak (peak.h). Compiled with the AVX-512 flags (CMakeLists.txt)
// and only called after the CPU was checked for them; intrinsics only, no inline functions shared
// with baseline code and no dynamic initialisers (see packed_gemm_avx512.cc).
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "peak.h"

namespace rnnkit {
namespace peak_internal {
namespace avx512 {

double fma_chains(int64_t iters, float a, float b, float* sink) {
  // 12 independent zmm chains: 2 FMA ports × a latency of 4 (up to 6) cycles need at most 12.
  const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
  __m512 c0 = _mm512_set1_ps(0.5f), c1 = _mm512_add_ps(c0, vb), c2 = _mm512_add_ps(c1, vb), c3 = _mm512_add_ps(c2, vb);
  __m512 c4 = _mm512_add_ps(c3, vb), c5 = _mm512_add_ps(c4, vb), c6 = _mm512_add_ps(c5, vb), c7 = _mm512_add_ps(c6, vb);
  __m512 c8 = _mm512_add_ps(c7, vb), c9 = _mm512_add_ps(c8, vb), c10 = _mm512_add_ps(c9, vb), c11 = _mm512_add_ps(c10, vb);
  for (int64_t i = 0; i < iters; ++i) {
    c0 = _mm512_fmadd_ps(c0, va, vb); c1 = _mm512_fmadd_ps(c1, va, vb); c2 = _mm512_fmadd_ps(c2, va, vb);
    c3 = _mm512_fmadd_ps(c3, va, vb); c4 = _mm512_fmadd_ps(c4, va, vb); c5 = _mm512_fmadd_ps(c5, va, vb);
    c6 = _mm512_fmadd_ps(c6, va, vb); c7 = _mm512_fmadd_ps(c7, va, vb); c8 = _mm512_fmadd_ps(c8, va, vb);
    c9 = _mm512_fmadd_ps(c9, va, vb); c10 = _mm512_fmadd_ps(c10, va, vb); c11 = _mm512_fmadd_ps(c11, va, vb);
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                           _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
  alignas(64) float lanes[16];  // (not _mm512_reduce_add_ps: GCC 12 warns inside it)
  _mm512_store_ps(lanes, s);
  float total = 0;
  for (float v : lanes) total += v;
  *sink = total;
  return double(iters) * 12.0 * 16.0 * 2.0;
}

double read_stream(const float* p, int64_t n, int64_t reps, float* sink) {
  // 8 zmm loads per 512 bytes into 8 independent sums: the adds keep up with 2 loads a cycle.
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
  for (int64_t r = 0; r < reps; ++r) {
    for (int64_t i = 0; i < n; i += 128) {
      s0 = _mm512_add_ps(s0, _mm512_loadu_ps(p + i)); s1 = _mm512_add_ps(s1, _mm512_loadu_ps(p + i + 16));
      s2 = _mm512_add_ps(s2, _mm512_loadu_ps(p + i + 32)); s3 = _mm512_add_ps(s3, _mm512_loadu_ps(p + i + 48));
      s4 = _mm512_add_ps(s4, _mm512_loadu_ps(p + i + 64)); s5 = _mm512_add_ps(s5, _mm512_loadu_ps(p + i + 80));
      s6 = _mm512_add_ps(s6, _mm512_loadu_ps(p + i + 96)); s7 = _mm512_add_ps(s7, _mm512_loadu_ps(p + i + 112));
    }
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)),
                           _mm512_add_ps(_mm512_add_ps(s4, s5), _mm512_add_ps(s6, s7)));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  float total = 0;
  for (float v : lanes) total += v;
  *sink = total;
  return double(reps) * double(n) * 4.0;
}

}  // namespace avx512
}  // namespace peak_internal
}  // namespace rnnkit
#endif
