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

// One register tile: C[0:R, 0:16·G] (+)= A[0:R, 0:kc] · B[0:kc, 0:16·G] over G consecutive 16-column
// half panels (units, see run_panels; G > 1 only for 1- and 2-row tiles, see tile()) on the lanes
// of (mask0[g], mask1[g]), plus software prefetches for what comes next.
constexpr int kGMax = 4;
struct TileArgs {
  int64_t kc;
  const float* A;  // row i at A + i·lda
  int64_t lda;
  const float* B[kGMax];  // unit g: row k at B[g] + k·32, 64-byte aligned
  float* C;        // row i at C + i·ldc; unit g's columns from C + 16·g
  int64_t ldc;
  __m256i mask0[kGMax], mask1[kGMax];  // per unit: columns 0-7 / 8-15 to store
  bool full;             // every mask all-ones: plain loads/stores (masked ones are slow on some CPUs)
  bool accumulate;
  const float* bias;     // unit g's bias from bias + 16·g, added after the sum; nullptr: none
  const float* next_B;  // half panel to prefetch alongside B (row k with row k), or nullptr (G = 1 only)
  const float* next_C;  // C tile to prefetch: next_C_rows rows at stride ldc, columns [next_lo, next_hi)
  int next_C_rows, next_lo, next_hi;
};

// Prefetch of next_B, row k while B row k is used: none, into L2 (_MM_HINT_T1) or into L1 (T0).
enum PrefetchB { kNoPrefetch, kToL2, kToL1 };

template <PrefetchB kPf>
inline void prefetch_line(const float* p) {
  if constexpr (kPf == kToL1) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
  if constexpr (kPf == kToL2) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1);
}

// Every element of C is one chain of FMAs over k in order, started from C itself when accumulating
// (else from zero), whatever the tile's height R: a row of C comes out bit-identical whichever rows
// share its GEMM and however K is cut into chunks (batch invariance, see packed_gemm_avx512.cc).
// The FMA latency needs about 8 independent chains: R rows × 2 ymm have 2R (a 3-row tile runs at
// ~3/4 of the peak); a 1- or 2-row tile covers G = 4 or 2 units instead.
template <int R, int G, PrefetchB kPf>
__attribute__((noinline)) void tile(const TileArgs& t) {
  const int64_t kc = t.kc, lda = t.lda;
  const float* __restrict A = t.A;
  const float* __restrict next_B = t.next_B;

  // The next C tile is needed in ~R·kc/6 cycles: fetch its row starts and ends now.
  for (int i = 0; i < t.next_C_rows; ++i) {
    const float* row = t.next_C + i * t.ldc;
    _mm_prefetch(reinterpret_cast<const char*>(row + t.next_lo), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(row + t.next_hi - 1), _MM_HINT_T0);
  }

  __m256 c0[G][R], c1[G][R];
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const float* row = t.C + i * t.ldc + g * 16;
      if (!t.accumulate) {
        c0[g][i] = c1[g][i] = _mm256_setzero_ps();
      } else if (t.full) {
        c0[g][i] = _mm256_loadu_ps(row);
        c1[g][i] = _mm256_loadu_ps(row + 8);
      } else {
        c0[g][i] = _mm256_maskload_ps(row, t.mask0[g]);
        c1[g][i] = _mm256_maskload_ps(row + 8, t.mask1[g]);
      }
    }
  }

  for (int64_t k = 0; k < kc; ++k) {
    if constexpr (G == 1) prefetch_line<kPf>(next_B + k * kP);
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
      const __m256 b0 = _mm256_load_ps(t.B[g] + k * kP);
      const __m256 b1 = _mm256_load_ps(t.B[g] + k * kP + 8);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const __m256 a = _mm256_broadcast_ss(A + i * lda + k);
        c0[g][i] = _mm256_fmadd_ps(a, b0, c0[g][i]);
        c1[g][i] = _mm256_fmadd_ps(a, b1, c1[g][i]);
      }
    }
  }

  if (t.bias) {  // (after each element's whole chain: the bits of adding it to the stored C later)
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
      const float* b = t.bias + g * 16;
      const __m256 b0 = t.full ? _mm256_loadu_ps(b) : _mm256_maskload_ps(b, t.mask0[g]);
      const __m256 b1 = t.full ? _mm256_loadu_ps(b + 8) : _mm256_maskload_ps(b + 8, t.mask1[g]);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        c0[g][i] = _mm256_add_ps(c0[g][i], b0);
        c1[g][i] = _mm256_add_ps(c1[g][i], b1);
      }
    }
  }
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      float* row = t.C + i * t.ldc + g * 16;
      if (t.full) {
        _mm256_storeu_ps(row, c0[g][i]);
        _mm256_storeu_ps(row + 8, c1[g][i]);
      } else {
        _mm256_maskstore_ps(row, t.mask0[g], c0[g][i]);
        _mm256_maskstore_ps(row + 8, t.mask1[g], c1[g][i]);
      }
    }
  }
}

// Runs the r-row tile, r in [1, R] (a compare chain: a function-pointer table would need dynamic
// initialisation, i.e. code of this file running at load time, before the CPU check).
template <int R>
inline void tile_rows(int64_t r, PrefetchB pf, const TileArgs& t) {
  if constexpr (R > 0) {
    if (r != R) return tile_rows<R - 1>(r, pf, t);
    // 1-row tiles are bound by the panel loads (GEMV): prefetches would only compete (measured).
    if (R < 2 || pf == kNoPrefetch) return tile<R, 1, kNoPrefetch>(t);
    if (pf == kToL2) return tile<R, 1, kToL2>(t);
    return tile<R, 1, kToL1>(t);
  }
}

// A 1- or 2-row tile over g in [1, G] units (see tile()).
template <int R, int G>
inline void wide_tile(int g, const TileArgs& t) {
  if constexpr (G > 0) {
    if (g != G) return wide_tile<R, G - 1>(g, t);
    tile<R, G, kNoPrefetch>(t);
  }
}

}  // namespace

// Work units are 16-column half panels u = 2·p + h (h = 0, 1), in order; the first and the last
// may be skipped when the column range does not reach them. Per unit, the row blocks run down M,
// so the half panel (kc × 16 floats, one 64-byte line per k) stays in L1 while the A rows stream
// from L1/L2. Rows are split into ceil(m / 6) blocks of near-equal size, so no block falls to a
// short, latency-bound tail.
// Prefetch, so that each unit starts warm: the first row block of unit u pulls unit u+1 into L2,
// the last row block pulls it into L1, row k of u+1 along with row k of u. Each tile also prefetches
// the C tile that follows it (next row block, or the first one of the next unit).
void run_panels(const PanelTask& pt) {
  const int64_t nb = (pt.m + kMr - 1) / kMr;
  const int64_t base = pt.m / nb, extra = pt.m % nb;  // the first `extra` blocks get base + 1 rows
  auto block_rows = [&](int64_t b) { return base + (b < extra ? 1 : 0); };
  // Columns [lo, hi) of unit u, relative to the unit's first column.
  auto unit_lo = [&](int64_t u) {
    const int c = u / 2 == 0 ? pt.col_begin - static_cast<int>(u % 2) * 16 : 0;
    return c < 0 ? 0 : c;
  };
  auto unit_hi = [&](int64_t u) {
    const int c = u / 2 == pt.num_panels - 1 ? pt.col_end - static_cast<int>(u % 2) * 16 : 16;
    return c > 16 ? 16 : c;
  };
  auto unit_B = [&](int64_t u) { return pt.B + (u / 2) * pt.panel_stride + (u % 2) * 16; };
  auto unit_C = [&](int64_t u) { return pt.C + u * 16; };
  const int64_t u_begin = pt.col_begin >= 16 ? 1 : 0;
  const int64_t u_end = 2 * (pt.num_panels - 1) + (pt.col_end > 16 ? 2 : 1);

  TileArgs t;
  t.kc = pt.kc;
  t.lda = pt.lda;
  t.ldc = pt.ldc;
  t.accumulate = pt.accumulate;
  if (pt.m <= 2) {  // one or two rows: tiles of G units side by side (see tile())
    const int64_t G = pt.m == 1 ? kGMax : 2;
    t.A = pt.A;
    t.next_B = nullptr;
    t.next_C = nullptr;
    t.next_C_rows = 0;
    for (int64_t u = u_begin; u < u_end; u += G) {
      const int g_count = static_cast<int>(u_end - u < G ? u_end - u : G);
      t.full = true;
      for (int g = 0; g < g_count; ++g) {
        const int lo = unit_lo(u + g), hi = unit_hi(u + g);
        t.full = t.full && lo == 0 && hi == 16;
        t.mask0[g] = lane_mask(lo, hi, 0);
        t.mask1[g] = lane_mask(lo, hi, 8);
        t.B[g] = unit_B(u + g);
      }
      t.C = unit_C(u);
      t.bias = pt.bias ? pt.bias + u * 16 : nullptr;
      if (pt.m == 1) wide_tile<1, kGMax>(g_count, t);
      else wide_tile<2, 2>(g_count, t);
    }
    return;
  }
  for (int64_t u = u_begin; u < u_end; ++u) {
    const int lo = unit_lo(u), hi = unit_hi(u);
    const bool has_next = u + 1 < u_end;
    t.full = lo == 0 && hi == 16;
    t.mask0[0] = lane_mask(lo, hi, 0);
    t.mask1[0] = lane_mask(lo, hi, 8);
    t.B[0] = unit_B(u);
    t.next_B = has_next ? unit_B(u + 1) : nullptr;
    float* C = unit_C(u);
    t.bias = pt.bias ? pt.bias + u * 16 : nullptr;
    int64_t i0 = 0;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t r = block_rows(b);
      t.A = pt.A + i0 * pt.lda;
      t.C = C + i0 * pt.ldc;
      PrefetchB pf = kNoPrefetch;
      if (has_next) pf = b == nb - 1 ? kToL1 : b == 0 ? kToL2 : kNoPrefetch;
      if (b + 1 < nb) {  // next tile: same unit, next rows
        t.next_C = t.C + r * pt.ldc;
        t.next_C_rows = static_cast<int>(block_rows(b + 1));
        t.next_lo = lo;
        t.next_hi = hi;
      } else if (has_next) {  // next tile: first rows of the next unit
        t.next_C = unit_C(u + 1);
        t.next_C_rows = static_cast<int>(block_rows(0));
        t.next_lo = unit_lo(u + 1);
        t.next_hi = unit_hi(u + 1);
      } else {
        t.next_C = nullptr;
        t.next_C_rows = 0;
      }
      tile_rows<kMr>(r, pf, t);
      i0 += r;
    }
  }
}

namespace {

// One tile of gemm_tn: C[0:R, 0:16] (+)= Σ_k A[k, 0:R]ᵀ B[k, 0:16] for one 16-column half of a
// panel (row k: one 64-byte line, two aligned loads), A's row k giving R broadcasts; 6 × 16 as in
// run_panels (12 accumulators). One chain per element over k in order, whatever R: the same
// arithmetic as the AVX-512 tile, so gemm_tn_packed gives the same bits in both builds.
template <int R>
__attribute__((noinline)) void tn_tile(int64_t kc, const float* __restrict A, int64_t lda, const float* __restrict B,
                                       float* C, int64_t ldc, __m256i mask0, __m256i mask1, bool full, bool accumulate) {
  __m256 c0[R], c1[R];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) c0[i] = c1[i] = _mm256_setzero_ps();
  if (accumulate) {  // C now, while the tile runs (see the AVX-512 tile)
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const char* row = reinterpret_cast<const char*>(C + i * ldc);
      _mm_prefetch(row, _MM_HINT_T0);
      _mm_prefetch(row + 60, _MM_HINT_T0);
    }
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(B + k * kP);
    const __m256 b1 = _mm256_load_ps(B + k * kP + 8);
    const float* a = A + k * lda;
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    float* row = C + i * ldc;
    __m256 v0 = c0[i], v1 = c1[i];
    if (full) {
      if (accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(row));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(row + 8));
      }
      _mm256_storeu_ps(row, v0);
      _mm256_storeu_ps(row + 8, v1);
    } else {
      if (accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_maskload_ps(row, mask0));
        v1 = _mm256_add_ps(v1, _mm256_maskload_ps(row + 8, mask1));
      }
      _mm256_maskstore_ps(row, mask0, v0);
      _mm256_maskstore_ps(row + 8, mask1, v1);
    }
  }
}

template <int R>
inline void tn_tile_rows(int64_t r, int64_t kc, const float* A, int64_t lda, const float* B, float* C, int64_t ldc,
                         __m256i mask0, __m256i mask1, bool full, bool accumulate) {
  if constexpr (R > 0) {
    if (r != R) return tn_tile_rows<R - 1>(r, kc, A, lda, B, C, ldc, mask0, mask1, full, accumulate);
    tn_tile<R>(kc, A, lda, B, C, ldc, mask0, mask1, full, accumulate);
  }
}

}  // namespace

// gemm_tn, one K chunk of up to 32 rows of C, as avx512::run_tn: 32-column panels of B outer, each
// as two 16-column halves (the half panel, kc × 64 bytes, stays in L1 while the 6-row tiles of C
// run down it), tiles of up to 6 rows of C (columns of A) inner.
void run_tn(const TnTask& t) {
  for (int64_t j = 0, p = 0; j < t.n; j += kP, ++p) {
    const int hi = static_cast<int>(t.n - j < kP ? t.n - j : kP);
    for (int half = 0; half < 2 && 16 * half < hi; ++half) {
      const int base = 16 * half;
      const __m256i mask0 = lane_mask(0, hi, base), mask1 = lane_mask(0, hi, base + 8);
      const bool full = hi >= base + 16;
      const float* B = t.B + p * t.panel_stride + base;
      // Near-equal row tiles (32 rows: 6, 6, 5, 5, 5, 5, not 6 × 5 + 2): a 2-row tile has too few
      // independent FMAs to hide their latency.
      const int64_t nb = (t.m + kMr - 1) / kMr, rows = t.m / nb, extra = t.m % nb;
      for (int64_t b = 0, i = 0; b < nb; ++b) {
        const int64_t r = rows + (b < extra ? 1 : 0);
        tn_tile_rows<kMr>(r, t.kc, t.A + i, t.lda, B, t.C + i * t.ldc + j + base, t.ldc, mask0, mask1, full, t.accumulate);
        i += r;
      }
    }
  }
}

}  // namespace avx2
}  // namespace packed_gemm_internal
}  // namespace rnnkit

#endif  // x86-64
