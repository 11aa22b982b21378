// The avx2 build of the step kernels (compiled with avx2 flags; see CMakeLists.txt).
#define RNNKIT_KERNEL_NS avx2
#include "step_kernels_impl.h"

namespace rnnkit {
namespace avx2 {
const StepKernels<float> kStepKernelsF32 = make_step_kernels<float>("avx2");
}  // namespace avx2
}  // namespace rnnkit
