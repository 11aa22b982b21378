// Prepared weights: one layer-direction's parameters, owned and packed for the kernels once, then
// shared read-only by every call (sync, async, concurrent) until the layer's weights change and a
// new one is prepared (like an onnxruntime session). Nothing weight-sized happens per call.
//
// The parameters and their layouts: cells/cell_params.h.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "../cells/cell_kinds.h"
#include "../cells/cell_params.h"
#include "weight_gemm.h"

namespace rnnkit {

// Borrowed pointers to a layer-direction's parameters (cell_params.h), only while preparing.
template <typename S>
using LayerWeightsView = CellParamSet<const S>;

template <typename S>
class PreparedLayer {
 public:
  // cfg: the cell and sizes (T and B are ignored). Copies every weight.
  PreparedLayer(const SeqConfig& cfg, const LayerWeightsView<S>& w);
  PreparedLayer(const PreparedLayer&) = delete;
  PreparedLayer& operator=(const PreparedLayer&) = delete;

  const SeqConfig& config() const { return cfg_; }
  // Whether this layer holds parameter p (a cell's optional biases may be absent).
  bool has(CellParam p) const { return !params_[p].empty(); }
  const S* param(CellParam p) const { return params_[p].empty() ? nullptr : params_[p].data(); }

  // Forward products: x·W_ihᵀ, h·W_hhᵀ, m·W_hrᵀ, acts·W_grᵀ.
  const WeightGemm<S>& ih() const { return ih_; }
  const WeightGemm<S>& hh() const { return hh_; }
  const WeightGemm<S>& hr() const { return hr_; }
  const WeightGemm<S>& gr() const { return gr_; }
  // The bias added to the input projection (b_ih + b_hh, or b_ih alone for GRU-lbr), or null.
  const S* input_bias() const { return input_bias_.empty() ? nullptr : input_bias_.data(); }
  // b_hh as the GRU-lbr kernel reads it (zeros without a bias); null for other cells.
  const S* lbr_bias() const { return lbr_bias_.empty() ? nullptr : lbr_bias_.data(); }
  const S* peep() const { return param(kPeephole); }

  // Backward products (packed on first use, once): dGates·W_hh (the r, z rows only for GRU reset
  // before), dGates_n·R_n (GRU reset before), dh·W_hr, dGates·W_gr blocks, dGates·W_ih.
  struct Backward {
    WeightGemm<S> hh_t, hn_t, hr_t, gr_t[3], ih_t;
  };
  const Backward& backward() const;

  size_t bytes() const;

 private:
  SeqConfig cfg_;
  std::vector<S> params_[kCellParamCount];
  std::vector<S> input_bias_, lbr_bias_;
  WeightGemm<S> ih_, hh_, hr_, gr_;
  mutable std::once_flag backward_once_;
  mutable std::unique_ptr<Backward> backward_;
};

// Every layer-direction of a stack, index layer·D + direction; immutable once built.
struct PreparedStackBase {
  virtual ~PreparedStackBase() = default;
  int layers = 0, directions = 0;
  bool float64 = false;
  double version = 0;  // the layer's weight version this was prepared from
  size_t bytes = 0;
};

template <typename S>
struct PreparedStack : PreparedStackBase {
  std::vector<std::unique_ptr<PreparedLayer<S>>> cells;
  const PreparedLayer<S>& at(int layer, int dir) const { return *cells[size_t(layer * directions + dir)]; }
};

}  // namespace rnnkit
