// The portable build of the step kernels, and the choice of build for this CPU.
#define RNNKIT_KERNEL_NS generic
#include "step_kernels_impl.h"

#include <cstdlib>
#include <cstring>

namespace rnnkit {
namespace generic {
const StepKernels<float> kStepKernelsF32 = make_step_kernels<float>("generic");
const StepKernels<double> kStepKernelsF64 = make_step_kernels<double>("generic");
}  // namespace generic

namespace {
const StepKernels<float>* choose_f32() {
  // RNNKIT_ISA=generic|avx2 forces a slower build (tests use it to cover every path).
  const char* forced = std::getenv("RNNKIT_ISA");
#if defined(__x86_64__) || defined(__i386__)
  bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (forced && std::strcmp(forced, "generic") == 0) avx512 = avx2 = false;
  if (forced && std::strcmp(forced, "avx2") == 0) avx512 = false;
  if (avx512) return &avx512::kStepKernelsF32;
  if (avx2) return &avx2::kStepKernelsF32;
#endif
  (void)forced;
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
