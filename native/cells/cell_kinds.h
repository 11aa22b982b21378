// The cell families and the configuration that the sequence driver and the kernels share.
#pragma once
#include <cstdint>

namespace rnnkit {

enum class CellKind : int { kRnnTanh = 0, kRnnRelu = 1, kLstm = 2, kGru = 3 };

// One layer-direction over a whole sequence. Sizes: T steps, B batch, I input, H hidden.
struct SeqConfig {
  CellKind cell = CellKind::kLstm;
  bool linear_before_reset = false;  // GRU only: PyTorch/cuDNN/ONNX lbr=1 form
  bool reverse = false;              // process t = T-1 .. 0 (outputs stay at their time index)
  int64_t T = 0, B = 0, I = 0, H = 0;

  int gates() const { return cell == CellKind::kLstm ? 4 : cell == CellKind::kGru ? 3 : 1; }
  int64_t gate_width() const { return gates() * H; }
};

}  // namespace rnnkit
