#include "sequence.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "../cells/step_kernels.h"
#include "blas.h"
#include "thread_pool.h"
#include "weight_gemm.h"

namespace rnnkit {

namespace {

// Hidden units per work item when a step is split across the pool (one packed-weight panel).
constexpr int64_t kUnitBlock = PackedMatrix::kPanelWidth;
// A step (or GEMM) with fewer flops than this runs on the calling thread alone.
constexpr int64_t kMinParallelFlops = 1 << 18;
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

// C[B, g·H + u0 .. g·H + u1) (+)= A[B, K] · W[g·H + u0 .. g·H + u1, :]ᵀ for the gates g in [g0, g1).
template <typename S>
void gate_slices_gemm(const WeightGemm<S>& W, int64_t B, const S* A, int64_t lda, int64_t H, int g0, int g1,
                      int64_t u0, int64_t u1, bool accumulate, S* C, int64_t ldc) {
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
template <typename S>
void gemm_tn_by_rows(int64_t M, int64_t N, int64_t K, const S* A, int64_t lda, const S* B, S* C, int64_t ldc) {
  constexpr int64_t kRowBlock = 32;
  const int64_t blocks = (M + kRowBlock - 1) / kRowBlock;
  for_ranges(blocks, 1, 2.0 * M * N * K, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * kRowBlock, r1 = std::min(M, r0 + kRowBlock);
      gemm(true, false, r1 - r0, N, K, S(1), A + r0, lda, B, N, S(0), C + r0 * ldc, ldc);
    }
  });
}

// out[M, N] = x[M, K] · W_ihᵀ (+ bias per row): rows split across the pool, and within a thread in
// blocks small enough that the bias is added while the block is still in cache.
template <typename S>
void project_inputs(const WeightGemm<S>& W, int64_t M, int64_t K, const S* x, const S* bias, S* out) {
  constexpr int64_t kRowBlock = 64;
  const int64_t N = W.n();
  for_ranges(M, 32, 2.0 * M * N * K, [&](int64_t r0, int64_t r1) {
    // Near-equal blocks of 64–127 rows: never a short tail block, whose tiny tiles would sum in another
    // order and make inference (chunked) differ from training (one projection) in the last bit.
    const int64_t blocks = std::max<int64_t>(1, (r1 - r0) / kRowBlock);
    for (int64_t q = 0; q < blocks; ++q) {
      const int64_t b0 = r0 + (r1 - r0) * q / blocks, b1 = r0 + (r1 - r0) * (q + 1) / blocks;
      W.run(b1 - b0, x + b0 * K, K, 0, N, false, out + b0 * N, N);
      if (!bias) continue;
      for (int64_t r = b0; r < b1; ++r) {
        S* row = out + r * N;
        for (int64_t j = 0; j < N; ++j) row[j] += bias[j];
      }
    }
  });
}

// Row offsets into hs/cs for time t: the state the step reads and the one it writes.
inline int64_t prev_row(const SeqConfig& c, int64_t t) { return c.reverse ? t + 1 : t; }
inline int64_t out_row(const SeqConfig& c, int64_t t) { return c.reverse ? t : t + 1; }

struct WorkspaceLayout {
  int64_t gates, hs, cs, aux, ms, acts, total;
};
WorkspaceLayout layout_of(const SeqConfig& c) {
  const int64_t TB = c.T * c.B, BH = c.B * c.H, BP = c.B * c.state_size();
  WorkspaceLayout w{};
  w.gates = 0;
  w.hs = w.gates + TB * c.gate_width();
  w.cs = w.hs + (c.T + 1) * BP;
  w.aux = w.cs + (c.cell == CellKind::kLstm ? (c.T + 1) * BH : 0);
  w.ms = w.aux + (c.cell == CellKind::kGru ? TB * c.H : 0);
  w.acts = w.ms + (c.P > 0 ? TB * c.H : 0);
  w.total = w.acts + (c.opt.full_gate_recurrence ? (c.T + 1) * c.B * 3 * c.H : 0);
  return w;
}

// Clamps [n] values to [−limit, limit].
template <typename S>
void clamp_values(S* v, int64_t n, double limit) {
  const S l = S(limit);
  for (int64_t i = 0; i < n; ++i) v[i] = v[i] < -l ? -l : (v[i] > l ? l : v[i]);
}

}  // namespace

int64_t workspace_elems(const SeqConfig& cfg) { return layout_of(cfg).total; }

int64_t backward_scratch_elems(const SeqConfig& c) {
  const int64_t TB = c.T * c.B, GH = c.gate_width(), BH = c.B * c.H, P = c.state_size(), BP = c.B * P;
  const bool lstm = c.cell == CellKind::kLstm, lbr = c.cell == CellKind::kGru && c.linear_before_reset;
  return (lbr ? 2 : 1) * TB * GH + 2 * BP + (lstm ? 3 : 2) * BH + (c.P > 0 ? TB * P + BH : 0);
}

template <typename S>
void sequence_forward(const SeqConfig& c, const ForwardBuffers<S>& buf) {
  const int64_t T = c.T, B = c.B, H = c.H, I = c.I, G = c.gates(), GH = c.gate_width(), BH = B * H;
  const bool train = buf.workspace != nullptr;
  const bool lstm = c.cell == CellKind::kLstm, gru = c.cell == CellKind::kGru;
  const bool lbr = gru && c.linear_before_reset;
  const StepKernels<S>& K = step_kernels<S>();
  const bool general = c.general();
  const bool proj = c.P > 0;
  const int64_t P = c.state_size(), BP = B * P;
  const double step_flops = 2.0 * B * GH * P;
  const WeightGemm<S> w_ih = WeightGemm<S>::rows(buf.w_ih, GH, I);  // x · W_ihᵀ
  const WeightGemm<S> w_hh = WeightGemm<S>::rows(buf.w_hh, GH, P);  // h · W_hhᵀ
  const WeightGemm<S> w_hr = proj ? WeightGemm<S>::rows(buf.w_hr, P, H) : WeightGemm<S>::none();  // m · W_hrᵀ
  const bool fgr = lstm && c.opt.full_gate_recurrence;
  const int64_t BA = B * 3 * H;  // one step's effective i, f, o
  const WeightGemm<S> w_gr = fgr ? WeightGemm<S>::rows(buf.w_gr, 3 * H, 3 * H) : WeightGemm<S>::none();

  // The bias added to the input projection: b_ih (+ b_hh unless GRU-lbr keeps b_hh inside r ⊙ (…)).
  std::vector<S> bias;
  if (buf.b_ih || (buf.b_hh && !lbr)) {
    bias.assign(GH, S(0));
    for (int64_t j = 0; j < GH; ++j) {
      if (buf.b_ih) bias[j] += buf.b_ih[j];
      if (buf.b_hh && !lbr) bias[j] += buf.b_hh[j];
    }
  }

  std::vector<S> b_hh_zeros;  // the kernels always read b_hh (GRU-lbr)
  const S* b_hh = buf.b_hh;
  if (lbr && !b_hh) {
    b_hh_zeros.assign(GH, S(0));
    b_hh = b_hh_zeros.data();
  }

  // Training keeps every step in the workspace (time order); inference keeps a projection chunk
  // and alternates between two state rows (or writes h straight into y).
  const int64_t chunk_steps = train ? T : std::max<int64_t>(1, std::min<int64_t>(T, kProjectionChunk / (B * GH)));
  const int64_t chunk_elems = train ? 0 : chunk_steps * B * GH;
  // h ×2 [B, P], c ×2 [B, H], zeros [B, max(H, P)], m [B, H] (projection)
  const int64_t zero_elems = std::max(BH, BP);
  const int64_t state_elems = train ? (proj ? BH : 0) : 2 * BP + (lstm ? 2 * BH : 0) + zero_elems + (proj ? BH : 0);
  const int64_t hh_elems = lbr ? B * GH : 0;
  const int64_t aux_elems = (gru && !train) ? BH : 0;
  const int64_t acts_elems = (fgr && !train) ? 3 * BA : 0;  // ping-pong + a zero row
  std::unique_ptr<S[]> chunk_buf(chunk_elems > 0 ? new S[size_t(chunk_elems)] : nullptr);  // fully written before read
  std::vector<S> scratch(state_elems + hh_elems + aux_elems + acts_elems, S(0));
  S* chunk = chunk_buf.get();
  S* states = scratch.data();
  S* hh = states + state_elems;
  S* aux_row = hh + hh_elems;
  S* acts_rows = aux_row + aux_elems;  // inference FGR: [2, B, 3H] + zeros [B, 3H]

  const WorkspaceLayout L = layout_of(c);
  S* hs = train ? buf.workspace + L.hs : nullptr;
  S* cs = train ? buf.workspace + L.cs : nullptr;
  S* aux = train ? buf.workspace + L.aux : nullptr;
  S* ms = train && proj ? buf.workspace + L.ms : nullptr;
  S* acts = train && fgr ? buf.workspace + L.acts : nullptr;
  const S* acts_prev = nullptr;
  if (fgr) {
    if (train) {
      S* a0 = acts + (c.reverse ? T : 0) * BA;
      std::fill(a0, a0 + BA, S(0));
      acts_prev = a0;
    } else {
      acts_prev = acts_rows + 2 * BA;
    }
  }
  S* h_rows = states;                 // inference: h ping-pong [2, B, P]
  S* c_rows = states + 2 * BP;        // inference: c ping-pong [2, B, H]
  S* zeros = c_rows + (lstm ? 2 * BH : 0);
  S* m_row = train ? states : zeros + zero_elems;  // [B, H] (inference m; training uses ms)

  const S* h_prev;
  const S* c_prev = nullptr;
  if (train) {
    S* h_init = hs + (c.reverse ? T : 0) * BP;
    if (buf.h0) std::memcpy(h_init, buf.h0, sizeof(S) * BP); else std::fill(h_init, h_init + BP, S(0));
    h_prev = h_init;
    if (lstm) {
      S* c_init = cs + (c.reverse ? T : 0) * BH;
      if (buf.c0) std::memcpy(c_init, buf.c0, sizeof(S) * BH); else std::fill(c_init, c_init + BH, S(0));
      c_prev = c_init;
    }
  } else {
    h_prev = buf.h0 ? buf.h0 : zeros;
    if (lstm) c_prev = buf.c0 ? buf.c0 : zeros;
  }

  for (int64_t s0 = 0; s0 < T; s0 += chunk_steps) {
    const int64_t n = std::min(chunk_steps, T - s0);
    const int64_t t_lo = c.reverse ? T - s0 - n : s0;      // this chunk covers times [t_lo, t_lo + n)
    S* gbase = train ? buf.workspace + L.gates + t_lo * B * GH : chunk;  // row 0 is time t_lo
    project_inputs(w_ih, n * B, I, buf.x + t_lo * B * I, bias.empty() ? nullptr : bias.data(), gbase);

    for (int64_t j = 0; j < n; ++j) {
      const int64_t t = c.reverse ? t_lo + n - 1 - j : t_lo + j;
      S* g = gbase + (t - t_lo) * B * GH;  // [B, G·H]
      S* h_out;
      S* c_out = nullptr;
      if (train) {
        h_out = hs + out_row(c, t) * BP;
        if (lstm) c_out = cs + out_row(c, t) * BH;
      } else {
        const int64_t parity = (s0 + j) & 1;
        h_out = buf.y ? buf.y + t * BP : h_rows + parity * BP;
        if (lstm) c_out = c_rows + parity * BH;
      }
      S* m_out = proj ? (train ? ms + t * BH : m_row) : h_out;  // the cell's output before any projection
      S* acts_out = fgr ? (train ? acts + out_row(c, t) * BA : acts_rows + ((s0 + j) & 1) * BA) : nullptr;
      StepArgs<S> a;
      a.H = H; a.GH = GH; a.gates = g; a.h = m_out; a.c = c_out; a.h_prev = h_prev; a.c_prev = c_prev;
      a.aux = gru ? (train ? aux + t * BH : aux_row) : nullptr;
      a.hh = hh; a.b_hh = lbr ? b_hh : nullptr;
      a.opt = &c.opt; a.peep = buf.peep; a.acts = acts_out;

      // Each thread computes the recurrent GEMM for its hidden units (all gates) and then their gate math.
      if (!gru) {
        StepKernel<S> kernel = general ? (lstm ? K.lstm_general_forward : K.rnn_general_forward)
                               : lstm ? K.lstm_forward
                               : c.cell == CellKind::kRnnRelu ? K.rnn_relu_forward : K.rnn_tanh_forward;
        for_unit_ranges(H, step_flops, [&](int64_t u0, int64_t u1) {
          gate_slices_gemm(w_hh, B, h_prev, P, H, 0, G, u0, u1, true, g, GH);
          if (fgr) {  // gates i, f (columns 0..2H) and o (3H..4H) += [i, f, o]_{t−1} · W_grᵀ
            w_gr.run(B, acts_prev, 3 * H, u0, u1, true, g, GH);
            w_gr.run(B, acts_prev, 3 * H, H + u0, H + u1, true, g, GH);
            w_gr.run(B, acts_prev, 3 * H, 2 * H + u0, 2 * H + u1, true, g + H, GH);
          }
          kernel(a, 0, B, u0, u1);
        });
      } else if (lbr) {
        for_unit_ranges(H, step_flops, [&](int64_t u0, int64_t u1) {
          gate_slices_gemm(w_hh, B, h_prev, H, H, 0, 3, u0, u1, false, hh, GH);
          (general ? K.gru_lbr_general_forward : K.gru_lbr_forward)(a, 0, B, u0, u1);
        });
      } else {
        for_unit_ranges(H, step_flops * 2 / 3, [&](int64_t u0, int64_t u1) {
          gate_slices_gemm(w_hh, B, h_prev, H, H, 0, 2, u0, u1, true, g, GH);
          (general ? K.gru_rb_general_rz_forward : K.gru_rb_rz_forward)(a, 0, B, u0, u1);
        });
        for_unit_ranges(H, step_flops / 3, [&](int64_t u0, int64_t u1) {
          gate_slices_gemm(w_hh, B, a.aux, H, H, 2, 3, u0, u1, true, g, GH);
          (general ? K.gru_rb_general_n_forward : K.gru_rb_n_forward)(a, 0, B, u0, u1);
        });
      }
      if (proj) {
        gemm_by_columns(w_hr, B, H, m_out, H, false, h_out, P);
        if (c.proj_clip > 0) clamp_values(h_out, BP, c.proj_clip);
      }
      if (train && buf.y) std::memcpy(buf.y + t * BP, h_out, sizeof(S) * BP);
      h_prev = h_out;
      c_prev = c_out;
      acts_prev = acts_out;
    }
  }
  if (buf.h_n) std::memcpy(buf.h_n, h_prev, sizeof(S) * BP);
  if (lstm && buf.c_n) std::memcpy(buf.c_n, c_prev, sizeof(S) * BH);
}

template <typename S>
void sequence_backward(const SeqConfig& c, const BackwardBuffers<S>& buf) {
  const int64_t T = c.T, B = c.B, H = c.H, I = c.I, GH = c.gate_width(), BH = B * H, TB = T * B;
  const bool proj = c.P > 0;
  const int64_t P = c.state_size(), BP = B * P;
  const bool lstm = c.cell == CellKind::kLstm, gru = c.cell == CellKind::kGru;
  const bool lbr = gru && c.linear_before_reset;
  const StepKernels<S>& K = step_kernels<S>();
  const bool general = c.general();
  const WorkspaceLayout L = layout_of(c);
  const S* hs = buf.workspace + L.hs;
  const S* cs = buf.workspace + L.cs;
  const S* aux = buf.workspace + L.aux;
  const double cell_flops = 30.0 * BH;  // rough cost of the element-wise work, for the threading choice
  // dh_prev = dGates · W_hh (per step); for GRU reset-before, split into the r,z rows and the n rows.
  const bool rb = gru && !lbr;
  const WeightGemm<S> w_hh_t = WeightGemm<S>::cols(buf.w_hh, rb ? 2 * H : GH, P);
  const WeightGemm<S> w_hr_t = proj ? WeightGemm<S>::cols(buf.w_hr, P, H) : WeightGemm<S>::none();  // dh · W_hr
  // FGR: d[i, f, o]_{t−1} = Σ_j dgates_j · W_gr[rows of gate j] for j in i, f, o
  const bool fgr = lstm && c.opt.full_gate_recurrence;
  const int64_t BA = B * 3 * H;
  const WeightGemm<S> w_gr_t[3] = {
      fgr ? WeightGemm<S>::cols(buf.w_gr, H, 3 * H) : WeightGemm<S>::none(),
      fgr ? WeightGemm<S>::cols(buf.w_gr + H * 3 * H, H, 3 * H) : WeightGemm<S>::none(),
      fgr ? WeightGemm<S>::cols(buf.w_gr + 2 * H * 3 * H, H, 3 * H) : WeightGemm<S>::none()};
  std::vector<S> dacts_rows(fgr ? 2 * BA : 0, S(0));
  S* dacts_in = fgr ? dacts_rows.data() : nullptr;
  S* dacts_out = fgr ? dacts_rows.data() + BA : nullptr;
  const int64_t gate_col[3] = {0, H, 3 * H};  // columns of i, f, o in [B, 4H]
  // R_n, rows [2H, 3H) of W_hh: only a GRU that resets before the product has it apart.
  const WeightGemm<S> w_hn_t = rb ? WeightGemm<S>::cols(buf.w_hh + 2 * H * H, H, H) : WeightGemm<S>::none();

  // dgx [T, B, G·H]: gradients of the x-side pre-activations; dgh: of the h-side ones (differs for
  // GRU-lbr only). dh, dc: carried gradients; dh_next: the one being built for the previous step.
  // With a projection, dhs [T, B, P] keeps each step's dh_t for dW_hr and dm [B, H] = dh_t · W_hr feeds the cell.
  std::vector<S> scratch(backward_scratch_elems(c), S(0));
  S* dgx = scratch.data();
  S* dgh = lbr ? dgx + TB * GH : dgx;
  S* dh = dgx + (lbr ? 2 : 1) * TB * GH;
  S* dh_next = dh + BP;
  S* drh = dh_next + BP;
  S* dy_zeros = drh + BH;  // the kernels always read dy
  S* dc = lstm ? dy_zeros + BH : nullptr;
  S* dhs = proj ? dy_zeros + (lstm ? 2 : 1) * BH : nullptr;
  S* dm = proj ? dhs + TB * P : nullptr;
  if (buf.dh_n) std::memcpy(dh, buf.dh_n, sizeof(S) * BP);
  if (lstm && buf.dc_n) std::memcpy(dc, buf.dc_n, sizeof(S) * BH);

  for (int64_t j = 0; j < T; ++j) {
    const int64_t t = c.reverse ? j : T - 1 - j;
    StepArgs<S> a;
    a.H = H; a.GH = GH;
    a.gates = const_cast<S*>(buf.workspace + L.gates + t * B * GH);
    a.h_prev = hs + prev_row(c, t) * BP;
    a.h_cur = hs + out_row(c, t) * BP;
    a.dh = dh; a.dy = buf.dy ? buf.dy + t * BP : dy_zeros;
    if (proj) {
      // dh_t = carried + dy_t (zero where proj_clip clamped h_t); the cell sees dm = dh_t · W_hr.
      S* dht = dhs + t * BP;
      for (int64_t e = 0; e < BP; ++e) {
        S v = dh[e] + (buf.dy ? buf.dy[t * BP + e] : S(0));
        const S lim = S(c.proj_clip), h = a.h_cur[e];
        dht[e] = (c.proj_clip > 0 && (h <= -lim || h >= lim)) ? S(0) : v;
      }
      gemm_by_columns(w_hr_t, B, P, dht, P, false, dm, H);
      a.dh = dm; a.dy = dy_zeros;
    }
    a.dgx = dgx + t * B * GH; a.dgh = dgh + t * B * GH;
    a.dh_prev = dh_next; a.dc = dc; a.drh = drh;
    a.opt = &c.opt; a.peep = buf.peep; a.dacts = dacts_in;
    if (lstm) { a.c_prev = cs + prev_row(c, t) * BH; a.c_cur = cs + out_row(c, t) * BH; }
    if (gru) a.aux = const_cast<S*>(aux + t * BH);
    auto cell = [&](StepKernel<S> kernel) {
      for_unit_ranges(H, cell_flops, [&](int64_t u0, int64_t u1) { kernel(a, 0, B, u0, u1); });
    };
    switch (c.cell) {
      case CellKind::kRnnTanh:
      case CellKind::kRnnRelu:
        cell(general ? K.rnn_general_backward
                     : c.cell == CellKind::kRnnRelu ? K.rnn_relu_backward : K.rnn_tanh_backward);
        gemm_by_columns(w_hh_t, B, GH, a.dgx, GH, false, dh_next, H);
        break;
      case CellKind::kLstm:
        cell(general ? K.lstm_general_backward : K.lstm_backward);  // dc: read, then written, per element
        gemm_by_columns(w_hh_t, B, GH, a.dgx, GH, false, dh_next, P);
        if (fgr) {
          for (int j = 0; j < 3; ++j) gemm_by_columns(w_gr_t[j], B, H, a.dgx + gate_col[j], GH, j > 0, dacts_out, 3 * H);
          std::swap(dacts_in, dacts_out);
        }
        break;
      case CellKind::kGru:
        if (lbr) {
          cell(general ? K.gru_lbr_general_backward : K.gru_lbr_backward);  // writes dh ⊙ z into dh_next
          gemm_by_columns(w_hh_t, B, GH, a.dgh, GH, true, dh_next, H);
        } else {
          cell(general ? K.gru_rb_general_zn_backward : K.gru_rb_zn_backward);
          // drh[B, H] = dgates_n[B, H] · R_n[H, H]
          gemm_by_columns(w_hn_t, B, H, a.dgx + 2 * H, GH, false, drh, H);
          cell(general ? K.gru_rb_general_r_backward : K.gru_rb_r_backward);
          gemm_by_columns(w_hh_t, B, 2 * H, a.dgx, GH, true, dh_next, H);
        }
        break;
    }
    std::swap(dh, dh_next);
  }
  if (buf.dh0) std::memcpy(buf.dh0, dh, sizeof(S) * BP);
  if (lstm && buf.dc0) std::memcpy(buf.dc0, dc, sizeof(S) * BH);

  // Weight and input gradients over all T·B rows at once.
  const S* h_prev_all = hs + (c.reverse ? BP : 0);  // [T·B, P]: row block t is h_prev of time t
  gemm_tn_by_rows(GH, I, TB, dgx, GH, buf.x, buf.dw_ih, I);
  if (gru && !lbr) {
    gemm_tn_by_rows(2 * H, H, TB, dgh, GH, h_prev_all, buf.dw_hh, H);
    gemm_tn_by_rows(H, H, TB, dgh + 2 * H, GH, aux, buf.dw_hh + 2 * H * H, H);
  } else {
    gemm_tn_by_rows(GH, P, TB, dgh, GH, h_prev_all, buf.dw_hh, P);
  }
  if (proj) gemm_tn_by_rows(P, H, TB, dhs, P, buf.workspace + L.ms, buf.dw_hr, H);
  if (fgr) {
    const S* acts_prev_all = buf.workspace + L.acts + (c.reverse ? BA : 0);  // [T·B, 3H]
    for (int j = 0; j < 3; ++j)
      gemm_tn_by_rows(H, 3 * H, TB, dgx + gate_col[j], GH, acts_prev_all, buf.dw_gr + j * H * 3 * H, 3 * H);
  }
  if (buf.dx) gemm_by_rows(WeightGemm<S>::cols(buf.w_ih, GH, I), TB, GH, dgx, GH, false, buf.dx, I);
  auto column_sums = [&](const S* m, S* out) {
    for_ranges(GH, 64, double(TB) * GH * 8, [&](int64_t j0, int64_t j1) {
      std::fill(out + j0, out + j1, S(0));
      for (int64_t r = 0; r < TB; ++r) {
        const S* row = m + r * GH;
        for (int64_t j = j0; j < j1; ++j) out[j] += row[j];
      }
    });
  };
  if (buf.db_ih) column_sums(dgx, buf.db_ih);
  if (buf.db_hh) column_sums(dgh, buf.db_hh);
  if (lstm && buf.dpeep) {
    // dp_i = Σ dai ⊙ c_prev, dp_f = Σ daf ⊙ c_prev, dp_o = Σ dao ⊙ c_t over all (t, b).
    const S* c_prev_all = cs + (c.reverse ? BH : 0);
    const S* c_cur_all = cs + (c.reverse ? 0 : BH);
    for_ranges(H, 64, double(TB) * H * 6, [&](int64_t k0, int64_t k1) {
      std::fill(buf.dpeep + k0, buf.dpeep + k1, S(0));
      std::fill(buf.dpeep + H + k0, buf.dpeep + H + k1, S(0));
      std::fill(buf.dpeep + 2 * H + k0, buf.dpeep + 2 * H + k1, S(0));
      for (int64_t r = 0; r < TB; ++r) {
        const S* dg = dgx + r * GH;
        const S* cp = c_prev_all + r * H;
        const S* cc = c_cur_all + r * H;
        for (int64_t k = k0; k < k1; ++k) {
          buf.dpeep[k] += dg[k] * cp[k];
          buf.dpeep[H + k] += dg[H + k] * cp[k];
          buf.dpeep[2 * H + k] += dg[3 * H + k] * cc[k];
        }
      }
    });
  }
}

template void sequence_forward<float>(const SeqConfig&, const ForwardBuffers<float>&);
template void sequence_forward<double>(const SeqConfig&, const ForwardBuffers<double>&);
template void sequence_backward<float>(const SeqConfig&, const BackwardBuffers<float>&);
template void sequence_backward<double>(const SeqConfig&, const BackwardBuffers<double>&);

}  // namespace rnnkit
