// GEMMs against one weight matrix that a sequence reuses at every step:
//   rows(W [N, K]):  C[M, n0:n1] (+)= A[M, K] · W[n0:n1, :]ᵀ   (x·W_ihᵀ, h·W_hhᵀ)
//   cols(W [K, N]):  C[M, n0:n1] (+)= A[M, K] · W[:, n0:n1]     (dGates·W_hh in BPTT)
// float packs W once into the panels of packed_gemm (AVX-512/AVX2 micro-kernels); double calls BLAS.
// run() is single-threaded and writes only columns [n0, n1), so threads may split the columns.
#pragma once
#include <cstdint>
#include <type_traits>
#include <vector>

#include "blas.h"
#include "packed_gemm.h"

namespace rnnkit {

template <typename S>
class WeightGemm {
 public:
  static WeightGemm rows(const S* W, int64_t N, int64_t K) { return WeightGemm(W, N, K, false); }
  static WeightGemm cols(const S* W, int64_t K, int64_t N) { return WeightGemm(W, N, K, true); }
  // A placeholder for a matrix the configuration does not have; never run.
  static WeightGemm none() { return WeightGemm(); }
  WeightGemm() : w_(nullptr), N_(0), K_(0), transposed_(false) {}

  int64_t n() const { return N_; }

  // bias (nullptr: none; indexed by column): added to every row of C[:, n0:n1) once its sums are
  // complete (the packed kernels add it as they store; BLAS's result gets it after).
  void run(int64_t M, const S* A, int64_t lda, int64_t n0, int64_t n1, bool accumulate, S* C, int64_t ldc,
           const S* bias = nullptr) const {
    if (n1 <= n0) return;
    if constexpr (std::is_same_v<S, float>) {
      packed_gemm(M, A, lda, packed_, n0, n1, accumulate, C, ldc, bias);
      return;
    } else if (transposed_) {
      gemm(false, false, M, n1 - n0, K_, S(1), A, lda, w_ + n0, N_, accumulate ? S(1) : S(0), C + n0, ldc);
    } else {
      gemm(false, true, M, n1 - n0, K_, S(1), A, lda, w_ + n0 * K_, K_, accumulate ? S(1) : S(0), C + n0, ldc);
    }
    if (bias)
      for (int64_t r = 0; r < M; ++r) {
        S* row = C + r * ldc;
        for (int64_t j = n0; j < n1; ++j) row[j] += bias[j];
      }
  }

 private:
  WeightGemm(const S* W, int64_t N, int64_t K, bool transposed) : w_(W), N_(N), K_(K), transposed_(transposed) {
    if constexpr (std::is_same_v<S, float>) {
      if (!transposed) packed_.pack(W, N, K);
      else packed_.pack_transposed(W, K, N, N);  // W is [K, N]
    }
  }

  const S* w_;
  int64_t N_, K_;
  bool transposed_;
  PackedMatrix packed_;  // float only
};

}  // namespace rnnkit
