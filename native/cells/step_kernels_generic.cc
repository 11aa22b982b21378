// The portable build of the step kernels, and the choice of build for this CPU.
#define RNNKIT_KERNEL_NS generic
#include "step_kernels_impl.h"

#include "../core/isa.h"

namespace rnnkit {
namespace generic {
const StepKernels<float> kStepKernelsF32 = make_step_kernels<float>("generic");
const StepKernels<double> kStepKernelsF64 = make_step_kernels<double>("generic");
}  // namespace generic

namespace {
// The build for this CPU (or RNNKIT_ISA), from the detector the packed GEMM uses too.
const StepKernels<float>* choose_f32() {
#if defined(__x86_64__) && defined(__GNUC__)
  const int isa = default_isa();
  if (isa == kAvx512) return &avx512::kStepKernelsF32;
  if (isa == kAvx2) return &avx2::kStepKernelsF32;
#endif
  return &generic::kStepKernelsF32;
}
}  // namespace

template <>
const StepKernels<float>& step_kernels<float>() {
  static const StepKernels<float>* table = choose_f32();
  return *table;
}
template <>
const StepKernels<double>& step_kernels<double>() {
  return generic::kStepKernelsF64;
}

}  // namespace rnnkit
