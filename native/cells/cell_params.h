// The parameter buffers of one layer-direction, listed once. The prepared weights (prepared.h),
// the gradient buffers (sequence.h), the binding's argument checks, outputs and names
// (native/binding) and the names lib/native.ts uses (cellParameters() at run time, checked
// against lib/native.ts's CELL_PARAMETERS by test/validation.test.ts) all derive from this table.
//
// Layouts are PyTorch's (gate order as PyTorch): G gates, H hidden units, I inputs, P = state size
// (projSize with a projection, else H).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cell_kinds.h"

namespace rnnkit {

enum CellParam : int {
  kWeightIh = 0,  // [G·H, I]
  kWeightHh,      // [G·H, P]
  kBiasIh,        // [G·H]      optional
  kBiasHh,        // [G·H]      optional
  kPeephole,      // [3H]       LSTM with peepholes: p_i, p_f, p_o
  kWeightHr,      // [P, H]     LSTM projection
  kWeightGr,      // [3H, 3H]   LSTM full gate recurrence
  kCellParamCount
};

struct CellParamInfo {
  const char* name;      // the binding's and lib/native.ts's name
  const char* gradient;  // the raw single-layer API's gradient buffer name
  const char* torch;     // PyTorch state_dict stem (weight_ih → weight_ih_l0, weight_ih_l0_reverse)
  bool optional;         // may be left out even when the cell has it
  bool gradient_optional;  // the raw API computes its gradient only when given a buffer for it
};

inline constexpr CellParamInfo kCellParams[kCellParamCount] = {
    {"weightIh", "dWeightIh", "weight_ih", false, false},
    {"weightHh", "dWeightHh", "weight_hh", false, false},
    {"biasIh", "dBiasIh", "bias_ih", true, true},
    {"biasHh", "dBiasHh", "bias_hh", true, true},
    {"peephole", "dPeephole", "weight_peephole", false, true},
    {"weightHr", "dWeightHr", "weight_hr", false, false},
    {"weightGr", "dWeightGr", "weight_gr", false, false},
};

struct ParamDim {
  const char* name;
  int64_t size;
};

// Whether cell c has parameter p at all.
inline bool cell_has_param(const SeqConfig& c, CellParam p) {
  const bool lstm = c.cell == CellKind::kLstm;
  switch (p) {
    case kPeephole: return lstm && c.opt.peephole;
    case kWeightHr: return lstm && c.P > 0;
    case kWeightGr: return lstm && c.opt.full_gate_recurrence;
    default: return true;
  }
}

// The shape of parameter p of cell c, with the dimensions' names for error messages.
inline std::vector<ParamDim> cell_param_dims(const SeqConfig& c, CellParam p) {
  const int64_t GH = c.gate_width(), H = c.H, P = c.state_size();
  switch (p) {
    case kWeightIh: return {{"gates·hiddenSize", GH}, {"inputSize", c.I}};
    case kWeightHh: return {{"gates·hiddenSize", GH}, {c.P > 0 ? "projSize" : "hiddenSize", P}};
    case kBiasIh:
    case kBiasHh: return {{"gates·hiddenSize", GH}};
    case kPeephole: return {{"3·hiddenSize", 3 * H}};
    case kWeightHr: return {{"projSize", P}, {"hiddenSize", H}};
    case kWeightGr: return {{"3·hiddenSize", 3 * H}, {"3·hiddenSize", 3 * H}};
    default: return {};
  }
}

inline int64_t cell_param_elems(const SeqConfig& c, CellParam p) {
  int64_t n = 1;
  for (const ParamDim& d : cell_param_dims(c, p)) n *= d.size;
  return n;
}

// "[gates·hiddenSize, inputSize] = [512, 64]" (checks.h's shape_str format)
inline std::string cell_param_shape(const SeqConfig& c, CellParam p) {
  std::string names = "[", values = "[";
  bool first = true;
  for (const ParamDim& d : cell_param_dims(c, p)) {
    if (!first) { names += ", "; values += ", "; }
    names += d.name;
    values += std::to_string(d.size);
    first = false;
  }
  return names + "] = " + values + "]";
}

// One pointer per parameter (null: absent).
template <typename P>
struct CellParamSet {
  P* p[kCellParamCount] = {};
  P*& operator[](CellParam i) { return p[i]; }
  P* operator[](CellParam i) const { return p[i]; }
};

}  // namespace rnnkit
