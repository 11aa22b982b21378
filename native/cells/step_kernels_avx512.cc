// The avx512 build of the step kernels (compiled with avx512 flags; see CMakeLists.txt).
#define RNNKIT_KERNEL_NS avx512
#include "step_kernels_impl.h"

namespace rnnkit {
namespace avx512 {
const StepKernels<float> kStepKernelsF32 = make_step_kernels<float>("avx512");
}  // namespace avx512
}  // namespace rnnkit
