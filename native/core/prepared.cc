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
  const bool lstm = cfg.cell == CellKind::kLstm;
  const bool lbr = cfg.cell == CellKind::kGru && cfg.linear_before_reset;
  w_ih_ = copy_of(w.w_ih, GH * I);
  w_hh_ = copy_of(w.w_hh, GH * P);
  if (cfg.P > 0) w_hr_ = copy_of(w.w_hr, P * H);
  if (lstm && cfg.opt.full_gate_recurrence) w_gr_ = copy_of(w.w_gr, 9 * H * H);
  b_ih_ = copy_of(w.b_ih, GH);
  b_hh_ = copy_of(w.b_hh, GH);
  if (lstm && cfg.opt.peephole) peep_ = copy_of(w.peep, 3 * H);
  if (!b_ih_.empty() || (!b_hh_.empty() && !lbr)) {
    input_bias_.assign(size_t(GH), S(0));
    for (int64_t j = 0; j < GH; ++j) {
      if (!b_ih_.empty()) input_bias_[j] += b_ih_[j];
      if (!b_hh_.empty() && !lbr) input_bias_[j] += b_hh_[j];
    }
  }
  if (lbr) lbr_bias_ = b_hh_.empty() ? std::vector<S>(size_t(GH), S(0)) : b_hh_;
  ih_ = WeightGemm<S>::rows(w_ih_.data(), GH, I);
  hh_ = WeightGemm<S>::rows(w_hh_.data(), GH, P);
  if (!w_hr_.empty()) hr_ = WeightGemm<S>::rows(w_hr_.data(), P, H);
  if (!w_gr_.empty()) gr_ = WeightGemm<S>::rows(w_gr_.data(), 3 * H, 3 * H);
}

template <typename S>
const typename PreparedLayer<S>::Backward& PreparedLayer<S>::backward() const {
  std::call_once(backward_once_, [this] {
    const SeqConfig& c = cfg_;
    const int64_t H = c.H, I = c.I, GH = c.gate_width(), P = c.state_size();
    const bool rb = c.cell == CellKind::kGru && !c.linear_before_reset;
    auto b = std::make_unique<Backward>();
    b->hh_t = WeightGemm<S>::cols(w_hh_.data(), rb ? 2 * H : GH, P);
    if (rb) b->hn_t = WeightGemm<S>::cols(w_hh_.data() + 2 * H * H, H, H);
    if (!w_hr_.empty()) b->hr_t = WeightGemm<S>::cols(w_hr_.data(), P, H);
    if (!w_gr_.empty())
      for (int j = 0; j < 3; ++j) b->gr_t[j] = WeightGemm<S>::cols(w_gr_.data() + j * H * 3 * H, H, 3 * H);
    b->ih_t = WeightGemm<S>::cols(w_ih_.data(), GH, I);
    backward_ = std::move(b);
  });
  return *backward_;
}

template <typename S>
size_t PreparedLayer<S>::bytes() const {
  size_t n = w_ih_.size() + w_hh_.size() + w_hr_.size() + w_gr_.size() + b_ih_.size() + b_hh_.size() + peep_.size() +
             input_bias_.size() + lbr_bias_.size();
  // float also keeps the packed copies of the forward matrices (about the same size again).
  if (sizeof(S) == 4) n += w_ih_.size() + w_hh_.size() + w_hr_.size() + w_gr_.size();
  return n * sizeof(S);
}

template class PreparedLayer<float>;
template class PreparedLayer<double>;

}  // namespace rnnkit
