// Included by exactly one translation unit per instruction set, with RNNKIT_KERNEL_NS defined.
// Applies a row function to every row of a rectangle [b0, b1) × [k0, k1) of the step's [B, H] grid.
#pragma once
#include "general.h"
#include "gru.h"
#include "lstm.h"
#include "rnn.h"
#include "step_kernels.h"

namespace rnnkit {
namespace RNNKIT_KERNEL_NS {

template <typename Row>
inline void segments(int64_t b0, int64_t b1, Row row) {
  for (int64_t b = b0; b < b1; ++b) row(b);
}

template <typename S, bool kRelu>
void rnn_fwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    rnn_forward_row<S, kRelu>(a.h + b * a.H, a.gates + b * a.GH, k0, k1);
  });
}
template <typename S, bool kRelu>
void rnn_bwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    rnn_backward_row<S, kRelu>(a.dgx + b * a.GH, a.h_cur + b * a.H, a.dh + b * a.H, a.dy + b * a.H,
                               k0, k1);
  });
}
template <typename S>
void lstm_fwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    lstm_forward_row(a.gates + b * a.GH, a.c + b * a.H, a.h + b * a.H, a.c_prev + b * a.H, a.H, k0, k1);
  });
}
template <typename S>
void lstm_bwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    lstm_backward_row(a.dgx + b * a.GH, a.gates + b * a.GH, a.c_cur + b * a.H, a.c_prev + b * a.H,
                      a.dh + b * a.H, a.dy + b * a.H, a.dc + b * a.H, a.H, k0, k1);
  });
}
template <typename S>
void gru_lbr_fwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    gru_lbr_forward_row(a.gates + b * a.GH, a.aux + b * a.H, a.h + b * a.H, a.hh + b * a.GH, a.b_hh,
                        a.h_prev + b * a.H, a.H, k0, k1);
  });
}
template <typename S>
void gru_lbr_bwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    gru_lbr_backward_row(a.dgx + b * a.GH, a.dgh + b * a.GH, a.dh_prev + b * a.H, a.gates + b * a.GH,
                         a.aux + b * a.H, a.h_prev + b * a.H, a.dh + b * a.H, a.dy + b * a.H, a.H,
                         k0, k1);
  });
}
template <typename S>
void gru_rb_rz_fwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    gru_rb_forward_rz_row(a.gates + b * a.GH, a.aux + b * a.H, a.h_prev + b * a.H, a.H, k0, k1);
  });
}
template <typename S>
void gru_rb_n_fwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    gru_rb_forward_n_row(a.gates + b * a.GH, a.h + b * a.H, a.h_prev + b * a.H, a.H, k0, k1);
  });
}
template <typename S>
void gru_rb_zn_bwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    gru_rb_backward_zn_row(a.dgx + b * a.GH, a.dh_prev + b * a.H, a.gates + b * a.GH, a.h_prev + b * a.H,
                           a.dh + b * a.H, a.dy + b * a.H, a.H, k0, k1);
  });
}
template <typename S>
void gru_rb_r_bwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    gru_rb_backward_r_row(a.dgx + b * a.GH, a.dh_prev + b * a.H, a.gates + b * a.GH, a.h_prev + b * a.H,
                          a.drh + b * a.H, k0, k1);
  });
}

template <typename S>
void rnn_gen_fwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) { rnn_general_forward_row(*a.opt, a.gates + b * a.GH, a.h + b * a.H, k0, k1); });
}
template <typename S>
void rnn_gen_bwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    rnn_general_backward_row(*a.opt, a.dgx + b * a.GH, a.gates + b * a.GH, a.dh + b * a.H, a.dy + b * a.H, k0, k1);
  });
}
template <typename S>
void lstm_gen_fwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    lstm_general_forward_row(*a.opt, a.gates + b * a.GH, a.c + b * a.H, a.h + b * a.H, a.c_prev + b * a.H, a.peep,
                             a.acts ? a.acts + b * 3 * a.H : nullptr, a.H, k0, k1);
  });
}
template <typename S>
void lstm_gen_bwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    lstm_general_backward_row(*a.opt, a.dgx + b * a.GH, a.dc + b * a.H, a.gates + b * a.GH, a.c_cur + b * a.H,
                              a.c_prev + b * a.H, a.dh + b * a.H, a.dy + b * a.H, a.peep,
                              a.dacts ? a.dacts + b * 3 * a.H : nullptr, a.H, k0, k1);
  });
}
template <typename S>
void gru_lbr_gen_fwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    gru_lbr_general_forward_row(*a.opt, a.gates + b * a.GH, a.aux + b * a.H, a.h + b * a.H, a.hh + b * a.GH, a.b_hh,
                                a.h_prev + b * a.H, a.H, k0, k1);
  });
}
template <typename S>
void gru_lbr_gen_bwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    gru_lbr_general_backward_row(*a.opt, a.dgx + b * a.GH, a.dgh + b * a.GH, a.dh_prev + b * a.H, a.gates + b * a.GH,
                                 a.aux + b * a.H, a.h_prev + b * a.H, a.dh + b * a.H, a.dy + b * a.H, a.H, k0, k1);
  });
}
template <typename S>
void gru_rb_gen_rz_fwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    gru_rb_general_forward_rz_row(*a.opt, a.gates + b * a.GH, a.aux + b * a.H, a.h_prev + b * a.H, a.H, k0, k1);
  });
}
template <typename S>
void gru_rb_gen_n_fwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    gru_rb_general_forward_n_row(*a.opt, a.gates + b * a.GH, a.h + b * a.H, a.h_prev + b * a.H, a.H, k0, k1);
  });
}
template <typename S>
void gru_rb_gen_zn_bwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    gru_rb_general_backward_zn_row(*a.opt, a.dgx + b * a.GH, a.dh_prev + b * a.H, a.gates + b * a.GH,
                                   a.h_prev + b * a.H, a.dh + b * a.H, a.dy + b * a.H, a.H, k0, k1);
  });
}
template <typename S>
void gru_rb_gen_r_bwd(const StepArgs<S>& a, int64_t b0, int64_t b1, int64_t k0, int64_t k1) {
  segments(b0, b1, [&](int64_t b) {
    gru_rb_general_backward_r_row(*a.opt, a.dgx + b * a.GH, a.dh_prev + b * a.H, a.gates + b * a.GH,
                                  a.h_prev + b * a.H, a.drh + b * a.H, k0, k1);
  });
}

template <typename S>
constexpr StepKernels<S> make_step_kernels(const char* isa) {
  return StepKernels<S>{isa,
                        rnn_fwd<S, false>, rnn_fwd<S, true>, lstm_fwd<S>, gru_lbr_fwd<S>, gru_rb_rz_fwd<S>,
                        gru_rb_n_fwd<S>,
                        rnn_bwd<S, false>, rnn_bwd<S, true>, lstm_bwd<S>, gru_lbr_bwd<S>, gru_rb_zn_bwd<S>,
                        gru_rb_r_bwd<S>,
                        rnn_gen_fwd<S>, lstm_gen_fwd<S>, gru_lbr_gen_fwd<S>, gru_rb_gen_rz_fwd<S>, gru_rb_gen_n_fwd<S>,
                        rnn_gen_bwd<S>, lstm_gen_bwd<S>, gru_lbr_gen_bwd<S>, gru_rb_gen_zn_bwd<S>,
                        gru_rb_gen_r_bwd<S>};
}

}  // namespace RNNKIT_KERNEL_NS
}  // namespace rnnkit
