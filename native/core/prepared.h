// Prepared weights: one layer-direction's parameters, owned and packed for the kernels once, then
// shared read-only by every call (sync, async, concurrent) until the layer's weights change and a
// new one is prepared (like an onnxruntime session). Nothing weight-sized happens per call.
//
// Layouts (PyTorch, gate order as PyTorch): w_ih [G·H, I], w_hh [G·H, P], w_hr [P, H] (projection),
// w_gr [3H, 3H] (full gate recurrence), b_ih, b_hh [G·H], peep [3H].
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "../cells/cell_kinds.h"
#include "weight_gemm.h"

namespace rnnkit {

template <typename S>
struct LayerWeightsView {  // borrowed pointers, only while preparing
  const S* w_ih = nullptr;
  const S* w_hh = nullptr;
  const S* w_hr = nullptr;
  const S* w_gr = nullptr;
  const S* b_ih = nullptr;
  const S* b_hh = nullptr;
  const S* peep = nullptr;
};

template <typename S>
class PreparedLayer {
 public:
  // cfg: the cell and sizes (T and B are ignored). Copies every weight.
  PreparedLayer(const SeqConfig& cfg, const LayerWeightsView<S>& w);
  PreparedLayer(const PreparedLayer&) = delete;
  PreparedLayer& operator=(const PreparedLayer&) = delete;

  const SeqConfig& config() const { return cfg_; }
  bool has_bias_ih() const { return !b_ih_.empty(); }
  bool has_bias_hh() const { return !b_hh_.empty(); }

  // Forward products: x·W_ihᵀ, h·W_hhᵀ, m·W_hrᵀ, acts·W_grᵀ.
  const WeightGemm<S>& ih() const { return ih_; }
  const WeightGemm<S>& hh() const { return hh_; }
  const WeightGemm<S>& hr() const { return hr_; }
  const WeightGemm<S>& gr() const { return gr_; }
  // The bias added to the input projection (b_ih + b_hh, or b_ih alone for GRU-lbr), or null.
  const S* input_bias() const { return input_bias_.empty() ? nullptr : input_bias_.data(); }
  // b_hh as the GRU-lbr kernel reads it (zeros without a bias); null for other cells.
  const S* lbr_bias() const { return lbr_bias_.empty() ? nullptr : lbr_bias_.data(); }
  const S* peep() const { return peep_.empty() ? nullptr : peep_.data(); }

  // Backward products (packed on first use, once): dGates·W_hh (the r, z rows only for GRU reset
  // before), dGates_n·R_n (GRU reset before), dh·W_hr, dGates·W_gr blocks, dGates·W_ih.
  struct Backward {
    WeightGemm<S> hh_t, hn_t, hr_t, gr_t[3], ih_t;
  };
  const Backward& backward() const;

  size_t bytes() const;

 private:
  SeqConfig cfg_;
  std::vector<S> w_ih_, w_hh_, w_hr_, w_gr_, b_ih_, b_hh_, peep_, input_bias_, lbr_bias_;
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
