#include "orthogonal.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "blas.h"

namespace rnnkit {

void orthonormalize_rows(double* Q, int64_t n) {
  constexpr int64_t kPanel = 64;
  std::vector<double> coeff(size_t(kPanel * n));
  for (int64_t p0 = 0; p0 < n; p0 += kPanel) {
    const int64_t m = std::min(kPanel, n - p0);
    double* panel = Q + p0 * n;  // [m, n]
    if (p0 > 0) {
      for (int pass = 0; pass < 2; ++pass) {
        // coeff[m, p0] = panel · Q[0:p0]ᵀ ;  panel −= coeff · Q[0:p0]
        gemm(false, true, m, p0, n, 1.0, panel, n, Q, n, 0.0, coeff.data(), p0);
        gemm(false, false, m, n, p0, -1.0, coeff.data(), p0, Q, n, 1.0, panel, n);
      }
    }
    for (int64_t r = 0; r < m; ++r) {  // within the panel: modified Gram–Schmidt, twice
      double* row = panel + r * n;
      for (int pass = 0; pass < 2; ++pass) {
        for (int64_t q = 0; q < r; ++q) {
          const double* other = panel + q * n;
          double dot = 0;
          for (int64_t k = 0; k < n; ++k) dot += row[k] * other[k];
          for (int64_t k = 0; k < n; ++k) row[k] -= dot * other[k];
        }
      }
      double norm = 0;
      for (int64_t k = 0; k < n; ++k) norm += row[k] * row[k];
      norm = std::sqrt(norm);
      const double scale = norm > 0 ? 1.0 / norm : 0.0;
      for (int64_t k = 0; k < n; ++k) row[k] *= scale;
    }
  }
}

}  // namespace rnnkit
