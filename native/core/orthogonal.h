// Orthonormalising the rows of a square matrix (orthogonal weight initialisation).
#pragma once
#include <cstdint>

namespace rnnkit {

// Q [n, n] row-major, in place: Gram–Schmidt over panels of rows, each panel made orthogonal to all
// earlier rows with two level-3 passes (CGS2, stable in double) and then within itself. A row that
// vanishes is left at zero.
void orthonormalize_rows(double* Q, int64_t n);

}  // namespace rnnkit
