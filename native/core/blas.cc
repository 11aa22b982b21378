#include "blas.h"

extern "C" void openblas_set_num_threads(int num_threads);

namespace rnnkit {
void blas_set_num_threads(int n) { openblas_set_num_threads(n); }
}  // namespace rnnkit
