#include "prepared.h"

namespace rnnkit {

namespace {
template <typename S>
std::vector<S> copy_of(const S* p, int64_t n) {
  return p ? std::vector<S>(p, p + n) : std::vector<S>();
}
}  // namespace

template <typename S>
PreparedLayer<S>::PreparedLayer(const SeqConfig& cfg, const LayerWeightsView<S>& w) : cfg_(cfg) {
  const int64_t H = cfg.H, I = cfg.I, GH = cfg.gate_width(), P = cfg.state_size();
  const bool lbr = cfg.cell == CellKind::kGru && cfg.linear_before_reset;
  for (int i = 0; i < kCellParamCount; ++i) {
    const CellParam p = CellParam(i);
    if (cell_has_param(cfg, p)) params_[p] = copy_of(w[p], cell_param_elems(cfg, p));
  }
  const std::vector<S>& b_ih = params_[kBiasIh];
  const std::vector<S>& b_hh = params_[kBiasHh];
  if (!b_ih.empty() || (!b_hh.empty() && !lbr)) {
    input_bias_.assign(size_t(GH), S(0));
    for (int64_t j = 0; j < GH; ++j) {
      if (!b_ih.empty()) input_bias_[j] += b_ih[j];
      if (!b_hh.empty() && !lbr) input_bias_[j] += b_hh[j];
    }
  }
  if (lbr) lbr_bias_ = b_hh.empty() ? std::vector<S>(size_t(GH), S(0)) : b_hh;
  ih_ = WeightGemm<S>::rows(param(kWeightIh), GH, I);
  hh_ = WeightGemm<S>::rows(param(kWeightHh), GH, P);
  if (has(kWeightHr)) hr_ = WeightGemm<S>::rows(param(kWeightHr), P, H);
  if (has(kWeightGr)) gr_ = WeightGemm<S>::rows(param(kWeightGr), 3 * H, 3 * H);
}

template <typename S>
const typename PreparedLayer<S>::Backward& PreparedLayer<S>::backward() const {
  std::call_once(backward_once_, [this] {
    const SeqConfig& c = cfg_;
    const int64_t H = c.H, I = c.I, GH = c.gate_width(), P = c.state_size();
    const bool rb = c.cell == CellKind::kGru && !c.linear_before_reset;
    auto b = std::make_unique<Backward>();
    const S* w_hh = param(kWeightHh);
    b->hh_t = WeightGemm<S>::cols(w_hh, rb ? 2 * H : GH, P);
    if (rb) b->hn_t = WeightGemm<S>::cols(w_hh + 2 * H * H, H, H);
    if (has(kWeightHr)) b->hr_t = WeightGemm<S>::cols(param(kWeightHr), P, H);
    if (has(kWeightGr))
      for (int j = 0; j < 3; ++j) b->gr_t[j] = WeightGemm<S>::cols(param(kWeightGr) + j * H * 3 * H, H, 3 * H);
    b->ih_t = WeightGemm<S>::cols(param(kWeightIh), GH, I);
    backward_ = std::move(b);
  });
  return *backward_;
}

template <typename S>
size_t PreparedLayer<S>::bytes() const {
  size_t n = input_bias_.size() + lbr_bias_.size();
  for (const std::vector<S>& v : params_) n += v.size();
  // float also keeps the packed copies of the forward matrices (about the same size again).
  if (sizeof(S) == 4)
    for (CellParam p : {kWeightIh, kWeightHh, kWeightHr, kWeightGr}) n += params_[p].size();
  return n * sizeof(S);
}

template class PreparedLayer<float>;
template class PreparedLayer<double>;

}  // namespace rnnkit
