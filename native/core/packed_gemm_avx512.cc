// AVX-512 macro-kernel of packed_gemm (see packed_gemm.h for the packed layout and PanelTask).
//
// Compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma and only called after the CPU was
// checked for those features. ODR hazard: any inline function or template that is also used by a
// baseline translation unit (std::min, PackedMatrix accessors, ...) could be emitted here with
// AVX-512 instructions and then picked by the linker for the baseline code. So this file uses only
// intrinsics (always-inline) and its own helpers in an anonymous namespace, and has no dynamically
// initialised globals (their initialisers would run at load time, before any CPU check).
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "packed_gemm.h"

namespace rnnkit {
namespace packed_gemm_internal {
namespace avx512 {

namespace {

// Register tile: up to kMr = 8 rows × 32 columns (2 zmm per row) = 16 zmm accumulators. Per k: 2
// panel loads + 8 broadcasts of A (vbroadcastss from memory, load ports only) feed 16 FMAs, i.e. 8
// cycles at 2 FMAs/cycle with the loads well under their limit; 16 independent chains cover the
// FMA latency (4 cycles × 2 ports). Measured at 95-100% of the zmm FMA peak on M = 64, N = 1024,
// K = 256 when the machine is quiet; 12 × 32 (24 accumulators) was no faster, and 8 divides the
// usual batch sizes.
constexpr int kMr = 8;
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

// One register tile: C[0:R, 0:32·G] (+)= A[0:R, 0:kc] · B[0:kc, 0:32·G] over G consecutive panels
// (G > 1 only for 1- and 2-row tiles, see tile()) on the lanes of (mask0[g], mask1[g]), plus
// software prefetches for what comes next (see run_panels).
constexpr int kGMax = 4;
struct TileArgs {
  int64_t kc;
  const float* A;  // row i at A + i·lda
  int64_t lda;
  const float* B;  // k-major panel rows of 32 floats, 64-byte aligned; panel g at B + g·panel_stride
  int64_t panel_stride;
  float* C;        // row i at C + i·ldc; panel g's columns from C + 32·g
  int64_t ldc;
  __mmask16 mask0[kGMax], mask1[kGMax];  // per panel: columns 0-15 / 16-31 to store
  bool accumulate;
  const float* bias;    // panel g's bias from bias + 32·g, added after the sum; nullptr: none
  const float* next_B;  // panel to prefetch alongside B (row k with row k), or nullptr (G = 1 only)
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
// share its GEMM and however K is cut into chunks (a chunk stores C exactly, the next one goes on
// from it). That is what lets a stream's step run in any batch with the same result (batch
// invariance, lib/serve/stream.ts). The FMA latency (4 cycles, 2 per cycle) needs 8 independent
// chains: R = 8 rows × 2 zmm have 16; a 1- or 2-row tile covers G = 4 or 2 panels instead (8
// chains), not S interleaved chains per element, which would change the order of the sum.
template <int R, int G, PrefetchB kPf>
__attribute__((noinline)) void tile(const TileArgs& t) {
  const int64_t kc = t.kc, lda = t.lda, ps = t.panel_stride;
  const float* __restrict A = t.A;
  const float* __restrict B = t.B;
  const float* __restrict next_B = t.next_B;

  // The next C tile (row starts and ends, 2-3 lines a row) is needed in ~R·kc/8 cycles: fetch now.
  for (int i = 0; i < t.next_C_rows; ++i) {
    const float* row = t.next_C + i * t.ldc;
    _mm_prefetch(reinterpret_cast<const char*>(row + t.next_lo), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(row + t.next_hi - 1), _MM_HINT_T0);
  }

  __m512 c0[G][R], c1[G][R];
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      if (t.accumulate) {
        const float* row = t.C + i * t.ldc + g * kP;
        c0[g][i] = _mm512_maskz_loadu_ps(t.mask0[g], row);
        c1[g][i] = _mm512_maskz_loadu_ps(t.mask1[g], row + 16);
      } else {
        c0[g][i] = c1[g][i] = _mm512_setzero_ps();
      }
    }
  }

  for (int64_t k = 0; k < kc; ++k) {
    __m512 b0[G], b1[G];
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
      b0[g] = _mm512_load_ps(B + g * ps + k * kP);
      b1[g] = _mm512_load_ps(B + g * ps + k * kP + 16);
    }
    if constexpr (G == 1) {
      prefetch_line<kPf>(next_B + k * kP);
      prefetch_line<kPf>(next_B + k * kP + 16);
    }
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512 a = _mm512_set1_ps(A[i * lda + k]);
#pragma GCC unroll 16
      for (int g = 0; g < G; ++g) {
        c0[g][i] = _mm512_fmadd_ps(a, b0[g], c0[g][i]);
        c1[g][i] = _mm512_fmadd_ps(a, b1[g], c1[g][i]);
      }
    }
  }

  if (t.bias) {  // (after each element's whole chain: the bits of adding it to the stored C later)
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
      const __m512 b0 = _mm512_maskz_loadu_ps(t.mask0[g], t.bias + g * kP);
      const __m512 b1 = _mm512_maskz_loadu_ps(t.mask1[g], t.bias + g * kP + 16);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        c0[g][i] = _mm512_add_ps(c0[g][i], b0);
        c1[g][i] = _mm512_add_ps(c1[g][i], b1);
      }
    }
  }
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      float* row = t.C + i * t.ldc + g * kP;
      _mm512_mask_storeu_ps(row, t.mask0[g], c0[g][i]);
      _mm512_mask_storeu_ps(row + 16, t.mask1[g], c1[g][i]);
    }
  }
}

// Runs the r-row tile, r in [1, R]: a compare chain (cheap next to a tile) rather than a table of
// function pointers, which would need dynamic initialisation - code of this file that would run at
// load time, before the CPU check.
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

// A 1- or 2-row tile over g in [1, G] panels (see tile()).
template <int R, int G>
inline void wide_tile(int g, const TileArgs& t) {
  if constexpr (G > 0) {
    if (g != G) return wide_tile<R, G - 1>(g, t);
    tile<R, G, kNoPrefetch>(t);
  }
}

// One tile of gemm_tn: C[0:R, 0:32] (+)= Σ_k A[k, 0:R]ᵀ B[k, 0:32] on the lanes of (mask0, mask1);
// B's row k is one 128-byte panel row (two aligned loads), A's row k gives R broadcasts. One chain
// per element whatever R (its sum depends on the shape alone).
template <int R>
__attribute__((noinline)) void tn_tile(int64_t kc, const float* __restrict A, int64_t lda, const float* __restrict B,
                                       float* C, int64_t ldc, __mmask16 mask0, __mmask16 mask1, bool accumulate) {
  __m512 c0[R], c1[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) c0[i] = c1[i] = _mm512_setzero_ps();
  // The C tile is read back after the k loop, when an out-of-order core can no longer hide its
  // misses: a layer's weight gradients outgrow L2 (a 2-layer BiLSTM(128 → 256) layer: 3 MB per
  // direction) and come back from L3 at every K chunk, so it is fetched now, while the tile runs.
  if (accumulate) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const char* row = reinterpret_cast<const char*>(C + i * ldc);
      _mm_prefetch(row, _MM_HINT_T0);
      _mm_prefetch(row + 64, _MM_HINT_T0);
      _mm_prefetch(row + 124, _MM_HINT_T0);  // (a row not on a line boundary spans three lines)
    }
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(B + k * kP);
    const __m512 b1 = _mm512_load_ps(B + k * kP + 16);
    const float* a = A + k * lda;
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    float* row = C + i * ldc;
    __m512 v0 = c0[i], v1 = c1[i];
    if (accumulate) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(mask0, row));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(mask1, row + 16));
    }
    _mm512_mask_storeu_ps(row, mask0, v0);
    _mm512_mask_storeu_ps(row + 16, mask1, v1);
  }
}

template <int R>
inline void tn_tile_rows(int64_t r, int64_t kc, const float* A, int64_t lda, const float* B, float* C, int64_t ldc,
                         __mmask16 mask0, __mmask16 mask1, bool accumulate) {
  if constexpr (R > 0) {
    if (r != R) return tn_tile_rows<R - 1>(r, kc, A, lda, B, C, ldc, mask0, mask1, accumulate);
    tn_tile<R>(kc, A, lda, B, C, ldc, mask0, mask1, accumulate);
  }
}

}  // namespace

// gemm_tn, one K chunk of up to 32 rows of C: 32-column panels of B outer (a panel's kc rows,
// kc × 128 bytes, stay in L1 while every 8-row tile of C runs down them, as does the A chunk,
// kc × 32 floats), tiles of up to 8 rows of C (columns of A) inner.
void run_tn(const TnTask& t) {
  for (int64_t j = 0, p = 0; j < t.n; j += kP, ++p) {
    const int hi = static_cast<int>(t.n - j < kP ? t.n - j : kP);
    const __mmask16 mask0 = lane_mask(0, hi, 0), mask1 = lane_mask(0, hi, 16);
    const float* B = t.B + p * t.panel_stride;
    // Near-equal row tiles, as in run_panels (20 rows: 7, 7, 6, not 8, 8, 4).
    const int64_t nb = (t.m + kMr - 1) / kMr, rows = t.m / nb, extra = t.m % nb;
    for (int64_t b = 0, i = 0; b < nb; ++b) {
      const int64_t r = rows + (b < extra ? 1 : 0);
      tn_tile_rows<kMr>(r, t.kc, t.A + i, t.lda, B, t.C + i * t.ldc + j, t.ldc, mask0, mask1, t.accumulate);
      i += r;
    }
  }
}

// Loop order: panels outer, row blocks inner, so the panel chunk (kc × 32 floats) stays in L1 while
// the A rows stream from L1/L2. Rows are split into ceil(m / kMr) blocks of near-equal size (e.g.
// M = 70 → 7 × 8 + 2 × 7) so no block falls to a short, latency-bound tail.
// Prefetch, so that each panel starts warm: the first row block of panel p pulls panel p+1 into L2
// (it may come from L3 when W is larger than L2), the last row block - whose panel rows are dead
// once used - pulls it into L1, row k of p+1 along with row k of p. Each tile also prefetches the
// C tile that follows it (next row block, or the first one of the next panel).
void run_panels(const PanelTask& pt) {
  const int64_t nb = (pt.m + kMr - 1) / kMr;
  const int64_t base = pt.m / nb, extra = pt.m % nb;  // the first `extra` blocks get base + 1 rows
  auto block_rows = [&](int64_t b) { return base + (b < extra ? 1 : 0); };
  auto col_lo = [&](int64_t p) { return p == 0 ? pt.col_begin : 0; };
  auto col_hi = [&](int64_t p) { return p == pt.num_panels - 1 ? pt.col_end : kP; };

  TileArgs t;
  t.kc = pt.kc;
  t.lda = pt.lda;
  t.ldc = pt.ldc;
  t.accumulate = pt.accumulate;
  t.panel_stride = pt.panel_stride;
  if (pt.m <= 2) {  // one or two rows: tiles of G panels side by side (see tile())
    const int G = pt.m == 1 ? kGMax : 2;
    t.A = pt.A;
    t.next_B = nullptr;
    t.next_C = nullptr;
    t.next_C_rows = 0;
    for (int64_t p = 0; p < pt.num_panels; p += G) {
      const int g_count = static_cast<int>(pt.num_panels - p < G ? pt.num_panels - p : G);
      for (int g = 0; g < g_count; ++g) {
        t.mask0[g] = lane_mask(col_lo(p + g), col_hi(p + g), 0);
        t.mask1[g] = lane_mask(col_lo(p + g), col_hi(p + g), 16);
      }
      t.B = pt.B + p * pt.panel_stride;
      t.C = pt.C + p * kP;
      t.bias = pt.bias ? pt.bias + p * kP : nullptr;
      if (pt.m == 1) wide_tile<1, kGMax>(g_count, t);
      else wide_tile<2, 2>(g_count, t);
    }
    return;
  }
  for (int64_t p = 0; p < pt.num_panels; ++p) {
    const int lo = col_lo(p), hi = col_hi(p);
    const bool has_next_panel = p + 1 < pt.num_panels;
    t.mask0[0] = lane_mask(lo, hi, 0);
    t.mask1[0] = lane_mask(lo, hi, 16);
    t.B = pt.B + p * pt.panel_stride;
    t.next_B = has_next_panel ? t.B + pt.panel_stride : nullptr;
    t.bias = pt.bias ? pt.bias + p * kP : nullptr;
    float* C = pt.C + p * kP;
    int64_t i0 = 0;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t r = block_rows(b);
      t.A = pt.A + i0 * pt.lda;
      t.C = C + i0 * pt.ldc;
      PrefetchB pf = kNoPrefetch;
      if (has_next_panel) pf = b == nb - 1 ? kToL1 : b == 0 ? kToL2 : kNoPrefetch;
      if (b + 1 < nb) {  // next tile: same panel, next rows
        t.next_C = t.C + r * pt.ldc;
        t.next_C_rows = static_cast<int>(block_rows(b + 1));
        t.next_lo = lo;
        t.next_hi = hi;
      } else if (has_next_panel) {  // next tile: first rows of the next panel
        t.next_C = C + kP;
        t.next_C_rows = static_cast<int>(block_rows(0));
        t.next_lo = col_lo(p + 1);
        t.next_hi = col_hi(p + 1);
      } else {
        t.next_C = nullptr;
        t.next_C_rows = 0;
      }
      tile_rows<kMr>(r, pf, t);
      i0 += r;
    }
  }
}

}  // namespace avx512
}  // namespace packed_gemm_internal
}  // namespace rnnkit

#endif  // x86-64
