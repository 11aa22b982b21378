// This machine's limits, measured: the FMA peak of the widest vectors the kernels use (independent
// chains, enough accumulators to cover the FMA latency on every port), on one thread and on all the
// pool's threads at once, and the packed GEMM's rate on the recurrent step's shape (M = 64,
// N = 1024, K = 256: LSTM B = 64, H = 256) on one thread and split over the pool, and the rate at
// which one thread reads a 256 KiB buffer (more than any L1 holds, less than the L2 of the targets):
// the bound of a batch-1 recurrent step, which streams W_hh from L2 every step. The bench prints
// them in its header and each case's GFLOP/s as a fraction of the all-thread FMA peak.
#pragma once
#include <cstdint>

namespace rnnkit {

struct PeakOptions {
  double ms = 200;  // wall time spent on each of the five figures
  int threads = 1;  // participants of the all-thread figures (1 .. ThreadPool::started())
};

struct PeakResult {
  const char* isa = "generic";  // the FMA loop's build (default_isa())
  const char* gemm_isa = "generic";
  int threads = 1;
  double fma_gflops_1 = 0, fma_gflops_all = 0;
  double gemm_gflops_1 = 0, gemm_gflops_all = 0;
  double l2_read_gbs_1 = 0;  // GB/s (1e9 bytes) reading kL2ReadBytes over and over, one thread
};

// The buffer of the L2 read figure.
constexpr int64_t kL2ReadBytes = 256 << 10;

// Each figure is the best rate over repeated batches of about ms / 8 each (at least 1 ms) within
// `ms` milliseconds. The all-thread FMA figure runs one part per thread in one parallel_for; the
// GEMM figure hands each call's column panels to the pool (one parallel_for per call, as a
// recurrent step does). When another call owns the pool, parallel_for runs inline and the
// all-thread figures come out as one thread's.
PeakResult measure_peak(const PeakOptions& opt);

namespace peak_internal {
// `iters` rounds of kChains independent FMA chains on the build's widest vectors, seeded from a
// and b; returns the flops done (2 per lane per FMA) and writes a value depending on every chain
// to *sink (so nothing is optimised away).
namespace avx512 {
double fma_chains(int64_t iters, float a, float b, float* sink);
}
namespace avx2 {
double fma_chains(int64_t iters, float a, float b, float* sink);
}
double generic_fma_chains(int64_t iters, float a, float b, float* sink);
// Reads p[0, n) `reps` times with the build's widest loads into independent sums (n a multiple of
// 128); returns the bytes read and writes a value depending on every load to *sink.
namespace avx512 {
double read_stream(const float* p, int64_t n, int64_t reps, float* sink);
}
namespace avx2 {
double read_stream(const float* p, int64_t n, int64_t reps, float* sink);
}
double generic_read_stream(const float* p, int64_t n, int64_t reps, float* sink);
}  // namespace peak_internal

}  // namespace rnnkit
