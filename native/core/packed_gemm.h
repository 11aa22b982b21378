// Single-threaded float32 GEMM on a prepacked weight matrix, for the recurrent step of an RNN:
//
//   C[M, n0:n1] = A[M, K] · W[n0:n1, :]ᵀ  (+ C[M, n0:n1] when accumulating)
//
// W is [N, K] row-major (the PyTorch weight layout, e.g. W_hh [4H, H]); it is packed once with
// PackedMatrix::pack and reused for every time step. A is the hidden state h [M = batch, K = H] and C
// the gate pre-activations [M, N], both row-major with leading dimensions lda >= K, ldc >= N.
//
// Threading: packed_gemm itself is single-threaded. Callers parallelise by splitting the columns
// [0, N) into ranges, one call per thread; ranges aligned to PackedMatrix::panel_width() avoid
// computing (and discarding) part of a panel at each end. Concurrent calls are safe as long as they
// write disjoint columns of C.
//
// Kernels: AVX-512 (8 × 32 register tile), AVX2+FMA (6 × 16) or portable C++, chosen at run time
// from the CPU. The packed layout is the same for all three, so a PackedMatrix never depends on
// which kernel runs. Tests can force a kernel (see packed_gemm_force_isa / RNNKIT_ISA below).
// On M = 64, N = 1024, K = 256 the AVX-512 kernel runs at ~150-160 GFLOP/s on one Sapphire Rapids
// core (≈ the zmm FMA peak), 2.0-2.3× OpenBLAS 0.3.21 with its Haswell kernels.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rnnkit {

// W [N, K] row-major, repacked into column panels for the micro-kernels; owns its (64-byte aligned)
// memory. Layout (kPanelWidth = P = 32):
//
//   panel p (p in [0, ceil(N / P))) covers the columns n in [p·P, p·P + P) of C, i.e. rows of W;
//   it is K·P contiguous floats, k-major: panel(p)[k·P + j] = W[p·P + j, k], and 0 for p·P + j >= N.
//
// so the micro-kernel streams one 128-byte panel row (two zmm / four ymm) per k. Copies are not
// allowed (the matrix may be large); moves are.
class PackedMatrix {
 public:
  static constexpr int64_t kPanelWidth = 32;

  PackedMatrix() = default;
  ~PackedMatrix();
  PackedMatrix(PackedMatrix&& other) noexcept;
  PackedMatrix& operator=(PackedMatrix&& other) noexcept;
  PackedMatrix(const PackedMatrix&) = delete;
  PackedMatrix& operator=(const PackedMatrix&) = delete;

  // (Re)packs W [N, K] row-major (leading dimension K); N >= 1, K >= 0 (K = 0: the product is 0).
  // Reuses the buffer when it is big enough, so repacking to the same or a smaller size does not
  // allocate.
  void pack(const float* W, int64_t N, int64_t K);
  // Packs W = Wtᵀ from Wt [K, N] row-major with leading dimension ldw >= N (no transpose needed:
  // each panel row is a contiguous slice of a row of Wt).
  void pack_transposed(const float* Wt, int64_t K, int64_t N, int64_t ldw);

  int64_t rows() const { return n_; }  // N
  int64_t cols() const { return k_; }  // K
  bool empty() const { return n_ == 0; }
  int64_t num_panels() const { return (n_ + kPanelWidth - 1) / kPanelWidth; }
  // Panel width in columns of C; callers align column ranges to it for best speed (any range works).
  static int64_t panel_width() { return kPanelWidth; }
  // First float of panel p (K·P floats, 64-byte aligned).
  const float* panel(int64_t p) const { return data_ + p * kPanelWidth * k_; }

 private:
  void reserve(int64_t N, int64_t K);  // capacity for [N, K]; sets rows() and cols()

  float* data_ = nullptr;
  size_t capacity_ = 0;  // floats allocated at data_
  int64_t n_ = 0, k_ = 0;
};

// C[M, n0:n1] = A[M, K] · W[n0:n1, :]ᵀ + (accumulate ? C[M, n0:n1] : 0) (+ bias[n0:n1] on every
// row).  Single-threaded.
//   M >= 1; K = W.cols(); A is [M, K] with lda >= K; C points at column 0 of an [M, >= n1] matrix
//   with ldc >= n1; 0 <= n0 <= n1 <= W.rows() (an empty range does nothing). Only columns [n0, n1)
//   of C are read (when accumulating) or written. A and C need no alignment and must not overlap.
//   bias (nullptr: none) is indexed by column like C's rows; it is added once each element's sum is
//   complete, as the last operation: the same bits as adding it to C after a call without it.
void packed_gemm(int64_t M, const float* A, int64_t lda, const PackedMatrix& W, int64_t n0, int64_t n1,
                 bool accumulate, float* C, int64_t ldc, const float* bias = nullptr);

// C[M, N] = A[K, M]ᵀ · B[K, N], overwriting C (the weight gradients of BPTT: A the pre-activation
// gradients [T·B, G·H], B the inputs or states [T·B, I]). Single-threaded. Row-major, lda >= M,
// ldb >= N, ldc >= N; no alignment needed; C must not overlap A or B. Runs on the AVX-512 kernel
// (8 × 32 register tiles) or the AVX2 one (6 × 16), over chunks of A and B copied contiguous, and
// returns false, touching nothing, when the active kernel is the generic one (the caller then uses
// BLAS). K is summed in chunks of at most 128 in order and each element in one chain, so the result
// depends on the shape alone, not on how callers split the rows of C (the two kernels also do the
// same operations in the same order). Give each thread one large row range: the chunks of B are
// copied into panels once per call. (One segment of gemm_tn_packed_blocks below.)
bool gemm_tn_packed(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                    float* C, int64_t ldc);
// Whether gemm_tn_packed runs here (an AVX-512 or AVX2 kernel is active) rather than returning false.
bool gemm_tn_packed_available();

// Several products over one K that share their left operands, in one pass (a layer's weight
// gradients: dW_ih = dGᵀ·x and dW_hh = dGᵀ·h_prev read the same gate gradients dG). A segment is a
// left operand A [K, M] (lda) with up to two products C_p[M, N_b] = Aᵀ · B_b (operand b, ldc_p),
// and optionally A's column sums, col_sums[i] = Σ_k A[k, i] summed over k in order from zero (the
// bias gradients, read off A's chunks while they are copied). The segments' rows, taken in
// 32-row blocks segment after segment, are numbered [0, tn_block_count(...)); a call runs blocks
// [blk0, blk1): each chunk of an operand B it reads is copied into panels once per call, each chunk
// of a block of A once for all its products. Every element is computed as gemm_tn_packed computes
// it (the same chunks of K, the same chains), so the bits do not depend on how the products are
// grouped or the blocks split. Returns false, touching nothing, where gemm_tn_packed would.
struct TnOperand {
  const float* B;  // [K, N], row k at B + k·ldb
  int64_t ldb, N;
};
struct TnProduct {
  int operand;  // index into the operands
  float* C;     // [M, N], row i at C + i·ldc
  int64_t ldc;
};
struct TnSegment {
  const float* A;  // [K, M], row k at A + k·lda
  int64_t lda = 0, M = 0;
  float* col_sums = nullptr;  // M values, or null
  TnProduct products[2] = {};
  int num_products = 0;
};
constexpr int64_t kTnBlockRows = 32;
inline int64_t tn_block_count(const TnSegment* segs, int num_segs) {
  int64_t n = 0;
  for (int s = 0; s < num_segs; ++s) n += (segs[s].M + kTnBlockRows - 1) / kTnBlockRows;
  return n;
}
bool gemm_tn_packed_blocks(int64_t K, const TnOperand* ops, int num_ops, const TnSegment* segs, int num_segs,
                           int64_t blk0, int64_t blk1);

// Which kernel runs on this CPU: "avx512", "avx2" or "generic".
const char* packed_gemm_isa();

// For tests and benchmarks: forces a kernel ("avx512", "avx2" or "generic"; nullptr or "" restores
// the automatic choice). Returns false, changing nothing, if the name is unknown or the CPU cannot
// run that kernel. Thread-safe (calls already running keep their kernel; all kernels share the
// packed layout). The environment variable RNNKIT_ISA (same names), read once at the first call,
// sets the automatic choice without code changes; a kernel the CPU cannot run is ignored there too.
bool packed_gemm_force_isa(const char* isa);

// ---- Implementation details shared by packed_gemm*.cc (not part of the API) ------------------

namespace packed_gemm_internal {

// One K chunk of a run of consecutive panels over all M rows:
//   C[0:m, c0:c1] (+)= A[0:m, 0:kc] · B[0:kc, c0:c1], where the columns are those of panels
//   0 .. num_panels-1 of B, c0 = col_begin (in panel 0) and c1 = col_end (in the last panel).
// Invariants: m, num_panels >= 1; kc >= 0; 0 <= col_begin < 32; 1 <= col_end <= 32, and
// col_begin < col_end when num_panels == 1; B (64-byte aligned) and each panel row hold 32 floats;
// C points at column 0 of panel 0, so only C[i·ldc + c] with c in [col_begin, 32·(num_panels-1) +
// col_end) may be touched.
struct PanelTask {
  int64_t m;             // rows of A and C
  int64_t kc;            // depth of this chunk
  const float* A;        // A[0, k0]; row i at A + i·lda
  int64_t lda;
  const float* B;        // panel 0 at row k0: B[k·32 + j]
  int64_t panel_stride;  // floats from one panel to the next (32·K)
  int64_t num_panels;
  int col_begin;         // first column written in panel 0
  int col_end;           // one past the last column written in the last panel
  bool accumulate;       // add to C instead of overwriting it
  float* C;              // C[0, column 0 of panel 0]
  int64_t ldc;
  const float* bias;     // bias[column 0 of panel 0], added to every row after the sum; nullptr: none
};

// One K chunk of gemm_tn_packed over up to 32 rows of C: C[0:m, 0:n] (+)= A[0:kc, 0:m]ᵀ · B[0:kc, 0:n],
// B in 32-column panels (panel p: kc rows of 32 floats, 64-byte aligned, zero past n).
struct TnTask {
  int64_t m, n, kc;
  const float* A;  // A[k, i] at A[k·lda + i]
  int64_t lda;
  const float* B;  // B[k, p·32 + j] at B[p·panel_stride + k·32 + j]
  int64_t panel_stride;
  float* C;
  int64_t ldc;
  bool accumulate;
};

// The ISA-specific macro-kernels (each in its own translation unit, compiled with its own flags).
namespace avx512 {
void run_panels(const PanelTask& t);
void run_tn(const TnTask& t);
}
namespace avx2 {
void run_panels(const PanelTask& t);
void run_tn(const TnTask& t);
}

}  // namespace packed_gemm_internal

}  // namespace rnnkit
