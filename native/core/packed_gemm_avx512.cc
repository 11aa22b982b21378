// AVX-512 macro-kernel of packed_gemm (see packed_gemm.h for the packed layout and PanelTask).
//
// Compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma and only called after the CPU was
// checked for those features. ODR hazard: any inline function or template that is also used by a
// baseline translation unit (std::min, PackedMatrix accessors, ...) could be emitted here with
// AVX-512 instructions and then picked by the linker for the baseline code. So this file uses only
// intrinsics (always-inline) and its own helpers in an anonymous namespace.
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "packed_gemm.h"

namespace rnnkit {
namespace packed_gemm_internal {
namespace avx512 {

namespace {

// Register tile: up to kMr rows × 32 columns (2 zmm per row) → kMr·2 accumulators, plus 2 zmm for the
// panel row; the A element is broadcast straight from memory by the FMA ({1to16}).
constexpr int kMr = RNNKIT_PG_MR;
constexpr int kP = 32;  // panel width (PackedMatrix::kPanelWidth)

// Bits [lo - base, hi - base) ∩ [0, 16) of a 16-lane mask: the lanes of the half-panel starting at
// column `base` that fall into the column range [lo, hi).
inline __mmask16 lane_mask(int lo, int hi, int base) {
  int a = lo - base, b = hi - base;
  if (a < 0) a = 0;
  if (b > 16) b = 16;
  if (b <= a) return 0;
  return static_cast<__mmask16>(((1u << b) - 1u) & ~((1u << a) - 1u));
}

// C[0:R, 0:32] (+)= A[0:R, 0:kc] · B[0:kc, 0:32] on the lanes of (mask0, mask1).
//   A: row i at A + i·lda; B: k-major panel rows of 32 floats (64-byte aligned); C: row i at C + i·ldc.
// For R = 1 or 2 the tile has only 2 or 4 accumulators, too few to hide the FMA latency (4 cycles,
// 2 per cycle), so the k loop is split into S interleaved chains that are summed at the end.
template <int R>
__attribute__((noinline)) void tile(int64_t kc, const float* __restrict A, int64_t lda, const float* __restrict B,
          float* __restrict C, int64_t ldc, __mmask16 mask0, __mmask16 mask1, bool accumulate) {
  constexpr int S = R == 1 ? 4 : R == 2 ? 2 : 1;
  __m512 c0[S][R], c1[S][R];
#pragma GCC unroll 16
  for (int s = 0; s < S; ++s) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) c0[s][i] = c1[s][i] = _mm512_setzero_ps();
  }

  int64_t k = 0;
  for (; k + S <= kc; k += S) {
#pragma GCC unroll 16
    for (int s = 0; s < S; ++s) {
      const __m512 b0 = _mm512_load_ps(B + (k + s) * kP);
      const __m512 b1 = _mm512_load_ps(B + (k + s) * kP + 16);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const __m512 a = _mm512_set1_ps(A[i * lda + k + s]);
        c0[s][i] = _mm512_fmadd_ps(a, b0, c0[s][i]);
        c1[s][i] = _mm512_fmadd_ps(a, b1, c1[s][i]);
      }
    }
  }
  for (; k < kc; ++k) {  // only when S > 1: the last kc % S steps
    const __m512 b0 = _mm512_load_ps(B + k * kP);
    const __m512 b1 = _mm512_load_ps(B + k * kP + 16);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512 a = _mm512_set1_ps(A[i * lda + k]);
      c0[0][i] = _mm512_fmadd_ps(a, b0, c0[0][i]);
      c1[0][i] = _mm512_fmadd_ps(a, b1, c1[0][i]);
    }
  }
#pragma GCC unroll 16
  for (int s = 1; s < S; ++s) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      c0[0][i] = _mm512_add_ps(c0[0][i], c0[s][i]);
      c1[0][i] = _mm512_add_ps(c1[0][i], c1[s][i]);
    }
  }

#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    float* row = C + i * ldc;
    __m512 v0 = c0[0][i], v1 = c1[0][i];
    if (accumulate) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(mask0, row));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(mask1, row + 16));
    }
    _mm512_mask_storeu_ps(row, mask0, v0);
    _mm512_mask_storeu_ps(row + 16, mask1, v1);
  }
}

// Runs the r-row tile, r in [1, R]: a compare chain (cheap next to a tile) rather than a table of
// function pointers, which would need dynamic initialisation - code of this file that would run at
// load time, before the CPU check.
template <int R>
inline void tile_rows(int64_t r, int64_t kc, const float* A, int64_t lda, const float* B, float* C, int64_t ldc,
                      __mmask16 mask0, __mmask16 mask1, bool accumulate) {
  if constexpr (R > 0) {
    if (r == R) return tile<R>(kc, A, lda, B, C, ldc, mask0, mask1, accumulate);
    tile_rows<R - 1>(r, kc, A, lda, B, C, ldc, mask0, mask1, accumulate);
  }
}

}  // namespace

// Loop order: panels outer, row blocks inner, so the panel chunk (kc × 32 floats) stays in L1 while
// the A rows stream from L1/L2. Rows are split into ceil(m / kMr) blocks of near-equal size (e.g.
// M = 70 → 7 × 8 + 2 × 7) so no block falls to a short, latency-bound tail.
void run_panels(const PanelTask& t) {
  const int64_t nb = (t.m + kMr - 1) / kMr;
  const int64_t base = t.m / nb, extra = t.m % nb;  // the first `extra` blocks get base + 1 rows
  for (int64_t p = 0; p < t.num_panels; ++p) {
    const int lo = p == 0 ? t.col_begin : 0;
    const int hi = p == t.num_panels - 1 ? t.col_end : kP;
    const __mmask16 mask0 = lane_mask(lo, hi, 0), mask1 = lane_mask(lo, hi, 16);
    const float* B = t.B + p * t.panel_stride;
    float* C = t.C + p * kP;
    int64_t i0 = 0;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t r = base + (b < extra ? 1 : 0);
      tile_rows<kMr>(r, t.kc, t.A + i0 * t.lda, t.lda, B, C + i0 * t.ldc, t.ldc, mask0, mask1, t.accumulate);
      i0 += r;
    }
  }
}

}  // namespace avx512
}  // namespace packed_gemm_internal
}  // namespace rnnkit

#endif  // x86-64
