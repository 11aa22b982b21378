// AVX2+FMA macro-kernel of packed_gemm (see packed_gemm.h for the packed layout and PanelTask).
//
// Compiled with -mavx2 -mfma and only called after the CPU was checked for both. ODR hazard: any
// inline function or template also used by a baseline translation unit (std::min, PackedMatrix
// accessors, ...) could be emitted here with AVX instructions and then picked by the linker for the
// baseline code. So this file uses only intrinsics (always-inline) and its own helpers in an
// anonymous namespace, and has no dynamically initialised globals.
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "packed_gemm.h"

namespace rnnkit {
namespace packed_gemm_internal {
namespace avx2 {

namespace {

// Register tile: up to kMr = 6 rows × 16 columns (2 ymm per row): 12 accumulators + 2 ymm for the
// panel row + 1 for the broadcast A element = 15 of the 16 ymm registers. A 32-column panel is done
// as two 16-column halves; each half reads one full 64-byte line per k (row stride 128 bytes).
constexpr int kMr = 6;
constexpr int kP = 32;  // panel width (PackedMatrix::kPanelWidth)

// Lanes of the 8 columns starting at `base` that fall into [lo, hi): all-ones or zero per lane.
inline __m256i lane_mask(int lo, int hi, int base) {
  const __m256i col = _mm256_add_epi32(_mm256_set1_epi32(base), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i ge_lo = _mm256_cmpgt_epi32(col, _mm256_set1_epi32(lo - 1));
  const __m256i lt_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), col);
  return _mm256_and_si256(ge_lo, lt_hi);
}

// C[0:R, 0:16] (+)= A[0:R, 0:kc] · B[0:kc, 0:16] on the lanes of (mask0, mask1); `full` says both
// masks are all-ones (plain loads/stores: masked stores are slow on some CPUs).
//   A: row i at A + i·lda; B: half panel, row k at B + k·32 (32-byte aligned); C: row i at C + i·ldc.
// For R <= 3 the k loop is split into S interleaved accumulator chains (summed at the end) so that
// at least 8 FMAs are independent (latency 4-5 cycles, 2 per cycle).
template <int R>
__attribute__((noinline)) void tile(int64_t kc, const float* __restrict A, int64_t lda,
                                    const float* __restrict B, float* __restrict C, int64_t ldc, __m256i mask0,
                                    __m256i mask1, bool full, bool accumulate) {
  constexpr int S = R == 1 ? 4 : R <= 3 ? 2 : 1;
  __m256 c0[S][R], c1[S][R];
#pragma GCC unroll 16
  for (int s = 0; s < S; ++s) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) c0[s][i] = c1[s][i] = _mm256_setzero_ps();
  }

  int64_t k = 0;
  for (; k + S <= kc; k += S) {
#pragma GCC unroll 16
    for (int s = 0; s < S; ++s) {
      const __m256 b0 = _mm256_load_ps(B + (k + s) * kP);
      const __m256 b1 = _mm256_load_ps(B + (k + s) * kP + 8);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const __m256 a = _mm256_broadcast_ss(A + i * lda + k + s);
        c0[s][i] = _mm256_fmadd_ps(a, b0, c0[s][i]);
        c1[s][i] = _mm256_fmadd_ps(a, b1, c1[s][i]);
      }
    }
  }
  for (; k < kc; ++k) {  // only when S > 1: the last kc % S steps
    const __m256 b0 = _mm256_load_ps(B + k * kP);
    const __m256 b1 = _mm256_load_ps(B + k * kP + 8);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m256 a = _mm256_broadcast_ss(A + i * lda + k);
      c0[0][i] = _mm256_fmadd_ps(a, b0, c0[0][i]);
      c1[0][i] = _mm256_fmadd_ps(a, b1, c1[0][i]);
    }
  }
#pragma GCC unroll 16
  for (int s = 1; s < S; ++s) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      c0[0][i] = _mm256_add_ps(c0[0][i], c0[s][i]);
      c1[0][i] = _mm256_add_ps(c1[0][i], c1[s][i]);
    }
  }

  if (full) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      float* row = C + i * ldc;
      __m256 v0 = c0[0][i], v1 = c1[0][i];
      if (accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(row));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(row + 8));
      }
      _mm256_storeu_ps(row, v0);
      _mm256_storeu_ps(row + 8, v1);
    }
  } else {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      float* row = C + i * ldc;
      __m256 v0 = c0[0][i], v1 = c1[0][i];
      if (accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_maskload_ps(row, mask0));
        v1 = _mm256_add_ps(v1, _mm256_maskload_ps(row + 8, mask1));
      }
      _mm256_maskstore_ps(row, mask0, v0);
      _mm256_maskstore_ps(row + 8, mask1, v1);
    }
  }
}

// Runs the r-row tile, r in [1, R] (a compare chain: a function-pointer table would need dynamic
// initialisation, i.e. code of this file running at load time, before the CPU check).
template <int R>
inline void tile_rows(int64_t r, int64_t kc, const float* A, int64_t lda, const float* B, float* C, int64_t ldc,
                      __m256i mask0, __m256i mask1, bool full, bool accumulate) {
  if constexpr (R > 0) {
    if (r == R) return tile<R>(kc, A, lda, B, C, ldc, mask0, mask1, full, accumulate);
    tile_rows<R - 1>(r, kc, A, lda, B, C, ldc, mask0, mask1, full, accumulate);
  }
}

}  // namespace

// Loop order: panels, then 16-column halves, then row blocks, so the half panel (kc × 16 floats)
// stays in L1 while the A rows stream from L1/L2. Rows are split into ceil(m / 6) blocks of
// near-equal size, so no block falls to a short, latency-bound tail.
void run_panels(const PanelTask& t) {
  const int64_t nb = (t.m + kMr - 1) / kMr;
  const int64_t base = t.m / nb, extra = t.m % nb;  // the first `extra` blocks get base + 1 rows
  for (int64_t p = 0; p < t.num_panels; ++p) {
    const int lo = p == 0 ? t.col_begin : 0;
    const int hi = p == t.num_panels - 1 ? t.col_end : kP;
    for (int h = 0; h < kP; h += 16) {
      if (hi <= h || lo >= h + 16) continue;  // no column of this half is in range
      const bool full = lo <= h && hi >= h + 16;
      const __m256i mask0 = lane_mask(lo, hi, h), mask1 = lane_mask(lo, hi, h + 8);
      const float* B = t.B + p * t.panel_stride + h;
      float* C = t.C + p * kP + h;
      int64_t i0 = 0;
      for (int64_t b = 0; b < nb; ++b) {
        const int64_t r = base + (b < extra ? 1 : 0);
        tile_rows<kMr>(r, t.kc, t.A + i0 * t.lda, t.lda, B, C + i0 * t.ldc, t.ldc, mask0, mask1, full,
                       t.accumulate);
        i0 += r;
      }
    }
  }
}

}  // namespace avx2
}  // namespace packed_gemm_internal
}  // namespace rnnkit

#endif  // x86-64
