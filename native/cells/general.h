// The general (option-carrying) post-GEMM kernels: any ONNX activation per role, ONNX clip, and for
// LSTM peepholes, NIG/NFG/NOG, CIFG and cell clipping. They store pre-activations in the workspace
// (gates keep the gate inputs after peephole terms, before clipping) and the backward recomputes the
// activations and their derivatives from them, so every option has an exact gradient.
//
// Rows are processed in chunks of kChunk units held in small stack arrays, so each activation runs
// as one vectorisable loop chosen once per chunk rather than per element.
#pragma once
#include "activations.h"
#include "cell_kinds.h"

namespace rnnkit {
namespace RNNKIT_KERNEL_NS {

constexpr int64_t kChunk = 64;

template <typename S>
struct ActParams {
  Act kind;
  S alpha, beta;
  explicit ActParams(const ActSpec& a) : kind(a.kind), alpha(S(a.alpha)), beta(S(a.beta)) {}
};

// y[j] = act(x[j]) for j < n (x and y may alias).
template <typename S>
inline void act_forward(const ActParams<S>& a, const S* x, S* y, int64_t n) {
  const S al = a.alpha, be = a.beta;
  switch (a.kind) {
    case Act::kSigmoid: sigmoid_n(x, y, n); break;
    case Act::kTanh: tanh_n(x, y, n); break;
    case Act::kRelu: for (int64_t j = 0; j < n; ++j) y[j] = x[j] < S(0) ? S(0) : x[j]; break;  // NaN stays NaN
    case Act::kHardSigmoid:
      for (int64_t j = 0; j < n; ++j) {
        S v = al * x[j] + be;
        y[j] = v < S(0) ? S(0) : (v > S(1) ? S(1) : v);
      }
      break;
    case Act::kAffine: for (int64_t j = 0; j < n; ++j) y[j] = al * x[j] + be; break;
    case Act::kLeakyRelu: for (int64_t j = 0; j < n; ++j) y[j] = x[j] < S(0) ? al * x[j] : x[j]; break;
    case Act::kThresholdedRelu: for (int64_t j = 0; j < n; ++j) y[j] = x[j] > al ? x[j] : S(0); break;
    case Act::kScaledTanh: for (int64_t j = 0; j < n; ++j) y[j] = al * tanh_act(be * x[j]); break;
    case Act::kElu:
      for (int64_t j = 0; j < n; ++j) y[j] = x[j] < S(0) ? al * (exp_act(x[j]) - S(1)) : x[j];
      break;
    case Act::kSoftsign:
      for (int64_t j = 0; j < n; ++j) y[j] = x[j] / (S(1) + (x[j] < S(0) ? -x[j] : x[j]));
      break;
    case Act::kSoftplus:
      // log(1 + eˣ) = max(x, 0) + log(1 + e^−|x|), stable for large |x|.
      for (int64_t j = 0; j < n; ++j) {
        S ax = x[j] < S(0) ? -x[j] : x[j];
        y[j] = (x[j] > S(0) ? x[j] : S(0)) + log1p_act(exp_act(-ax));
      }
      break;
  }
}

// d[j] = act'(x[j]).
template <typename S>
inline void act_derivative(const ActParams<S>& a, const S* x, S* d, int64_t n) {
  const S al = a.alpha, be = a.beta;
  switch (a.kind) {
    case Act::kSigmoid:
      sigmoid_n(x, d, n);
      for (int64_t j = 0; j < n; ++j) d[j] = d[j] * (S(1) - d[j]);
      break;
    case Act::kTanh:
      tanh_n(x, d, n);
      for (int64_t j = 0; j < n; ++j) d[j] = S(1) - d[j] * d[j];
      break;
    case Act::kRelu: for (int64_t j = 0; j < n; ++j) d[j] = x[j] > S(0) ? S(1) : S(0); break;
    case Act::kHardSigmoid:
      for (int64_t j = 0; j < n; ++j) { S v = al * x[j] + be; d[j] = (v > S(0) && v < S(1)) ? al : S(0); }
      break;
    case Act::kAffine: for (int64_t j = 0; j < n; ++j) d[j] = al; break;
    case Act::kLeakyRelu: for (int64_t j = 0; j < n; ++j) d[j] = x[j] < S(0) ? al : S(1); break;
    case Act::kThresholdedRelu: for (int64_t j = 0; j < n; ++j) d[j] = x[j] > al ? S(1) : S(0); break;
    case Act::kScaledTanh:
      for (int64_t j = 0; j < n; ++j) { S t = tanh_act(be * x[j]); d[j] = al * be * (S(1) - t * t); }
      break;
    case Act::kElu: for (int64_t j = 0; j < n; ++j) d[j] = x[j] < S(0) ? al * exp_act(x[j]) : S(1); break;
    case Act::kSoftsign:
      for (int64_t j = 0; j < n; ++j) {
        S q = S(1) + (x[j] < S(0) ? -x[j] : x[j]);
        d[j] = S(1) / (q * q);
      }
      break;
    case Act::kSoftplus: sigmoid_n(x, d, n); break;
  }
}

// x[j] clamped to [−c, c] when c > 0.
template <typename S>
inline void clip_into(const S* x, S* y, int64_t n, S c) {
  if (c > S(0)) {
    for (int64_t j = 0; j < n; ++j) y[j] = x[j] < -c ? -c : (x[j] > c ? c : x[j]);
  } else {
    for (int64_t j = 0; j < n; ++j) y[j] = x[j];
  }
}
// y = act(clamp(x, ±c)) for n <= kChunk values (x and y may alias).
template <typename S>
inline void activate(const ActParams<S>& a, const S* x, S c, S* y, int64_t n) {
  S t[kChunk];
  clip_into(x, t, n, c);
  act_forward(a, t, y, n);
}
// The same, and d = act'(clamp(x, ±c)).
template <typename S>
inline void activate(const ActParams<S>& a, const S* x, S c, S* y, S* d, int64_t n) {
  S t[kChunk];
  clip_into(x, t, n, c);
  act_forward(a, t, y, n);
  act_derivative(a, t, d, n);
}

// 1 where the clamp passes the gradient (|x| <= c, or no clamp), else 0.
template <typename S>
inline S clip_pass(S x, S c) {
  return (c > S(0) && (x < -c || x > c)) ? S(0) : S(1);
}

// ---------------------------------------------------------------- SimpleRNN
// a: [H] pre-activation in (kept); h: [H] out.
template <typename S>
inline void rnn_general_forward_row(const CellOptions& o, const S* a, S* h, int64_t k0, int64_t k1) {
  const ActParams<S> g(o.cand_act);
  for (int64_t q = k0; q < k1; q += kChunk) {
    const int64_t n = k1 - q < kChunk ? k1 - q : kChunk;
    activate(g, a + q, S(o.clip), h + q, n);
  }
}
// da: [H] out; a: [H] stored pre-activation; dh (carried) and dy: [H].
template <typename S>
inline void rnn_general_backward_row(const CellOptions& o, S* da, const S* a, const S* dh, const S* dy, int64_t k0,
                                     int64_t k1) {
  const ActParams<S> g(o.cand_act);
  const S c = S(o.clip);
  S tmp[kChunk], d[kChunk];
  for (int64_t q = k0; q < k1; q += kChunk) {
    const int64_t n = k1 - q < kChunk ? k1 - q : kChunk;
    clip_into(a + q, tmp, n, c);
    act_derivative(g, tmp, d, n);
    for (int64_t j = 0; j < n; ++j) da[q + j] = (dh[q + j] + dy[q + j]) * d[j] * clip_pass(a[q + j], c);
  }
}

// ---------------------------------------------------------------- LSTM
// gates: [4H] (i, f, g, o) x- and h-side sums in; out: pre-activations with peephole terms.
// peep: [3H] (p_i, p_f, p_o) or null; c_prev, c, h: [H].
// acts: [3H] out (effective i, f, o, for full gate recurrence) or null.
template <typename S>
inline void lstm_general_forward_row(const CellOptions& o, S* gates, S* c, S* h, const S* c_prev, const S* peep,
                                     S* acts, int64_t H, int64_t k0, int64_t k1) {
  const ActParams<S> fa(o.gate_act), ga(o.cand_act), ha(o.out_act);
  const S clip = S(o.clip), cclip = S(o.cell_clip);
  S* ai = gates;
  S* af = gates + H;
  S* ag = gates + 2 * H;
  S* ao = gates + 3 * H;
  S i[kChunk], f[kChunk], g[kChunk], t[kChunk];
  for (int64_t q = k0; q < k1; q += kChunk) {
    const int64_t n = k1 - q < kChunk ? k1 - q : kChunk;
    if (peep) {
      for (int64_t j = 0; j < n; ++j) {
        ai[q + j] += peep[q + j] * c_prev[q + j];
        af[q + j] += peep[H + q + j] * c_prev[q + j];
      }
    }
    activate(fa, ai + q, clip, i, n);
    activate(fa, af + q, clip, f, n);
    activate(ga, ag + q, clip, g, n);
    for (int64_t j = 0; j < n; ++j) {
      S ii = o.no_input_gate ? S(1) : i[j];
      S ff = o.no_forget_gate ? S(1) : (o.coupled ? S(1) - ii : f[j]);
      S cn = g[j] * ii + c_prev[q + j] * ff;
      if (cclip > S(0)) cn = cn < -cclip ? -cclip : (cn > cclip ? cclip : cn);
      c[q + j] = cn;
      if (peep) ao[q + j] += peep[2 * H + q + j] * cn;
      if (acts) { acts[q + j] = ii; acts[H + q + j] = ff; }
    }
    activate(fa, ao + q, clip, f, n);  // f now holds o
    act_forward(ha, c + q, t, n);
    for (int64_t j = 0; j < n; ++j) {
      S oo = o.no_output_gate ? S(1) : f[j];
      h[q + j] = oo * t[j];
      if (acts) acts[2 * H + q + j] = oo;
    }
  }
}

// dgates: [4H] out; dc: [H] carried dc_t in, dc_{t−1} out; gates: stored pre-activations;
// c, c_prev: [H]; dh (carried), dy: [H]; peep: [3H] or null; dacts: [3H] gradient of this step's
// effective i, f, o through the next step's full gate recurrence, or null.
template <typename S>
inline void lstm_general_backward_row(const CellOptions& o, S* dgates, S* dc, const S* gates, const S* c,
                                      const S* c_prev, const S* dh, const S* dy, const S* peep, const S* dacts,
                                      int64_t H, int64_t k0, int64_t k1) {
  const ActParams<S> fa(o.gate_act), ga(o.cand_act), ha(o.out_act);
  const S clip = S(o.clip), cclip = S(o.cell_clip);
  const S* ai = gates;
  const S* af = gates + H;
  const S* ag = gates + 2 * H;
  const S* ao = gates + 3 * H;
  S i[kChunk], f[kChunk], g[kChunk], ov[kChunk], di[kChunk], df[kChunk], dg[kChunk], dov[kChunk], t[kChunk],
      dt[kChunk];
  for (int64_t q = k0; q < k1; q += kChunk) {
    const int64_t n = k1 - q < kChunk ? k1 - q : kChunk;
    activate(fa, ai + q, clip, i, di, n);
    activate(fa, af + q, clip, f, df, n);
    activate(ga, ag + q, clip, g, dg, n);
    activate(fa, ao + q, clip, ov, dov, n);
    act_forward(ha, c + q, t, n);
    act_derivative(ha, c + q, dt, n);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t k = q + j;
      S ii = o.no_input_gate ? S(1) : i[j];
      S ff = o.no_forget_gate ? S(1) : (o.coupled ? S(1) - ii : f[j]);
      S oo = o.no_output_gate ? S(1) : ov[j];
      S dht = dh[k] + dy[k];
      S doo = dht * t[j] + (dacts ? dacts[2 * H + k] : S(0));
      S dao = o.no_output_gate ? S(0) : doo * dov[j] * clip_pass(ao[k], clip);
      S dct = dc[k] + dht * oo * dt[j];
      if (peep) dct += dao * peep[2 * H + k];
      if (cclip > S(0) && (c[k] <= -cclip || c[k] >= cclip)) dct = S(0);
      S dii = dct * g[j] + (dacts ? dacts[k] : S(0));
      S dff = dct * c_prev[k] + (dacts ? dacts[H + k] : S(0));
      if (o.coupled) dii -= dff;
      S dai = o.no_input_gate ? S(0) : dii * di[j] * clip_pass(ai[k], clip);
      S daf = (o.no_forget_gate || o.coupled) ? S(0) : dff * df[j] * clip_pass(af[k], clip);
      S dag = dct * ii * dg[j] * clip_pass(ag[k], clip);
      dgates[k] = dai;
      dgates[H + k] = daf;
      dgates[2 * H + k] = dag;
      dgates[3 * H + k] = dao;
      S dcp = dct * ff;
      if (peep) dcp += dai * peep[k] + daf * peep[H + k];
      dc[k] = dcp;
    }
  }
}

// ---------------------------------------------------------------- GRU
// Linear before reset. gates: [3H] x-side (with b_W) in, pre-activations out (r, z: x + h sides + b_R;
// n: x-side + r ⊙ hn); hn: [H] out; hh: [3H] = h_prev·Rᵀ; b_hh: [3H]; h_prev, h: [H].
template <typename S>
inline void gru_lbr_general_forward_row(const CellOptions& o, S* gates, S* hn, S* h, const S* hh, const S* b_hh,
                                        const S* h_prev, int64_t H, int64_t k0, int64_t k1) {
  const ActParams<S> fa(o.gate_act), ga(o.cand_act);
  const S clip = S(o.clip);
  S r[kChunk], z[kChunk], nn[kChunk];
  for (int64_t q = k0; q < k1; q += kChunk) {
    const int64_t n = k1 - q < kChunk ? k1 - q : kChunk;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t k = q + j;
      gates[k] += hh[k] + b_hh[k];
      gates[H + k] += hh[H + k] + b_hh[H + k];
      hn[k] = hh[2 * H + k] + b_hh[2 * H + k];
    }
    activate(fa, gates + q, clip, r, n);
    activate(fa, gates + H + q, clip, z, n);
    for (int64_t j = 0; j < n; ++j) gates[2 * H + q + j] += r[j] * hn[q + j];
    activate(ga, gates + 2 * H + q, clip, nn, n);
    for (int64_t j = 0; j < n; ++j) h[q + j] = (S(1) - z[j]) * nn[j] + z[j] * h_prev[q + j];
  }
}
template <typename S>
inline void gru_lbr_general_backward_row(const CellOptions& o, S* dgx, S* dgh, S* dh_prev, const S* gates,
                                         const S* hn, const S* h_prev, const S* dh, const S* dy, int64_t H,
                                         int64_t k0, int64_t k1) {
  const ActParams<S> fa(o.gate_act), ga(o.cand_act);
  const S clip = S(o.clip);
  S r[kChunk], z[kChunk], nn[kChunk], dr[kChunk], dz[kChunk], dn[kChunk];
  for (int64_t q = k0; q < k1; q += kChunk) {
    const int64_t n = k1 - q < kChunk ? k1 - q : kChunk;
    activate(fa, gates + q, clip, r, dr, n);
    activate(fa, gates + H + q, clip, z, dz, n);
    activate(ga, gates + 2 * H + q, clip, nn, dn, n);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t k = q + j;
      S dht = dh[k] + dy[k];
      S dan = dht * (S(1) - z[j]) * dn[j] * clip_pass(gates[2 * H + k], clip);
      S dar = dan * hn[k] * dr[j] * clip_pass(gates[k], clip);
      S daz = dht * (h_prev[k] - nn[j]) * dz[j] * clip_pass(gates[H + k], clip);
      dgx[k] = dar; dgx[H + k] = daz; dgx[2 * H + k] = dan;
      dgh[k] = dar; dgh[H + k] = daz; dgh[2 * H + k] = dan * r[j];
      dh_prev[k] = dht * z[j];
    }
  }
}

// Reset before, phase 1: gates r, z hold their full pre-activations; rh = act(r) ⊙ h_prev.
template <typename S>
inline void gru_rb_general_forward_rz_row(const CellOptions& o, const S* gates, S* rh, const S* h_prev, int64_t H,
                                          int64_t k0, int64_t k1) {
  const ActParams<S> fa(o.gate_act);
  S r[kChunk];
  for (int64_t q = k0; q < k1; q += kChunk) {
    const int64_t n = k1 - q < kChunk ? k1 - q : kChunk;
    activate(fa, gates + q, S(o.clip), r, n);
    for (int64_t j = 0; j < n; ++j) rh[q + j] = r[j] * h_prev[q + j];
  }
  (void)H;
}
// Phase 2: the n block holds its pre-activation (x-side + R_n rh).
template <typename S>
inline void gru_rb_general_forward_n_row(const CellOptions& o, const S* gates, S* h, const S* h_prev, int64_t H,
                                         int64_t k0, int64_t k1) {
  const ActParams<S> fa(o.gate_act), ga(o.cand_act);
  const S clip = S(o.clip);
  S z[kChunk], nn[kChunk];
  for (int64_t q = k0; q < k1; q += kChunk) {
    const int64_t n = k1 - q < kChunk ? k1 - q : kChunk;
    activate(fa, gates + H + q, clip, z, n);
    activate(ga, gates + 2 * H + q, clip, nn, n);
    for (int64_t j = 0; j < n; ++j) h[q + j] = (S(1) - z[j]) * nn[j] + z[j] * h_prev[q + j];
  }
}
// Backward phase 1: dgates z and n; dh_prev = dh ⊙ z.
template <typename S>
inline void gru_rb_general_backward_zn_row(const CellOptions& o, S* dgates, S* dh_prev, const S* gates,
                                           const S* h_prev, const S* dh, const S* dy, int64_t H, int64_t k0,
                                           int64_t k1) {
  const ActParams<S> fa(o.gate_act), ga(o.cand_act);
  const S clip = S(o.clip);
  S z[kChunk], nn[kChunk], dz[kChunk], dn[kChunk];
  for (int64_t q = k0; q < k1; q += kChunk) {
    const int64_t n = k1 - q < kChunk ? k1 - q : kChunk;
    activate(fa, gates + H + q, clip, z, dz, n);
    activate(ga, gates + 2 * H + q, clip, nn, dn, n);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t k = q + j;
      S dht = dh[k] + dy[k];
      dgates[H + k] = dht * (h_prev[k] - nn[j]) * dz[j] * clip_pass(gates[H + k], clip);
      dgates[2 * H + k] = dht * (S(1) - z[j]) * dn[j] * clip_pass(gates[2 * H + k], clip);
      dh_prev[k] = dht * z[j];
    }
  }
}
// Backward phase 2, given drh = dgates_n · R_n: dgates r, and dh_prev += drh ⊙ r.
template <typename S>
inline void gru_rb_general_backward_r_row(const CellOptions& o, S* dgates, S* dh_prev, const S* gates,
                                          const S* h_prev, const S* drh, int64_t k0, int64_t k1) {
  const ActParams<S> fa(o.gate_act);
  const S clip = S(o.clip);
  S r[kChunk], dr[kChunk];
  for (int64_t q = k0; q < k1; q += kChunk) {
    const int64_t n = k1 - q < kChunk ? k1 - q : kChunk;
    activate(fa, gates + q, clip, r, dr, n);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t k = q + j;
      dgates[k] = drh[k] * h_prev[k] * dr[j] * clip_pass(gates[k], clip);
      dh_prev[k] += drh[k] * r[j];
    }
  }
}

}  // namespace RNNKIT_KERNEL_NS
}  // namespace rnnkit
