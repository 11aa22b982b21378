#include "sequence.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "../cells/step_kernels.h"
#include "blas.h"
#include "scratch.h"
#include "thread_pool.h"
#include "weight_gemm.h"

#include <type_traits>

namespace rnnkit {

namespace {

// Hidden units per work item when a step is split across the pool (one packed-weight panel).
constexpr int64_t kUnitBlock = PackedMatrix::kPanelWidth;
// A step (or GEMM) with fewer flops than this runs on the calling thread alone.
constexpr int64_t kMinParallelFlops = 1 << 18;
// A step with fewer flops than kMinParallelFlops still runs staged across the pool when W_hh has
// at least this many elements: at small batches a step streams all of W_hh from L2, and two
// threads each streaming half win despite the per-step meeting. Measured (2 threads, T = 50,
// staged / inline): LSTM(64 → 128) B 1 0.68, LSTM(64 → 96) B 1 0.77 and B 2 0.85 (W_hh 36 864);
// LSTM(64 → 64) B 2 1.12 and B 1 (32 → 64) 1.09 (W_hh 16 384: the meeting costs more than it
// saves). Above kMinParallelFlops staged beat one hand-off per step on every shape measured:
// LSTM(64 → 64) B 16 0.95, B 32 0.96; LSTM(64 → 256) B 1 0.87; LSTM(128 → 512) B 1 0.97;
// LSTM(128 → 256) B 64 1.00–1.02 and GRU 1.00 (the same split and the same imbalance waits).
constexpr int64_t kMinStagedWeights = 1 << 15;
// Inference projects the input in chunks of at most this many scalars (bounds memory).
constexpr int64_t kProjectionChunk = 1 << 21;

// Runs fn(u0, u1) over [0, H) split into ranges aligned to kUnitBlock, across the pool when the
// work (flops) is worth sharing.
template <typename Fn>
void for_unit_ranges(int64_t H, double flops, Fn&& fn) {
  const int64_t blocks = (H + kUnitBlock - 1) / kUnitBlock;
  const int64_t grain = flops < kMinParallelFlops ? blocks : 1;
  parallel_for(blocks, grain, [&](int64_t b0, int64_t b1) { fn(b0 * kUnitBlock, std::min(H, b1 * kUnitBlock)); });
}

// Splits [0, n) across the pool in ranges of at least min_items, or runs inline when small.
template <typename Fn>
void for_ranges(int64_t n, int64_t min_items, double flops, Fn&& fn) {
  const int64_t grain = flops < kMinParallelFlops ? n : std::max<int64_t>(1, min_items);
  parallel_for(n, grain, fn);
}

// How a sequence's steps split their hidden units when they run staged (parallel_stages): `count`
// ranges of whole kUnitBlock blocks, one per pool thread, or count 0 when the steps do not run
// staged (not eligible, one block or one thread, or a step too small to split; see
// kMinStagedWeights).
struct UnitSlices {
  int64_t H = 0, blocks = 0, count = 0;
  int64_t begin(int64_t j) const { return std::min(H, blocks * j / count * kUnitBlock); }
  int64_t end(int64_t j) const { return begin(j + 1); }
};
UnitSlices staged_slices(bool eligible, int64_t H, int64_t B, int64_t GH, int64_t P) {
  UnitSlices u;
  u.H = H;
  u.blocks = (H + kUnitBlock - 1) / kUnitBlock;
  const int64_t n = std::min<int64_t>(ThreadPool::instance().num_threads(), u.blocks);
  if (eligible && n >= 2 &&
      (2.0 * double(B) * double(GH) * double(P) >= double(kMinParallelFlops) || GH * P >= kMinStagedWeights))
    u.count = n;
  return u;
}

// C[B, g·H + u0 .. g·H + u1) (+)= A[B, K] · W[g·H + u0 .. g·H + u1, :]ᵀ for the gates g in [g0, g1).
// float32 over all the units of a small batch: the gates' columns are one range, [g0·H, g1·H), and
// one call (less per-call work at B = 1; the packed kernels give every element the same chain
// however the columns are cut, and up to 64 rows the blocking does not depend on the range; BLAS,
// for float64, picks its path by the shape, so its calls keep the per-gate shape of split steps).
template <typename S>
void gate_slices_gemm(const WeightGemm<S>& W, int64_t B, const S* A, int64_t lda, int64_t H, int g0, int g1,
                      int64_t u0, int64_t u1, bool accumulate, S* C, int64_t ldc) {
  if constexpr (std::is_same_v<S, float>)
    if (u0 == 0 && u1 == H && B <= 64) return W.run(B, A, lda, g0 * H, g1 * H, accumulate, C, ldc);
  for (int g = g0; g < g1; ++g) W.run(B, A, lda, g * H + u0, g * H + u1, accumulate, C, ldc);
}

// C[M, N] (+)= A[M, K] · op(W), the columns of C split across the pool.
template <typename S>
void gemm_by_columns(const WeightGemm<S>& W, int64_t M, int64_t K, const S* A, int64_t lda, bool accumulate, S* C,
                     int64_t ldc) {
  for_unit_ranges(W.n(), 2.0 * M * W.n() * K, [&](int64_t n0, int64_t n1) { W.run(M, A, lda, n0, n1, accumulate, C, ldc); });
}

// C[M, N] (+)= A[M, K] · op(W), the rows of C split across the pool.
template <typename S>
void gemm_by_rows(const WeightGemm<S>& W, int64_t M, int64_t K, const S* A, int64_t lda, bool accumulate, S* C,
                  int64_t ldc) {
  // Fixed-size row blocks, whatever the thread count (see gemm_tn_by_rows).
  constexpr int64_t kRowBlock = 64;
  const int64_t blocks = (M + kRowBlock - 1) / kRowBlock;
  for_ranges(blocks, 1, 2.0 * M * W.n() * K, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * kRowBlock, r1 = std::min(M, r0 + kRowBlock);
      W.run(r1 - r0, A + r0 * lda, lda, 0, W.n(), accumulate, C + r0 * ldc, ldc);
    }
  });
}

// C[M, N] = A[K, M]ᵀ · B[K, N] (B's leading dimension is N), the rows of C split across the pool
// (weight gradients, K = T·B rows). The rows go to BLAS in blocks of a fixed size, not one block
// per thread: BLAS picks its summation path by the shape it is given, so blocks that followed the
// thread count made the gradients differ in the last bits with the pool size (and between a call
// that had the pool and one that ran alone while another call held it).
// float32 on an AVX-512 or AVX2 CPU: rnnkit's own tiles (gemm_tn_packed), one call per thread's
// range of whole row blocks; on AVX-512 ~2.1× OpenBLAS's Haswell kernels (OPENBLAS_CORETYPE=Haswell,
// which these CPUs need) on LSTM(128 → 256) B = 32, T = 50: 3.8 against 8 ms of a 21 ms forward +
// backward (perf); on the AVX2 build ~1.35× them on the same shape (7.4 against 10 ms of 34–39 ms).
// (A layer's dW_ih and dW_hh go to weight_gradients_fused instead, where it runs.)
template <typename S>
void gemm_tn_by_rows(int64_t M, int64_t N, int64_t K, const S* A, int64_t lda, const S* B, S* C, int64_t ldc) {
  constexpr int64_t kRowBlock = 32;
  const int64_t blocks = (M + kRowBlock - 1) / kRowBlock;
  bool packed = false;
  if constexpr (std::is_same_v<S, float>) packed = gemm_tn_packed_available();
  for_ranges(blocks, 1, 2.0 * M * N * K, [&](int64_t b0, int64_t b1) {
    if constexpr (std::is_same_v<S, float>) {  // one call per range: it copies B's chunks once
      const int64_t r0 = b0 * kRowBlock, r1 = std::min(M, b1 * kRowBlock);
      if (packed && gemm_tn_packed(r1 - r0, N, K, A + r0, lda, B, N, C + r0 * ldc, ldc)) return;
    }
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * kRowBlock, r1 = std::min(M, r0 + kRowBlock);
      gemm(true, false, r1 - r0, N, K, S(1), A + r0, lda, B, N, S(0), C + r0 * ldc, ldc);
    }
  });
}

// out[M, N] = x[M, K] · W_ihᵀ (+ bias per row), in near-equal blocks of 64–127 rows (fewer than
// 64 only when M is) split across the pool; the bias is added while a block is still in cache.
// The blocks depend on M alone, never on the thread count, and no block is a short tail: BLAS
// (float64) picks its summation path by the shape it is given, so blocks that followed the thread
// count made results differ in the last bit between 1 and 5 threads, and short tail blocks made
// inference (chunked) differ from training (one projection).
template <typename S>
void project_inputs(const WeightGemm<S>& W, int64_t M, int64_t K, const S* x, const S* bias, S* out) {
  constexpr int64_t kRowBlock = 64;
  const int64_t N = W.n();
  const int64_t blocks = std::max<int64_t>(1, M / kRowBlock);
  for_ranges(blocks, 1, 2.0 * M * N * K, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t b0 = M * q / blocks, b1 = M * (q + 1) / blocks;
      W.run(b1 - b0, x + b0 * K, K, 0, N, false, out + b0 * N, N, bias);  // (the bias as each tile stores)
    }
  });
}

// What a cell family keeps beside the gates and h, from its configuration alone (the workspace
// layout, the scratch sizes). The family's steps are below (CellFamily).
struct CellTraits {
  bool cell_state = false;    // c rows (LSTM)
  bool aux = false;           // aux rows [N, H] (GRU)
  bool gate_acts = false;     // effective i, f, o rows [B + N, 3H] (LSTM full gate recurrence)
  bool hh_scratch = false;    // h_prev·Rᵀ [B, G·H] each step (GRU linear before reset)
  bool separate_dgh = false;  // h-side pre-activation gradients differ from the x-side ones (GRU-lbr)
  // With separate_dgh: how many leading gate columns of the h-side gradients equal the x-side ones
  // bit for bit (GRU-lbr: r and z, 2H; they differ in the n block only).
  int64_t dgh_same_cols = 0;
};
CellTraits traits_of(const SeqConfig& c) {
  CellTraits t;
  switch (c.cell) {
    case CellKind::kRnnTanh:
    case CellKind::kRnnRelu: break;
    case CellKind::kLstm:
      t.cell_state = true;
      t.gate_acts = c.opt.full_gate_recurrence;
      break;
    case CellKind::kGru:
      t.aux = true;
      t.hh_scratch = t.separate_dgh = c.linear_before_reset;
      if (t.separate_dgh) t.dgh_same_cols = 2 * c.H;
      break;
  }
  return t;
}

struct WorkspaceLayout {
  int64_t gates, hs, cs, aux, ms, acts, hd, total;
};
WorkspaceLayout layout_of(const SeqConfig& c, int64_t N, bool state_dropout) {
  const int64_t B = c.B, P = c.state_size();
  const CellTraits t = traits_of(c);
  WorkspaceLayout w{};
  w.gates = 0;
  w.hs = w.gates + N * c.gate_width();
  w.cs = w.hs + (B + N) * P;
  w.aux = w.cs + (t.cell_state ? (B + N) * c.H : 0);
  w.ms = w.aux + (t.aux ? N * c.H : 0);
  w.acts = w.ms + (c.P > 0 ? N * c.H : 0);
  w.hd = w.acts + (t.gate_acts ? (B + N) * 3 * c.H : 0);
  w.total = w.hd + (state_dropout ? N * P : 0);
  return w;
}

// One step of a family, forward: the recurrent GEMMs into the step's gate rows, then the
// element-wise kernels, split over hidden units across the pool.
template <typename S>
struct ForwardStep {
  const PreparedLayer<S>& W;
  const StepArgs<S>& a;
  int64_t Bs, H, P;
  double flops;              // of the recurrent GEMMs (for the threading choice)
  const S* acts_prev;        // LSTM full gate recurrence: the previous step's effective i, f, o
  S* hh;                     // GRU linear before reset: h_prev·Rᵀ [Bs, G·H] (the kernel reads it as a.hh)
};
// And backward: the element-wise kernels, then dh_prev = dGates · R (into dh_next).
template <typename S>
struct BackwardStep {
  const PreparedLayer<S>& W;
  const StepArgs<S>& a;
  int64_t Bs, H, P;
  double cell_flops;         // rough cost of the element-wise work
  S* dh_next;
  S* drh;                    // GRU reset before: d(r ⊙ h_prev)
  S* dacts_out;              // LSTM full gate recurrence: d[i, f, o]_{t−1} out
};

// One cell family as the drivers see it (oneDNN's cell execution per cell kind): what it keeps
// (CellTraits), its element-wise kernels (one or two phases; the fast or the general ones,
// cells/step_kernels.h), a step forward and backward, and the recurrent weight's gradient. The
// drivers below test no cell kind.
template <typename S>
struct CellFamily {
  CellTraits keeps;
  StepKernel<S> fwd[2] = {}, bwd[2] = {};
  void (*forward)(const CellFamily&, const ForwardStep<S>&) = nullptr;
  // The units [u0, u1) of a forward step, when a step is one pass over the units (a whole step is
  // then forward_units over a split of [0, H)); null when it needs two (GRU reset before).
  void (*forward_units)(const CellFamily&, const ForwardStep<S>&, int64_t u0, int64_t u1) = nullptr;
  void (*backward)(const CellFamily&, const BackwardStep<S>&) = nullptr;
  // A backward step in two passes over the units, when it is one element-wise pass and then
  // dh_prev = dGates · R (null otherwise: GRU reset before): the element-wise kernel on units
  // [u0, u1), then columns [u0, u1) of dh_prev (into dh_next). The first reads only its own units of
  // dh and dc; the second reads every unit's gate gradients.
  void (*backward_cell_units)(const CellFamily&, const BackwardStep<S>&, int64_t u0, int64_t u1) = nullptr;
  void (*backward_dh_units)(const CellFamily&, const BackwardStep<S>&, int64_t u0, int64_t u1) = nullptr;
  // dW_hh [G·H, P] in pieces of its rows: rows [g0, g1) = (columns [g0, g1) of the h-side gate
  // gradients [N, G·H])ᵀ · the aligned previous states [N, P], or · the aux rows [N, H] (GRU reset
  // before: R_n's rows from r ⊙ h_prev).
  struct HhPiece {
    int64_t g0, g1;
    bool aux;
  };
  HhPiece hh[2] = {};
  int hh_pieces = 0;
};

// Clamps [n] values to [−limit, limit].
template <typename S>
void clamp_values(S* v, int64_t n, double limit) {
  const S l = S(limit);
  for (int64_t i = 0; i < n; ++i) v[i] = v[i] < -l ? -l : (v[i] > l ? l : v[i]);
}

// A [N, w] matrix whose rows off_s.. are, for each step, the first B_s rows of the block the step
// read as its previous value: block −1 at `base` (rows [0, B)), block s at base + (B + off_s)·w.
// Uniform packings read it in place; otherwise the rows are gathered into `scratch`.
template <typename S>
const S* aligned_previous(const StepPlan& p, const S* base, int64_t w, std::vector<S>& scratch) {
  if (p.uniform()) return base;
  scratch.resize(size_t(p.rows() * w));
  for (int64_t s = 0; s < p.T; ++s) {
    const S* src = s == 0 ? base : base + (p.B + p.offset(s - 1)) * w;
    std::memcpy(scratch.data() + p.offset(s) * w, src, sizeof(S) * size_t(p.size(s) * w));
  }
  return scratch.data();
}

// ---------------------------------------------------------------------------------------------
// The families.

// SimpleRNN and LSTM: every gate from one recurrent GEMM (and, with full gate recurrence, the
// previous step's effective i, f, o · W_grᵀ into i, f and o), then the cell.
// The units [u0, u1) of a step (reads all of h_prev and acts_prev, writes only those units).
template <typename S>
void gates_forward_units(const CellFamily<S>& f, const ForwardStep<S>& s, int64_t u0, int64_t u1) {
  const StepArgs<S>& a = s.a;
  const int64_t H = s.H, GH = a.GH, A3 = 3 * H;
  const int G = int(GH / H);
  gate_slices_gemm(s.W.hh(), s.Bs, a.h_prev, s.P, H, 0, G, u0, u1, true, a.gates, GH);
  if (f.keeps.gate_acts) {  // gates i, f (columns 0..2H) and o (3H..4H)
    const WeightGemm<S>& w_gr = s.W.gr();
    w_gr.run(s.Bs, s.acts_prev, A3, u0, u1, true, a.gates, GH);
    w_gr.run(s.Bs, s.acts_prev, A3, H + u0, H + u1, true, a.gates, GH);
    w_gr.run(s.Bs, s.acts_prev, A3, 2 * H + u0, 2 * H + u1, true, a.gates + H, GH);
  }
  f.fwd[0](a, 0, s.Bs, u0, u1);
}
template <typename S>
void gates_forward(const CellFamily<S>& f, const ForwardStep<S>& s) {
  for_unit_ranges(s.H, s.flops, [&](int64_t u0, int64_t u1) { gates_forward_units(f, s, u0, u1); });
}
template <typename S>
void cell_backward_units(const CellFamily<S>& f, const BackwardStep<S>& s, int64_t u0, int64_t u1) {
  f.bwd[0](s.a, 0, s.Bs, u0, u1);
}
template <typename S>
void gates_backward_dh_units(const CellFamily<S>&, const BackwardStep<S>& s, int64_t u0, int64_t u1) {
  s.W.backward().hh_t.run(s.Bs, s.a.dgx, s.a.GH, u0, u1, false, s.dh_next, s.P);
}
template <typename S>
void gates_backward(const CellFamily<S>& f, const BackwardStep<S>& s) {
  const StepArgs<S>& a = s.a;
  const int64_t H = s.H, GH = a.GH, A3 = 3 * H;
  const typename PreparedLayer<S>::Backward& Wb = s.W.backward();
  // dc (LSTM): read, then written, per element
  for_unit_ranges(H, s.cell_flops, [&](int64_t u0, int64_t u1) { f.bwd[0](a, 0, s.Bs, u0, u1); });
  gemm_by_columns(Wb.hh_t, s.Bs, GH, a.dgx, GH, false, s.dh_next, s.P);
  if (f.keeps.gate_acts) {  // d[i, f, o]_{t−1} = Σ_j dgates_j · W_gr[rows of gate j] for j in i, f, o
    const int64_t gate_col[3] = {0, H, 3 * H};
    for (int j = 0; j < 3; ++j) gemm_by_columns(Wb.gr_t[j], s.Bs, H, a.dgx + gate_col[j], GH, j > 0, s.dacts_out, A3);
  }
}

// GRU, linear before reset: h_prev·Rᵀ for all three gates into its own rows (the kernel needs
// R_n h_prev + b_Rn apart), then the cell.
template <typename S>
void gru_lbr_forward_units(const CellFamily<S>& f, const ForwardStep<S>& s, int64_t u0, int64_t u1) {
  gate_slices_gemm(s.W.hh(), s.Bs, s.a.h_prev, s.H, s.H, 0, 3, u0, u1, false, s.hh, s.a.GH);
  f.fwd[0](s.a, 0, s.Bs, u0, u1);
}
template <typename S>
void gru_lbr_forward(const CellFamily<S>& f, const ForwardStep<S>& s) {
  for_unit_ranges(s.H, s.flops, [&](int64_t u0, int64_t u1) { gru_lbr_forward_units(f, s, u0, u1); });
}
template <typename S>
void gru_lbr_backward_dh_units(const CellFamily<S>&, const BackwardStep<S>& s, int64_t u0, int64_t u1) {
  s.W.backward().hh_t.run(s.Bs, s.a.dgh, s.a.GH, u0, u1, true, s.dh_next, s.H);  // onto dh ⊙ z
}
template <typename S>
void gru_lbr_backward(const CellFamily<S>& f, const BackwardStep<S>& s) {
  const StepArgs<S>& a = s.a;
  for_unit_ranges(s.H, s.cell_flops, [&](int64_t u0, int64_t u1) { f.bwd[0](a, 0, s.Bs, u0, u1); });  // dh ⊙ z into dh_next
  gemm_by_columns(s.W.backward().hh_t, s.Bs, a.GH, a.dgh, a.GH, true, s.dh_next, s.H);
}

// GRU, reset before: r and z first, then n from R_n (r ⊙ h_prev).
template <typename S>
void gru_rb_forward(const CellFamily<S>& f, const ForwardStep<S>& s) {
  const StepArgs<S>& a = s.a;
  for_unit_ranges(s.H, s.flops * 2 / 3, [&](int64_t u0, int64_t u1) {
    gate_slices_gemm(s.W.hh(), s.Bs, a.h_prev, s.H, s.H, 0, 2, u0, u1, true, a.gates, a.GH);
    f.fwd[0](a, 0, s.Bs, u0, u1);
  });
  for_unit_ranges(s.H, s.flops / 3, [&](int64_t u0, int64_t u1) {
    gate_slices_gemm(s.W.hh(), s.Bs, a.aux, s.H, s.H, 2, 3, u0, u1, true, a.gates, a.GH);
    f.fwd[1](a, 0, s.Bs, u0, u1);
  });
}
template <typename S>
void gru_rb_backward(const CellFamily<S>& f, const BackwardStep<S>& s) {
  const StepArgs<S>& a = s.a;
  const int64_t H = s.H, GH = a.GH;
  const typename PreparedLayer<S>::Backward& Wb = s.W.backward();
  for_unit_ranges(H, s.cell_flops, [&](int64_t u0, int64_t u1) { f.bwd[0](a, 0, s.Bs, u0, u1); });
  gemm_by_columns(Wb.hn_t, s.Bs, H, a.dgx + 2 * H, GH, false, s.drh, H);  // drh = dgates_n · R_n
  for_unit_ranges(H, s.cell_flops, [&](int64_t u0, int64_t u1) { f.bwd[1](a, 0, s.Bs, u0, u1); });
  gemm_by_columns(Wb.hh_t, s.Bs, 2 * H, a.dgx, GH, true, s.dh_next, H);
}

// The family of a configured cell, with its fast kernels or, when options leave the default form
// (SeqConfig::general), the general ones.
template <typename S>
CellFamily<S> family_of(const SeqConfig& c) {
  const StepKernels<S>& K = step_kernels<S>();
  const bool g = c.general();
  CellFamily<S> f;
  f.keeps = traits_of(c);
  f.forward = gates_forward<S>;
  f.forward_units = gates_forward_units<S>;
  f.backward = gates_backward<S>;
  f.backward_cell_units = cell_backward_units<S>;
  f.backward_dh_units = f.keeps.gate_acts ? nullptr : gates_backward_dh_units<S>;
  f.hh[0] = {0, c.gate_width(), false};
  f.hh_pieces = 1;
  switch (c.cell) {
    case CellKind::kRnnTanh:
      f.fwd[0] = g ? K.rnn_general_forward : K.rnn_tanh_forward;
      f.bwd[0] = g ? K.rnn_general_backward : K.rnn_tanh_backward;
      break;
    case CellKind::kRnnRelu:
      f.fwd[0] = g ? K.rnn_general_forward : K.rnn_relu_forward;
      f.bwd[0] = g ? K.rnn_general_backward : K.rnn_relu_backward;
      break;
    case CellKind::kLstm:
      f.fwd[0] = g ? K.lstm_general_forward : K.lstm_forward;
      f.bwd[0] = g ? K.lstm_general_backward : K.lstm_backward;
      break;
    case CellKind::kGru:
      if (c.linear_before_reset) {
        f.fwd[0] = g ? K.gru_lbr_general_forward : K.gru_lbr_forward;
        f.bwd[0] = g ? K.gru_lbr_general_backward : K.gru_lbr_backward;
        f.forward = gru_lbr_forward<S>;
        f.forward_units = gru_lbr_forward_units<S>;
        f.backward = gru_lbr_backward<S>;
        f.backward_dh_units = gru_lbr_backward_dh_units<S>;
      } else {
        f.fwd[0] = g ? K.gru_rb_general_rz_forward : K.gru_rb_rz_forward;
        f.fwd[1] = g ? K.gru_rb_general_n_forward : K.gru_rb_n_forward;
        f.bwd[0] = g ? K.gru_rb_general_zn_backward : K.gru_rb_zn_backward;
        f.bwd[1] = g ? K.gru_rb_general_r_backward : K.gru_rb_r_backward;
        f.forward = gru_rb_forward<S>;
        f.forward_units = nullptr;
        f.backward_cell_units = nullptr;
        f.backward_dh_units = nullptr;
        f.backward = gru_rb_backward<S>;
        f.hh[0] = {0, 2 * c.H, false};
        f.hh[1] = {2 * c.H, 3 * c.H, true};
        f.hh_pieces = 2;
      }
      break;
  }
  return f;
}

// dW_ih, dW_hh and the bias gradients of a layer in one pool job on rnnkit's tiles (float32 on an
// AVX-512 or AVX2 CPU; false, touching nothing, elsewhere). The gate columns go in row pieces
// (gemm_tn_packed_blocks segments): where the h-side gate gradients are the x-side ones (dgh = dgx:
// every cell but GRU-lbr, whose r and z columns are still the same bits) one segment has both
// products, so each chunk of the gate gradients is copied (and column-summed) once for dW_ih and
// dW_hh instead of twice, and the two products share one pool hand-off. The blocks split across
// the pool by their cost (the products' widths); they are independent, so the split changes no bit:
// the same as gemm_tn_by_rows on each product. db_ih, db_hh: G·H values each, or null.
template <typename S>
bool weight_gradients_fused(const CellFamily<S>& fam, int64_t N, int64_t GH, int64_t I, int64_t P, const S* dgx,
                            const S* dgh, const S* x, const S* h_prev, const S* aux, S* dw_ih, S* dw_hh, S* db_ih,
                            S* db_hh) {
  if constexpr (!std::is_same_v<S, float>) {
    return false;
  } else {
    if (!gemm_tn_packed_available()) return false;
    enum { kX, kH, kAux };
    const TnOperand ops[3] = {{x, I, I}, {h_prev, P, P}, {aux, P, P}};  // (aux: GRU, where P = H)
    const int64_t same = dgh == dgx ? GH : fam.keeps.dgh_same_cols;
    TnSegment segs[6];  // (at most 2 pieces × 3 segments)
    int ns = 0;
    int64_t copy_sums[2][2];  // db_hh[a, b) = db_ih[a, b) afterwards
    int ncopy = 0;
    auto add = [&](const float* A, int64_t a, int64_t b, float* sums) -> TnSegment& {
      TnSegment& sg = segs[ns++];
      sg.A = A + a;
      sg.lda = GH;
      sg.M = b - a;
      sg.col_sums = sums ? sums + a : nullptr;
      return sg;
    };
    for (int i = 0; i < fam.hh_pieces; ++i) {
      const auto& pc = fam.hh[i];
      const int hh_op = pc.aux ? kAux : kH;
      if (pc.g0 < same) {  // one segment, two products
        const int64_t a = pc.g0, b = std::min(pc.g1, same);
        TnSegment& sg = add(dgx, a, b, db_ih ? db_ih : db_hh);
        sg.products[0] = TnProduct{kX, dw_ih + a * I, I};
        sg.products[1] = TnProduct{hh_op, dw_hh + a * P, P};
        sg.num_products = 2;
        if (db_ih && db_hh) { copy_sums[ncopy][0] = a; copy_sums[ncopy][1] = b; ++ncopy; }
      }
      if (pc.g1 > same) {  // the x-side and h-side gradients apart
        const int64_t a = std::max(pc.g0, same), b = pc.g1;
        TnSegment& sx = add(dgx, a, b, db_ih);
        sx.products[0] = TnProduct{kX, dw_ih + a * I, I};
        sx.num_products = 1;
        TnSegment& sh = add(dgh, a, b, db_hh);
        sh.products[0] = TnProduct{hh_op, dw_hh + a * P, P};
        sh.num_products = 1;
      }
    }
    // Each block's cost in panels of its products (+1 for copying its chunk of A), as a prefix.
    const int64_t blocks = tn_block_count(segs, ns);
    std::vector<int64_t> start(size_t(blocks) + 1, 0);
    for (int s = 0, g = 0; s < ns; ++s) {
      int64_t cost = 1;
      for (int p = 0; p < segs[s].num_products; ++p) cost += (ops[segs[s].products[p].operand].N + kTnBlockRows - 1) / kTnBlockRows;
      for (int64_t r0 = 0; r0 < segs[s].M; r0 += kTnBlockRows, ++g) start[size_t(g) + 1] = start[size_t(g)] + cost;
    }
    const int64_t units = start[size_t(blocks)];
    const double flops = 2.0 * double(N) * double(GH) * double(I + P);
    parallel_for(units, flops < kMinParallelFlops ? units : 1, [&](int64_t c0, int64_t c1) {
      // The blocks that start in [c0, c1).
      const int64_t b0 = std::lower_bound(start.begin(), start.end() - 1, c0) - start.begin();
      const int64_t b1 = std::lower_bound(start.begin(), start.end() - 1, c1) - start.begin();
      if (b0 < b1) gemm_tn_packed_blocks(N, ops, 3, segs, ns, b0, b1);
    });
    for (int i = 0; i < ncopy; ++i) std::copy(db_ih + copy_sums[i][0], db_ih + copy_sums[i][1], db_hh + copy_sums[i][0]);
    return true;
  }
}

}  // namespace

int64_t inference_chunk_steps(const SeqConfig& c, int64_t T, int64_t B) {
  return std::max<int64_t>(1, std::min<int64_t>(T, kProjectionChunk / (B * c.gate_width())));
}

int64_t workspace_elems(const SeqConfig& cfg, int64_t N, bool state_dropout) {
  return layout_of(cfg, N, state_dropout).total;
}

int64_t backward_scratch_elems(const SeqConfig& c, int64_t N) {
  const int64_t GH = c.gate_width(), BH = c.B * c.H, P = c.state_size(), BP = c.B * P;
  const CellTraits t = traits_of(c);
  return (t.separate_dgh ? 2 : 1) * N * GH + 2 * BP + (t.cell_state ? 3 : 2) * BH + (c.P > 0 ? N * P + BH : 0);
}

template <typename S>
void sequence_forward(const PreparedLayer<S>& W, const StepPlan& plan, const ForwardBuffers<S>& buf) {
  SeqConfig c = W.config();  // the cell; the sizes come from the plan
  c.T = plan.T;
  c.B = plan.B;
  const int64_t T = plan.T, B = plan.B, H = c.H, I = c.I, GH = c.gate_width(), BH = B * H;
  const int64_t N = plan.rows();
  const bool train = buf.workspace != nullptr;
  const CellFamily<S> fam = family_of<S>(c);
  const bool cstate = fam.keeps.cell_state, gate_acts = fam.keeps.gate_acts;
  const bool proj = c.P > 0;
  const int64_t P = c.state_size(), BP = B * P;
  const WeightGemm<S>& w_ih = W.ih();
  const WeightGemm<S>& w_hr = W.hr();
  const int64_t A3 = 3 * H;  // one row of effective i, f, o
  const S* bias = W.input_bias();
  const S* b_hh = W.lbr_bias();
  const S* smask = buf.state_mask;

  // Training keeps every step in the workspace; inference keeps a projection chunk and alternates
  // between two state rows (or writes h straight into y).
  const int64_t chunk_steps = train ? T : inference_chunk_steps(c, T, B);
  int64_t chunk_rows = 0;
  if (!train)
    for (int64_t s0 = 0; s0 < T; s0 += chunk_steps)
      chunk_rows = std::max(chunk_rows, plan.offset(std::min(T, s0 + chunk_steps)) - plan.offset(s0));
  // inference: h ×2 [B, P], c ×2 [B, H], zeros [B, max(H, P)], m [B, H] (projection);
  // either: hd [B, P] (state dropout, inference)
  const int64_t zero_elems = std::max(BH, BP);
  const int64_t state_elems = train ? (proj ? BH : 0) : 2 * BP + (cstate ? 2 * BH : 0) + zero_elems + (proj ? BH : 0);
  const int64_t hh_elems = fam.keeps.hh_scratch ? B * GH : 0;
  const int64_t aux_elems = (fam.keeps.aux && !train) ? BH : 0;
  const int64_t acts_elems = (gate_acts && !train) ? 3 * B * A3 : 0;  // ping-pong + a zero block
  const int64_t hd_elems = (smask && !train) ? BP : 0;
  // Both from the scratch pool (recycled across calls: no page faults for small repeated calls).
  // The chunk is written before it is read; of the scratch, only the zero blocks are read before
  // they are written (zeroed below).
  Scratch<S> chunk_buf(chunk_rows * GH);
  Scratch<S> scratch(state_elems + hh_elems + aux_elems + acts_elems + hd_elems);
  S* chunk = chunk_buf.data();
  S* states = scratch.data();
  S* hh = states + state_elems;
  S* aux_row = hh + hh_elems;
  S* acts_rows = aux_row + aux_elems;  // inference FGR: [2, B, 3H] + zeros [B, 3H]
  S* hd_row = acts_rows + acts_elems;

  const WorkspaceLayout L = layout_of(c, N, smask != nullptr);
  S* ws = buf.workspace;
  S* hs = train ? ws + L.hs : nullptr;
  S* cs = train ? ws + L.cs : nullptr;
  S* aux = train ? ws + L.aux : nullptr;
  S* ms = train && proj ? ws + L.ms : nullptr;
  S* acts = train && gate_acts ? ws + L.acts : nullptr;
  S* hd = train && smask ? ws + L.hd : nullptr;
  const S* acts_prev = nullptr;
  if (gate_acts) {
    if (train) {
      std::fill(acts, acts + B * A3, S(0));
      acts_prev = acts;
    } else {
      acts_prev = buf.acts0 ? buf.acts0 : acts_rows + 2 * B * A3;
    }
  }
  S* h_rows = states;           // inference: h ping-pong [2, B, P]
  S* c_rows = states + 2 * BP;  // inference: c ping-pong [2, B, H]
  S* zeros = c_rows + (cstate ? 2 * BH : 0);
  S* m_row = train ? states : zeros + zero_elems;  // [B, H] (inference m; training uses ms)
  if (train) {
    if (state_elems) std::fill(states, states + state_elems, S(0));
  } else if (!buf.h0 || (cstate && !buf.c0)) {  // the zero state the first step reads
    std::fill(zeros, zeros + zero_elems, S(0));
  }
  if (hh_elems) std::fill(hh, hh + hh_elems, S(0));
  if (aux_elems) std::fill(aux_row, aux_row + aux_elems, S(0));
  if (acts_elems) std::fill(acts_rows, acts_rows + acts_elems, S(0));
  if (hd_elems) std::fill(hd_row, hd_row + hd_elems, S(0));

  const S* h_prev;
  const S* c_prev = nullptr;
  if (train) {
    if (buf.h0) std::memcpy(hs, buf.h0, sizeof(S) * BP); else std::fill(hs, hs + BP, S(0));
    h_prev = hs;
    if (cstate) {
      if (buf.c0) std::memcpy(cs, buf.c0, sizeof(S) * BH); else std::fill(cs, cs + BH, S(0));
      c_prev = cs;
    }
  } else {
    h_prev = buf.h0 ? buf.h0 : zeros;
    if (cstate) c_prev = buf.c0 ? buf.c0 : zeros;
  }

  // Where step s writes: its gate rows (in the chunk that starts at packed row r0), h, c and the
  // effective i, f, o (LSTM full gate recurrence).
  struct Outputs {
    S* g;
    S* h;
    S* c;
    S* acts;
  };
  auto outputs_of = [&](int64_t s, S* gbase, int64_t r0) {
    const int64_t off = plan.offset(s);
    Outputs o{gbase + (off - r0) * GH, nullptr, nullptr, nullptr};  // gates [B_s, G·H]
    if (train) {
      o.h = hs + (B + off) * P;
      if (cstate) o.c = cs + (B + off) * H;
    } else {
      const int64_t parity = s & 1;
      o.h = buf.y ? buf.y + off * P : h_rows + parity * BP;
      if (cstate) o.c = c_rows + parity * BH;
    }
    if (gate_acts) o.acts = train ? acts + (B + off) * A3 : acts_rows + (s & 1) * B * A3;
    return o;
  };
  // The steps run as one pool job per chunk (parallel_stages: threads meet at one counter per step
  // instead of a pool hand-off) when a step is one pass over the units, has no projection (which
  // needs all of m) and no state mask (applied to all of h_prev between steps), and is worth
  // splitting; each thread then keeps the same slice of units, and so of W_hh, in its cache.
  const UnitSlices slices = staged_slices(fam.forward_units && !proj && !smask, H, B, GH, P);
  const bool staged = slices.count > 0;
  // The step's arguments, given where it writes (o, m_out: the cell's output) and what it reads.
  auto step_args = [&](const Outputs& o, int64_t off, S* m_out, const S* hp, const S* cp) {
    StepArgs<S> a;
    a.H = H; a.GH = GH; a.gates = o.g; a.h = m_out; a.c = o.c; a.h_prev = hp; a.c_prev = cp;
    a.aux = fam.keeps.aux ? (train ? aux + off * H : aux_row) : nullptr;
    a.hh = hh; a.b_hh = b_hh;
    a.opt = &c.opt; a.peep = W.peep(); a.acts = o.acts;
    return a;
  };
  struct StagedStep {
    StepArgs<S> a;
    int64_t Bs, off, next;
    const S* acts_prev;
  };
  std::vector<StagedStep> steps;
  if (staged) steps.reserve(size_t(std::min(T, chunk_steps)));

  for (int64_t s0 = 0; s0 < T; s0 += chunk_steps) {
    const int64_t n = std::min(chunk_steps, T - s0);
    const int64_t r0 = plan.offset(s0), r1 = plan.offset(s0 + n);
    S* gbase = train ? ws + L.gates + r0 * GH : chunk;  // row 0 is packed row r0
    project_inputs(w_ih, r1 - r0, I, buf.x + r0 * I, bias, gbase);

    if (staged) {  // one pool job for the chunk's steps (parallel_stages), no projection, no state mask
      steps.clear();
      for (int64_t s = s0; s < s0 + n; ++s) {
        const Outputs o = outputs_of(s, gbase, r0);
        StagedStep st;
        st.Bs = plan.size(s);
        st.off = plan.offset(s);
        st.next = s + 1 < T ? plan.size(s + 1) : 0;
        st.acts_prev = acts_prev;
        st.a = step_args(o, st.off, o.h, h_prev, c_prev);
        steps.push_back(st);
        h_prev = o.h;
        c_prev = o.c;
        acts_prev = o.acts;
      }
      // The final states of the sequences whose last step t was (rows [next, B_t)), units [u0, u1).
      // Written one step later, by the item of step t + 1 or after the job: h_n is often h0 itself
      // (the state carried in place from chunk to chunk, grid.cc), which every item of the chunk's
      // first step reads whole, and step t + 1 is the first whose items all start after those reads.
      auto final_states = [&](const StagedStep& st, int64_t u0, int64_t u1) {
        const size_t units = sizeof(S) * size_t(u1 - u0);
        for (int64_t r = st.next; r < st.Bs; ++r) {
          if (buf.h_n) std::memcpy(buf.h_n + r * P + u0, st.a.h + r * P + u0, units);
          if (cstate && buf.c_n) std::memcpy(buf.c_n + r * H + u0, st.a.c + r * H + u0, units);
        }
      };
      parallel_stages(n, slices.count, [&](int64_t t, int64_t j) {
        const StagedStep& st = steps[size_t(t)];
        const int64_t u0 = slices.begin(j), u1 = slices.end(j);
        fam.forward_units(fam, ForwardStep<S>{W, st.a, st.Bs, H, P, 0, st.acts_prev, hh}, u0, u1);
        if (train && buf.y)
          for (int64_t r = 0; r < st.Bs; ++r)
            std::memcpy(buf.y + (st.off + r) * P + u0, st.a.h + r * P + u0, sizeof(S) * size_t(u1 - u0));
        if (t > 0) final_states(steps[size_t(t - 1)], u0, u1);
      });
      final_states(steps.back(), 0, H);
      continue;
    }

    for (int64_t s = s0; s < s0 + n; ++s) {
      const int64_t Bs = plan.size(s), off = plan.offset(s);
      const double step_flops = 2.0 * Bs * GH * P;
      const Outputs o = outputs_of(s, gbase, r0);
      S* h_out = o.h;
      S* c_out = o.c;
      if (smask) {  // the recurrence reads h_prev ⊙ mask (TF1 state_keep_prob, Keras recurrent_dropout)
        S* dst = train ? hd + off * P : hd_row;
        const S* m = smask + off * P;
        for (int64_t e = 0; e < Bs * P; ++e) dst[e] = h_prev[e] * m[e];
        h_prev = dst;
      }
      S* m_out = proj ? (train ? ms + off * H : m_row) : h_out;  // the cell's output before any projection
      S* acts_out = o.acts;
      const StepArgs<S> a = step_args(o, off, m_out, h_prev, c_prev);
      fam.forward(fam, ForwardStep<S>{W, a, Bs, H, P, step_flops, acts_prev, hh});
      if (proj) {
        gemm_by_columns(w_hr, Bs, H, m_out, H, false, h_out, P);
        if (c.proj_clip > 0) clamp_values(h_out, Bs * P, c.proj_clip);
      }
      if (train && buf.y) std::memcpy(buf.y + off * P, h_out, sizeof(S) * Bs * P);
      // Sequences whose last step this was: rows [B_{s+1}, B_s) hold their final states.
      const int64_t next = s + 1 < T ? plan.size(s + 1) : 0;
      if (next < Bs) {
        if (buf.h_n) std::memcpy(buf.h_n + next * P, h_out + next * P, sizeof(S) * (Bs - next) * P);
        if (cstate && buf.c_n) std::memcpy(buf.c_n + next * H, c_out + next * H, sizeof(S) * (Bs - next) * H);
      }
      h_prev = h_out;
      c_prev = c_out;
      acts_prev = acts_out;
    }
  }
  if (!train && gate_acts && buf.acts_n && T > 0)
    std::memcpy(buf.acts_n, acts_prev, sizeof(S) * size_t(plan.size(T - 1) * A3));
}

template <typename S>
void sequence_backward(const PreparedLayer<S>& W, const StepPlan& plan, const BackwardBuffers<S>& buf) {
  SeqConfig c = W.config();  // the cell; the sizes come from the plan
  c.T = plan.T;
  c.B = plan.B;
  const int64_t T = plan.T, B = plan.B, H = c.H, I = c.I, GH = c.gate_width(), BH = B * H, N = plan.rows();
  const bool proj = c.P > 0;
  const int64_t P = c.state_size(), BP = B * P;
  const CellFamily<S> fam = family_of<S>(c);
  const bool cstate = fam.keeps.cell_state, gate_acts = fam.keeps.gate_acts;
  const S* smask = buf.state_mask;
  const WorkspaceLayout L = layout_of(c, N, smask != nullptr);
  const S* ws = buf.workspace;
  const S* hs = ws + L.hs;
  const S* cs = ws + L.cs;
  const S* aux = ws + L.aux;
  const S* hd = smask ? ws + L.hd : nullptr;
  const typename PreparedLayer<S>::Backward& Wb = W.backward();
  const WeightGemm<S>& w_hr_t = Wb.hr_t;  // dh · W_hr
  // FGR: each step's d[i, f, o]_{t−1} (the family writes dacts_out), ping-pong.
  const int64_t A3 = 3 * H, BA = B * A3;
  std::vector<S> dacts_rows(gate_acts ? 2 * BA : 0, S(0));
  S* dacts_in = gate_acts ? dacts_rows.data() : nullptr;
  S* dacts_out = gate_acts ? dacts_rows.data() + BA : nullptr;
  const int64_t gate_col[3] = {0, H, 3 * H};  // columns of i, f, o in [B, 4H]

  // dgx [N, G·H]: gradients of the x-side pre-activations; dgh: of the h-side ones (differs for
  // GRU-lbr only). dh, dc: carried gradients; dh_next: the one being built for the previous step.
  // With a projection, dhs [N, P] keeps each step's dh_t for dW_hr and dm [B, H] = dh_t · W_hr feeds the cell.
  // From the scratch pool, not zeroed where every element is written before it is read: dgx (and
  // dgh) get all G·H columns of every packed row from the element-wise kernels; the carried
  // gradients and the rest are zeroed. (A zero-filled vector here cost page faults and a memset of
  // N·G·H values on one thread, ~4% of an LSTM(128 → 256) B 32 training step on Zen 5.)
  const int64_t scratch_elems = backward_scratch_elems(c, N);
  Scratch<S> scratch(scratch_elems);
  S* dgx = scratch.data();
  S* dgh = fam.keeps.separate_dgh ? dgx + N * GH : dgx;
  S* dh = dgx + (fam.keeps.separate_dgh ? 2 : 1) * N * GH;
  S* dh_next = dh + BP;
  S* drh = dh_next + BP;
  S* dy_zeros = drh + BH;  // the kernels always read dy
  S* dc = cstate ? dy_zeros + BH : nullptr;
  S* dhs = proj ? dy_zeros + (cstate ? 2 : 1) * BH : nullptr;
  S* dm = proj ? dhs + N * P : nullptr;
  std::fill(dh, scratch.data() + scratch_elems, S(0));
  // A sequence's dh_n (dc_n) waits in its row of dh (dc) until the backward pass reaches its last step.
  if (buf.dh_n) std::memcpy(dh, buf.dh_n, sizeof(S) * BP);
  if (cstate && buf.dc_n) std::memcpy(dc, buf.dc_n, sizeof(S) * BH);

  // The steps as one staged pool job (parallel_stages, as in sequence_forward), when a step is one
  // element-wise pass and then dh_prev = dGates · R, with no projection and no state mask. Stage k
  // on a slice of units: step T − k's dh_prev for those units (it needs every unit's gate gradients
  // of that step: the previous stage), then step T − 1 − k's element-wise pass on them (it needs
  // only those units of dh and dc: this item's own first half). So the threads meet once a step.
  // Step s's arguments, reading the carried dh_in and writing dh_prev into dh_out.
  auto step_args = [&](int64_t s, S* dh_in, S* dh_out) {
    const int64_t off = plan.offset(s);
    StepArgs<S> a;
    a.H = H; a.GH = GH;
    a.gates = const_cast<S*>(ws + L.gates + off * GH);
    a.h_prev = smask ? hd + off * P : (s == 0 ? hs : hs + (B + plan.offset(s - 1)) * P);
    a.h_cur = hs + (B + off) * P;
    a.dh = dh_in; a.dy = buf.dy ? buf.dy + off * P : dy_zeros;
    a.dgx = dgx + off * GH; a.dgh = dgh + off * GH;
    a.dh_prev = dh_out; a.dc = dc; a.drh = drh;
    a.opt = &c.opt; a.peep = W.peep(); a.dacts = dacts_in;
    if (cstate) { a.c_prev = s == 0 ? cs : cs + (B + plan.offset(s - 1)) * H; a.c_cur = cs + (B + off) * H; }
    if (fam.keeps.aux) a.aux = const_cast<S*>(aux + off * H);
    return a;
  };
  const UnitSlices slices = staged_slices(fam.backward_cell_units && fam.backward_dh_units && !proj && !smask && T > 0, H, B, GH, P);
  const bool staged = slices.count > 0;
  if (staged) {
    S* const dh_buf[2] = {dh, dh_next};
    auto dh_in = [&](int64_t s) { return dh_buf[(T - 1 - s) & 1]; };   // what step s reads
    auto dh_out = [&](int64_t s) { return dh_buf[(T - s) & 1]; };      // what step s writes (step s − 1 reads)
    std::vector<StepArgs<S>> args(static_cast<size_t>(T));
    for (int64_t s = 0; s < T; ++s) args[size_t(s)] = step_args(s, dh_in(s), dh_out(s));
    parallel_stages(T + 1, slices.count, [&](int64_t k, int64_t j) {
      const int64_t u0 = slices.begin(j), u1 = slices.end(j);
      if (k > 0) {
        const int64_t s = T - k, Bs = plan.size(s);
        const StepArgs<S>& a = args[size_t(s)];
        fam.backward_dh_units(fam, BackwardStep<S>{W, a, Bs, H, P, 0, dh_out(s), drh, nullptr}, u0, u1);
        // Rows [B_s, B) have not reached their last step yet: their dh_n stays with them.
        for (int64_t r = Bs; r < B; ++r)
          std::memcpy(dh_out(s) + r * P + u0, dh_in(s) + r * P + u0, sizeof(S) * size_t(u1 - u0));
      }
      if (k < T) {
        const int64_t s = T - 1 - k;
        fam.backward_cell_units(fam, BackwardStep<S>{W, args[size_t(s)], plan.size(s), H, P, 0, dh_out(s), drh, nullptr}, u0, u1);
      }
    });
    dh = dh_out(0);
  }

  for (int64_t s = staged ? -1 : T - 1; s >= 0; --s) {
    const int64_t Bs = plan.size(s), off = plan.offset(s);
    const double cell_flops = 30.0 * Bs * H;  // rough cost of the element-wise work, for the threading choice
    StepArgs<S> a = step_args(s, dh, dh_next);
    if (proj) {
      // dh_t = carried + dy_t (zero where proj_clip clamped h_t); the cell sees dm = dh_t · W_hr.
      S* dht = dhs + off * P;
      for (int64_t e = 0; e < Bs * P; ++e) {
        S v = dh[e] + (buf.dy ? buf.dy[off * P + e] : S(0));
        const S lim = S(c.proj_clip), h = a.h_cur[e];
        dht[e] = (c.proj_clip > 0 && (h <= -lim || h >= lim)) ? S(0) : v;
      }
      gemm_by_columns(w_hr_t, Bs, P, dht, P, false, dm, H);
      a.dh = dm; a.dy = dy_zeros;
    }
    fam.backward(fam, BackwardStep<S>{W, a, Bs, H, P, cell_flops, dh_next, drh, dacts_out});
    if (gate_acts) std::swap(dacts_in, dacts_out);
    if (smask) {  // through h_prev ⊙ mask
      const S* m = smask + off * P;
      for (int64_t e = 0; e < Bs * P; ++e) dh_next[e] *= m[e];
    }
    // Rows [B_s, B) have not reached their last step yet: their dh_n stays with them.
    if (Bs < B) std::memcpy(dh_next + Bs * P, dh + Bs * P, sizeof(S) * (B - Bs) * P);
    std::swap(dh, dh_next);
  }
  if (buf.dh0) std::memcpy(buf.dh0, dh, sizeof(S) * BP);
  if (cstate && buf.dc0) std::memcpy(buf.dc0, dc, sizeof(S) * BH);

  // Weight and input gradients over all N packed rows at once.
  std::vector<S> gathered;
  const S* h_prev_all = smask ? hd : aligned_previous(plan, hs, P, gathered);  // [N, P] aligned with dgates
  // The bias gradients are the gate gradients' column sums: read off them by the weight-gradient
  // GEMMs where those run on rnnkit's tiles, else summed below. With one set of gate gradients
  // (dgh = dgx: every cell but GRU-lbr) both biases get the same sums.
  S* const db_ih = buf.grad[kBiasIh];
  S* const db_hh = buf.grad[kBiasHh];
  S* const dw_hh = buf.grad[kWeightHh];
  const bool fused = weight_gradients_fused(fam, N, GH, I, P, dgx, dgh, buf.x, h_prev_all, aux, buf.grad[kWeightIh],
                                            dw_hh, db_ih, db_hh);
  if (!fused) {  // (BLAS: float64, or the generic kernels; the bias gradients are summed below)
    gemm_tn_by_rows(GH, I, N, dgx, GH, buf.x, buf.grad[kWeightIh], I);
    for (int i = 0; i < fam.hh_pieces; ++i) {
      const auto& pc = fam.hh[i];
      gemm_tn_by_rows(pc.g1 - pc.g0, P, N, dgh + pc.g0, GH, pc.aux ? aux : h_prev_all, dw_hh + pc.g0 * P, P);
    }
  }
  if (proj) gemm_tn_by_rows(P, H, N, dhs, P, ws + L.ms, buf.grad[kWeightHr], H);
  if (gate_acts) {
    std::vector<S> gathered_acts;
    const S* acts_prev_all = aligned_previous(plan, ws + L.acts, A3, gathered_acts);  // [N, 3H]
    for (int j = 0; j < 3; ++j)
      gemm_tn_by_rows(H, A3, N, dgx + gate_col[j], GH, acts_prev_all, buf.grad[kWeightGr] + j * H * A3, A3);
  }
  if (buf.dx) gemm_by_rows(Wb.ih_t, N, GH, dgx, GH, buf.dx_accumulate, buf.dx, I);
  // out[j] = Σ_r m[r, j], each column summed over the rows in order. In blocks of 32 columns held
  // in a local array the compiler keeps in registers: summing into out[] directly reloaded and
  // stored it for every row (out may alias m as far as the compiler knows), 5.4 % of a GRU(128 →
  // 256) B 32 training step on Zen 5 (perf). The same additions in the same order: the same bits.
  auto column_sums = [&](const S* m, S* out) {
    constexpr int64_t kBlock = 32;
    for_ranges(GH, 64, double(N) * GH * 8, [&](int64_t j0, int64_t j1) {
      int64_t b0 = j0;
      for (; b0 + kBlock <= j1; b0 += kBlock) {
        S acc[kBlock] = {};
        for (int64_t r = 0; r < N; ++r) {
          const S* row = m + r * GH + b0;
          for (int64_t j = 0; j < kBlock; ++j) acc[j] += row[j];
        }
        std::copy(acc, acc + kBlock, out + b0);
      }
      std::fill(out + b0, out + j1, S(0));
      for (int64_t r = 0; r < N; ++r) {
        const S* row = m + r * GH;
        for (int64_t j = b0; j < j1; ++j) out[j] += row[j];
      }
    });
  };
  if (!fused) {
    if (db_ih) column_sums(dgx, db_ih);
    if (db_hh && dgh == dgx && db_ih) std::copy(db_ih, db_ih + GH, db_hh);  // (one set of gate gradients)
    else if (db_hh) column_sums(dgh, db_hh);
  }
  if (S* dpeep = buf.grad[kPeephole]) {
    // dp_i = Σ dai ⊙ c_prev, dp_f = Σ daf ⊙ c_prev, dp_o = Σ dao ⊙ c_t over all packed rows.
    std::vector<S> gathered_c;
    const S* c_prev_all = aligned_previous(plan, cs, H, gathered_c);
    const S* c_cur_all = cs + BH;
    for_ranges(H, 64, double(N) * H * 6, [&](int64_t k0, int64_t k1) {
      std::fill(dpeep + k0, dpeep + k1, S(0));
      std::fill(dpeep + H + k0, dpeep + H + k1, S(0));
      std::fill(dpeep + 2 * H + k0, dpeep + 2 * H + k1, S(0));
      for (int64_t r = 0; r < N; ++r) {
        const S* dg = dgx + r * GH;
        const S* cp = c_prev_all + r * H;
        const S* cc = c_cur_all + r * H;
        for (int64_t k = k0; k < k1; ++k) {
          dpeep[k] += dg[k] * cp[k];
          dpeep[H + k] += dg[H + k] * cp[k];
          dpeep[2 * H + k] += dg[3 * H + k] * cc[k];
        }
      }
    });
  }
}

template void sequence_forward<float>(const PreparedLayer<float>&, const StepPlan&, const ForwardBuffers<float>&);
template void sequence_forward<double>(const PreparedLayer<double>&, const StepPlan&, const ForwardBuffers<double>&);
template void sequence_backward<float>(const PreparedLayer<float>&, const StepPlan&, const BackwardBuffers<float>&);
template void sequence_backward<double>(const PreparedLayer<double>&, const StepPlan&, const BackwardBuffers<double>&);

}  // namespace rnnkit
