// The cell families and the configuration that the sequence driver and the kernels share.
#pragma once
#include <cstdint>

namespace rnnkit {

enum class CellKind : int { kRnnTanh = 0, kRnnRelu = 1, kLstm = 2, kGru = 3 };

// The ONNX activation set, with its alpha/beta parameters:
//   Sigmoid, Tanh, Relu; HardSigmoid clip(αx+β, 0, 1); Affine αx+β; LeakyRelu x<0 ? αx : x;
//   ThresholdedRelu x>α ? x : 0; ScaledTanh α·tanh(βx); Elu x<0 ? α(eˣ−1) : x; Softsign x/(1+|x|);
//   Softplus log(1+eˣ).
enum class Act : int {
  kSigmoid = 0, kTanh, kRelu, kHardSigmoid, kAffine, kLeakyRelu, kThresholdedRelu, kScaledTanh, kElu,
  kSoftsign, kSoftplus
};
struct ActSpec {
  Act kind = Act::kSigmoid;
  double alpha = 0, beta = 0;
  bool is(Act k) const { return kind == k; }
};

// A cell's options beyond its default form; any that is set routes the steps through the general
// kernels (cells/general.h), which keep pre-activations in the workspace and recompute in backward.
struct CellOptions {
  ActSpec gate_act{Act::kSigmoid};  // ONNX f: LSTM i, f, o; GRU r, z
  ActSpec cand_act{Act::kTanh};     // ONNX g: LSTM block input z, GRU n, SimpleRNN's activation
  ActSpec out_act{Act::kTanh};      // ONNX h: LSTM output activation
  bool peephole = false;            // LSTM: p_i, p_f look at c_{t-1}, p_o at c_t
  bool no_input_gate = false;       // NIG: i = 1
  bool no_forget_gate = false;      // NFG: f = 1
  bool no_output_gate = false;      // NOG: o = 1
  bool coupled = false;             // CIFG: f = 1 − i
  bool full_gate_recurrence = false;  // FGR: i, f, o also get R_gr [i, f, o]_{t−1} (weight [3H, 3H])
  double clip = 0;                  // ONNX clip: clamp gate pre-activations to [−clip, clip]; 0 = off
  double cell_clip = 0;             // TF1 cell_clip: clamp c_t to [−cell_clip, cell_clip]; 0 = off
};

// One layer-direction over a whole sequence. Sizes: T steps, B batch, I input, H hidden.
struct SeqConfig {
  CellKind cell = CellKind::kLstm;
  bool linear_before_reset = false;  // GRU only: PyTorch/cuDNN/ONNX lbr=1 form
  bool reverse = false;              // process t = T-1 .. 0 (outputs stay at their time index)
  int64_t T = 0, B = 0, I = 0, H = 0;
  int64_t P = 0;           // LSTM projection size (LSTMP: h_t = W_hr (o ⊙ act(c_t))); 0 = none
  double proj_clip = 0;    // TF1 proj_clip: clamp the projected h_t to [−proj_clip, proj_clip]; 0 = off
  CellOptions opt;

  // Size of the hidden state h (and of the outputs): P with a projection, else H.
  int64_t state_size() const { return P > 0 ? P : H; }

  // Whether the options leave the default form of the cell (then the general kernels run).
  bool general() const {
    const CellOptions& o = opt;
    if (o.clip > 0) return true;
    switch (cell) {
      case CellKind::kRnnTanh: return !o.cand_act.is(Act::kTanh);
      case CellKind::kRnnRelu: return !o.cand_act.is(Act::kRelu);
      case CellKind::kGru: return !o.gate_act.is(Act::kSigmoid) || !o.cand_act.is(Act::kTanh);
      case CellKind::kLstm:
        return !o.gate_act.is(Act::kSigmoid) || !o.cand_act.is(Act::kTanh) || !o.out_act.is(Act::kTanh) ||
               o.peephole || o.no_input_gate || o.no_forget_gate || o.no_output_gate || o.coupled || o.cell_clip > 0 ||
               o.full_gate_recurrence;
    }
    return false;
  }

  int gates() const { return cell == CellKind::kLstm ? 4 : cell == CellKind::kGru ? 3 : 1; }
  int64_t gate_width() const { return gates() * H; }
};

}  // namespace rnnkit
