#include "sequence.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../cells/gru.h"
#include "../cells/lstm.h"
#include "../cells/rnn.h"
#include "blas.h"
#include "thread_pool.h"

namespace rnnkit {

namespace {

// Element-wise work is shared by the pool once a step has this many hidden units in all.
constexpr int64_t kParallelGrain = 4096;
// Inference projects the input in chunks of at most this many scalars (bounds memory).
constexpr int64_t kProjectionChunk = 1 << 21;

// Runs fn(b, k0, k1) over every row segment of a [B, H] grid, split across the pool.
template <typename Fn>
void for_each_row_segment(int64_t B, int64_t H, Fn&& fn) {
  parallel_for(B * H, kParallelGrain, [&](int64_t begin, int64_t end) {
    while (begin < end) {
      int64_t b = begin / H, k0 = begin % H;
      int64_t k1 = std::min(H, k0 + (end - begin));
      fn(b, k0, k1);
      begin += k1 - k0;
    }
  });
}

// Row offsets into hs/cs for time t: the state the step reads and the one it writes.
inline int64_t prev_row(const SeqConfig& c, int64_t t) { return c.reverse ? t + 1 : t; }
inline int64_t out_row(const SeqConfig& c, int64_t t) { return c.reverse ? t : t + 1; }

struct WorkspaceLayout {
  int64_t gates, hs, cs, aux, total;
};
WorkspaceLayout layout_of(const SeqConfig& c) {
  const int64_t TB = c.T * c.B, BH = c.B * c.H;
  WorkspaceLayout w{};
  w.gates = 0;
  w.hs = w.gates + TB * c.gate_width();
  w.cs = w.hs + (c.T + 1) * BH;
  w.aux = w.cs + (c.cell == CellKind::kLstm ? (c.T + 1) * BH : 0);
  w.total = w.aux + (c.cell == CellKind::kGru ? TB * c.H : 0);
  return w;
}

// out[rows, G·H] = x[rows, I] · w_ihᵀ + bias, where bias folds b_hh in unless the cell needs it apart.
template <typename S>
void project_inputs(const SeqConfig& c, const S* x, int64_t rows, const S* w_ih, const S* bias, S* out) {
  const int64_t GH = c.gate_width();
  if (bias) {
    for (int64_t r = 0; r < rows; ++r) std::memcpy(out + r * GH, bias, sizeof(S) * GH);
  }
  gemm(false, true, rows, GH, c.I, S(1), x, c.I, w_ih, c.I, bias ? S(1) : S(0), out, GH);
}

}  // namespace

int64_t workspace_elems(const SeqConfig& cfg) { return layout_of(cfg).total; }

template <typename S>
void sequence_forward(const SeqConfig& c, const ForwardBuffers<S>& buf) {
  const int64_t T = c.T, B = c.B, H = c.H, GH = c.gate_width(), BH = B * H;
  const bool train = buf.workspace != nullptr;
  const bool lstm = c.cell == CellKind::kLstm, gru = c.cell == CellKind::kGru;
  const bool lbr = gru && c.linear_before_reset;

  // The bias added to the input projection: b_ih (+ b_hh unless GRU-lbr keeps b_hh inside r ⊙ (…)).
  std::vector<S> bias;
  if (buf.b_ih || (buf.b_hh && !lbr)) {
    bias.assign(GH, S(0));
    for (int64_t j = 0; j < GH; ++j) {
      if (buf.b_ih) bias[j] += buf.b_ih[j];
      if (buf.b_hh && !lbr) bias[j] += buf.b_hh[j];
    }
  }
  const S* bias_ptr = bias.empty() ? nullptr : bias.data();

  // State storage: training keeps every step in the workspace; inference ping-pongs two rows.
  std::vector<S> scratch;
  const int64_t chunk_steps = train ? T : std::max<int64_t>(1, std::min<int64_t>(T, kProjectionChunk / (B * GH)));
  const int64_t inf_gates = train ? 0 : chunk_steps * B * GH;
  const int64_t inf_states = train ? 0 : (lstm ? 5 : 3) * BH;  // h ×2 (+ c ×2) + zeros
  const int64_t hh_elems = lbr ? B * GH : 0;
  const int64_t aux_inf = (gru && !train) ? BH : 0;
  scratch.assign(inf_gates + inf_states + hh_elems + aux_inf, S(0));
  S* sp = scratch.data();
  S* chunk = sp;             sp += inf_gates;
  S* states = sp;            sp += inf_states;
  S* hh = sp;                sp += hh_elems;
  S* aux_row = sp;

  WorkspaceLayout L = layout_of(c);
  S* ws = buf.workspace;
  S* hs = train ? ws + L.hs : nullptr;
  S* cs = train ? ws + L.cs : nullptr;
  S* aux = train ? ws + L.aux : nullptr;
  S* gates_all = train ? ws + L.gates : chunk;

  // Initial states.
  const S* zeros = train ? nullptr : states + (lstm ? 4 : 2) * BH;
  std::vector<S> zero_row;
  if (train) {
    S* h_init = hs + (c.reverse ? T : 0) * BH;
    if (buf.h0) std::memcpy(h_init, buf.h0, sizeof(S) * BH); else std::fill(h_init, h_init + BH, S(0));
    if (lstm) {
      S* c_init = cs + (c.reverse ? T : 0) * BH;
      if (buf.c0) std::memcpy(c_init, buf.c0, sizeof(S) * BH); else std::fill(c_init, c_init + BH, S(0));
    }
  }
  const S* h_prev = train ? hs + (c.reverse ? T : 0) * BH : (buf.h0 ? buf.h0 : zeros);
  const S* c_prev = lstm ? (train ? cs + (c.reverse ? T : 0) * BH : (buf.c0 ? buf.c0 : zeros)) : nullptr;

  for (int64_t s0 = 0; s0 < T; s0 += chunk_steps) {
    const int64_t n = std::min(chunk_steps, T - s0);
    // Times covered by this chunk: [t_lo, t_lo + n).
    const int64_t t_lo = c.reverse ? T - s0 - n : s0;
    S* gbase = train ? gates_all : chunk;
    const int64_t g_origin = train ? 0 : t_lo;  // time index of gbase's row 0
    project_inputs(c, buf.x + t_lo * B * c.I, n * B, buf.w_ih, bias_ptr, gbase + (t_lo - g_origin) * B * GH);

    for (int64_t j = 0; j < n; ++j) {
      const int64_t t = c.reverse ? t_lo + n - 1 - j : t_lo + j;
      S* g = gbase + (t - g_origin) * B * GH;  // [B, G·H]
      S* h_out;
      S* c_out = nullptr;
      if (train) {
        h_out = hs + out_row(c, t) * BH;
        if (lstm) c_out = cs + out_row(c, t) * BH;
      } else {
        // Write straight into y when it is wanted; otherwise alternate two rows.
        const int64_t parity = (s0 + j) & 1;
        h_out = buf.y ? buf.y + t * BH : states + parity * BH;
        if (lstm) c_out = states + (2 + parity) * BH;
      }

      switch (c.cell) {
        case CellKind::kRnnTanh:
        case CellKind::kRnnRelu: {
          gemm(false, true, B, GH, H, S(1), h_prev, H, buf.w_hh, H, S(1), g, GH);
          const bool relu = c.cell == CellKind::kRnnRelu;
          for_each_row_segment(B, H, [&](int64_t b, int64_t k0, int64_t k1) {
            if (relu) rnn_forward_row<S, true>(h_out + b * H, g + b * GH, k0, k1);
            else rnn_forward_row<S, false>(h_out + b * H, g + b * GH, k0, k1);
          });
          break;
        }
        case CellKind::kLstm: {
          gemm(false, true, B, GH, H, S(1), h_prev, H, buf.w_hh, H, S(1), g, GH);
          for_each_row_segment(B, H, [&](int64_t b, int64_t k0, int64_t k1) {
            lstm_forward_row(g + b * GH, c_out + b * H, h_out + b * H, c_prev + b * H, H, k0, k1);
          });
          break;
        }
        case CellKind::kGru: {
          S* a = train ? aux + t * BH : aux_row;  // [B, H]
          if (lbr) {
            gemm(false, true, B, GH, H, S(1), h_prev, H, buf.w_hh, H, S(0), hh, GH);
            for_each_row_segment(B, H, [&](int64_t b, int64_t k0, int64_t k1) {
              gru_lbr_forward_row(g + b * GH, a + b * H, h_out + b * H, hh + b * GH, buf.b_hh,
                                  h_prev + b * H, H, k0, k1);
            });
          } else {
            gemm(false, true, B, 2 * H, H, S(1), h_prev, H, buf.w_hh, H, S(1), g, GH);
            for_each_row_segment(B, H, [&](int64_t b, int64_t k0, int64_t k1) {
              gru_rb_forward_rz_row(g + b * GH, a + b * H, h_prev + b * H, H, k0, k1);
            });
            gemm(false, true, B, H, H, S(1), a, H, buf.w_hh + 2 * H * H, H, S(1), g + 2 * H, GH);
            for_each_row_segment(B, H, [&](int64_t b, int64_t k0, int64_t k1) {
              gru_rb_forward_n_row(g + b * GH, h_out + b * H, h_prev + b * H, H, k0, k1);
            });
          }
          break;
        }
      }
      if (train && buf.y) std::memcpy(buf.y + t * BH, h_out, sizeof(S) * BH);
      h_prev = h_out;
      c_prev = c_out;
    }
  }
  if (buf.h_n) std::memcpy(buf.h_n, h_prev, sizeof(S) * BH);
  if (lstm && buf.c_n) std::memcpy(buf.c_n, c_prev, sizeof(S) * BH);
}

template <typename S>
void sequence_backward(const SeqConfig& c, const BackwardBuffers<S>& buf) {
  const int64_t T = c.T, B = c.B, H = c.H, I = c.I, GH = c.gate_width(), BH = B * H, TB = T * B;
  const bool lstm = c.cell == CellKind::kLstm, gru = c.cell == CellKind::kGru;
  const bool lbr = gru && c.linear_before_reset;
  const WorkspaceLayout L = layout_of(c);
  const S* gates_all = buf.workspace + L.gates;
  const S* hs = buf.workspace + L.hs;
  const S* cs = buf.workspace + L.cs;
  const S* aux = buf.workspace + L.aux;

  // dgx [T, B, G·H]: gradients of the x-side pre-activations; dgh: of the h-side ones (GRU-lbr only
  // differs). dh, dc: carried gradients; dh_next: the one being built for the previous step.
  std::vector<S> scratch((lbr ? 2 : 1) * TB * GH + (lstm ? 4 : 3) * BH, S(0));
  S* dgx = scratch.data();
  S* dgh = lbr ? dgx + TB * GH : dgx;
  S* dh = dgx + (lbr ? 2 : 1) * TB * GH;
  S* dh_next = dh + BH;
  S* drh = dh_next + BH;  // GRU reset-before: d(r ⊙ h_prev)
  S* dc = lstm ? drh + BH : nullptr;
  if (buf.dh_n) std::memcpy(dh, buf.dh_n, sizeof(S) * BH);
  if (lstm && buf.dc_n) std::memcpy(dc, buf.dc_n, sizeof(S) * BH);

  for (int64_t j = 0; j < T; ++j) {
    const int64_t t = c.reverse ? j : T - 1 - j;
    const S* g = gates_all + t * B * GH;
    const S* h_prev = hs + prev_row(c, t) * BH;
    const S* h_cur = hs + out_row(c, t) * BH;
    const S* dy = buf.dy ? buf.dy + t * BH : nullptr;
    S* dgxt = dgx + t * B * GH;
    S* dght = dgh + t * B * GH;
    switch (c.cell) {
      case CellKind::kRnnTanh:
      case CellKind::kRnnRelu: {
        const bool relu = c.cell == CellKind::kRnnRelu;
        for_each_row_segment(B, H, [&](int64_t b, int64_t k0, int64_t k1) {
          const S* dyb = dy ? dy + b * H : nullptr;
          if (relu) rnn_backward_row<S, true>(dgxt + b * GH, h_cur + b * H, dh + b * H, dyb, k0, k1);
          else rnn_backward_row<S, false>(dgxt + b * GH, h_cur + b * H, dh + b * H, dyb, k0, k1);
        });
        gemm(false, false, B, H, GH, S(1), dgxt, GH, buf.w_hh, H, S(0), dh_next, H);
        break;
      }
      case CellKind::kLstm: {
        const S* c_prev = cs + prev_row(c, t) * BH;
        const S* c_cur = cs + out_row(c, t) * BH;
        // dc is read and written in place: each element reads its own carry before writing it.
        for_each_row_segment(B, H, [&](int64_t b, int64_t k0, int64_t k1) {
          lstm_backward_row(dgxt + b * GH, dc + b * H, g + b * GH, c_cur + b * H, c_prev + b * H,
                            dh + b * H, dy ? dy + b * H : nullptr, dc + b * H, H, k0, k1);
        });
        gemm(false, false, B, H, GH, S(1), dgxt, GH, buf.w_hh, H, S(0), dh_next, H);
        break;
      }
      case CellKind::kGru: {
        const S* a = aux + t * BH;
        if (lbr) {
          for_each_row_segment(B, H, [&](int64_t b, int64_t k0, int64_t k1) {
            gru_lbr_backward_row(dgxt + b * GH, dght + b * GH, dh_next + b * H, g + b * GH, a + b * H,
                                 h_prev + b * H, dh + b * H, dy ? dy + b * H : nullptr, H, k0, k1);
          });
          gemm(false, false, B, H, GH, S(1), dght, GH, buf.w_hh, H, S(1), dh_next, H);
        } else {
          for_each_row_segment(B, H, [&](int64_t b, int64_t k0, int64_t k1) {
            gru_rb_backward_zn_row(dgxt + b * GH, dh_next + b * H, g + b * GH, h_prev + b * H, dh + b * H,
                                   dy ? dy + b * H : nullptr, H, k0, k1);
          });
          // drh[B, H] = dgates_n[B, H] · R_n[H, H]
          gemm(false, false, B, H, H, S(1), dgxt + 2 * H, GH, buf.w_hh + 2 * H * H, H, S(0), drh, H);
          for_each_row_segment(B, H, [&](int64_t b, int64_t k0, int64_t k1) {
            gru_rb_backward_r_row(dgxt + b * GH, dh_next + b * H, g + b * GH, h_prev + b * H, drh + b * H,
                                  k0, k1);
          });
          gemm(false, false, B, H, 2 * H, S(1), dgxt, GH, buf.w_hh, H, S(1), dh_next, H);
        }
        break;
      }
    }
    std::swap(dh, dh_next);
  }
  if (buf.dh0) std::memcpy(buf.dh0, dh, sizeof(S) * BH);
  if (lstm && buf.dc0) std::memcpy(buf.dc0, dc, sizeof(S) * BH);

  // Weight gradients over all T·B rows at once.
  const S* h_prev_all = hs + (c.reverse ? BH : 0);  // [T·B, H], row block t = h_prev of time t
  gemm(true, false, GH, I, TB, S(1), dgx, GH, buf.x, I, S(0), buf.dw_ih, I);
  if (gru && !lbr) {
    gemm(true, false, 2 * H, H, TB, S(1), dgh, GH, h_prev_all, H, S(0), buf.dw_hh, H);
    gemm(true, false, H, H, TB, S(1), dgh + 2 * H, GH, aux, H, S(0), buf.dw_hh + 2 * H * H, H);
  } else {
    gemm(true, false, GH, H, TB, S(1), dgh, GH, h_prev_all, H, S(0), buf.dw_hh, H);
  }
  if (buf.dx) gemm(false, false, TB, I, GH, S(1), dgx, GH, buf.w_ih, I, S(0), buf.dx, I);
  auto column_sums = [&](const S* m, S* out) {
    std::fill(out, out + GH, S(0));
    for (int64_t r = 0; r < TB; ++r) {
      const S* row = m + r * GH;
      for (int64_t j = 0; j < GH; ++j) out[j] += row[j];
    }
  };
  if (buf.db_ih) column_sums(dgx, buf.db_ih);
  if (buf.db_hh) column_sums(dgh, buf.db_hh);
}

template void sequence_forward<float>(const SeqConfig&, const ForwardBuffers<float>&);
template void sequence_forward<double>(const SeqConfig&, const ForwardBuffers<double>&);
template void sequence_backward<float>(const SeqConfig&, const BackwardBuffers<float>&);
template void sequence_backward<double>(const SeqConfig&, const BackwardBuffers<double>&);

}  // namespace rnnkit
