#include "peak.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "isa.h"
#include "packed_gemm.h"
#include "scratch.h"
#include "thread_pool.h"

namespace rnnkit {

namespace peak_internal {
// Portable build: 12 chains of 4 lanes (12 SSE registers on the x86-64 baseline, which has no FMA:
// a multiply and an add, still 2 flops per lane; compilers that can contract them into FMAs do).
double generic_fma_chains(int64_t iters, float a, float b, float* sink) {
  constexpr int kChains = 12, kLanes = 4;
  float c[kChains][kLanes];
  for (int j = 0; j < kChains; ++j)
    for (int l = 0; l < kLanes; ++l) c[j][l] = 0.5f + b * float(j * kLanes + l);
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < kChains; ++j)
      for (int l = 0; l < kLanes; ++l) c[j][l] = c[j][l] * a + b;
  float s = 0;
  for (int j = 0; j < kChains; ++j)
    for (int l = 0; l < kLanes; ++l) s += c[j][l];
  *sink = s;
  return double(iters) * kChains * kLanes * 2.0;
}
// Portable build: 8 sums of 4 lanes (SSE loads on the x86-64 baseline).
double generic_read_stream(const float* p, int64_t n, int64_t reps, float* sink) {
  float acc[8][4] = {};
  for (int64_t r = 0; r < reps; ++r)
    for (int64_t i = 0; i < n; i += 32)
      for (int j = 0; j < 8; ++j)
        for (int l = 0; l < 4; ++l) acc[j][l] += p[i + j * 4 + l];
  float s = 0;
  for (auto& a : acc)
    for (float v : a) s += v;
  *sink = s;
  return double(reps) * double(n) * 4.0;
}
}  // namespace peak_internal

namespace {

using Clock = std::chrono::steady_clock;
using FmaChains = double (*)(int64_t, float, float, float*);

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

using ReadStream = double (*)(const float*, int64_t, int64_t, float*);

// The measuring loops of one build.
struct PeakLoops {
  FmaChains fma_chains;
  ReadStream read_stream;
};

PeakLoops loops_for(int isa) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (isa == kAvx512) return {&peak_internal::avx512::fma_chains, &peak_internal::avx512::read_stream};
  if (isa == kAvx2) return {&peak_internal::avx2::fma_chains, &peak_internal::avx2::read_stream};
#endif
  (void)isa;
  return {&peak_internal::generic_fma_chains, &peak_internal::generic_read_stream};
}

// The best rate (flops per second) of run(reps) -> flops over batches of about ms / 8 (>= 1 ms),
// within ms milliseconds; reps grows from 1 until a batch lasts that long.
template <typename Run>
double best_rate(double ms, Run&& run) {
  const double total_s = ms / 1000, batch_s = std::max(1e-3, total_s / 8);
  const Clock::time_point start = Clock::now();
  int64_t reps = 1;
  bool calibrated = false;
  double best = 0;
  for (;;) {
    const Clock::time_point t0 = Clock::now();
    const double flops = run(reps);
    const double dt = seconds_since(t0);
    if (dt > 0) best = std::max(best, flops / dt);
    if (dt >= batch_s / 2) calibrated = true;
    const double elapsed = seconds_since(start);
    if ((calibrated && elapsed >= total_s) || elapsed >= 2 * total_s + 0.05) break;
    if (dt < batch_s) {
      const double grow = dt > 0 ? batch_s / dt : 16;
      reps = std::max<int64_t>(reps + 1, int64_t(double(reps) * std::min(16.0, grow)));
    }
  }
  return best;
}

volatile float g_sink = 0;  // keeps every measured loop's result alive

}  // namespace

PeakResult measure_peak(const PeakOptions& opt) {
  PeakResult r;
  const int isa = default_isa();
  r.isa = isa_name(isa);
  r.gemm_isa = packed_gemm_isa();
  r.threads = std::max(1, opt.threads);
  const int threads = r.threads;
  const PeakLoops loops = loops_for(isa);
  const FmaChains chains = loops.fma_chains;
  // Multiplier and addend read at run time: the chains cannot be folded, and they converge to
  // b / (1 - a) = 1 (no overflow, no subnormals).
  volatile float va = 0.999999f, vb = 1e-6f;
  const float a = va, b = vb;

  r.fma_gflops_1 = best_rate(opt.ms, [&](int64_t reps) {
    float sink = 0;
    const double flops = chains(reps * 64, a, b, &sink);
    g_sink = sink;
    return flops;
  }) / 1e9;

  // A batch counts only when its parts ran on as many distinct threads as there are parts: a pool
  // worker that has not woken yet (or lost its core to another process for a while) leaves its
  // part to the caller, and such a batch measures one core, not the machine (seen: a first call
  // reading the 1-thread figure for "all threads" on a 2-core VM).
  std::vector<float> sinks(size_t(threads), 0.0f);
  std::vector<double> part_flops(size_t(threads), 0.0);
  std::vector<std::thread::id> part_thread{size_t(threads)};
  const int parts = std::min(threads, ThreadPool::instance().started());
  auto fma_all = [&](int64_t reps) {
    parallel_for(threads, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        part_thread[size_t(p)] = std::this_thread::get_id();
        part_flops[size_t(p)] = chains(reps * 64, a, b, &sinks[size_t(p)]);
      }
    });
    double flops = 0;
    for (int p = 0; p < threads; ++p) {
      flops += part_flops[size_t(p)];
      g_sink = sinks[size_t(p)];
    }
    std::vector<std::thread::id> ids(part_thread);
    std::sort(ids.begin(), ids.end());
    const bool spread = std::unique(ids.begin(), ids.end()) - ids.begin() >= parts;
    return spread ? flops : 0.0;
  };
  r.fma_gflops_all = best_rate(opt.ms, fma_all) / 1e9;
  // No batch ran on every thread (or none beat one thread): try twice more, then report what was measured.
  for (int retry = 0; retry < 2 && parts > 1 && r.fma_gflops_all < r.fma_gflops_1; ++retry)
    r.fma_gflops_all = std::max(r.fma_gflops_all, best_rate(opt.ms, fma_all) / 1e9);

  // The recurrent step's product: C[64, 1024] = A[64, 256] · W[1024, 256]ᵀ on packed W.
  constexpr int64_t M = 64, N = 1024, K = 256;
  std::vector<float> W(size_t(N * K)), A(size_t(M * K)), C(size_t(M * N));
  uint32_t state = 12345;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return float(int32_t(state >> 8) - (1 << 23)) / float(1 << 23) * 0.1f;
  };
  for (float& v : W) v = next();
  for (float& v : A) v = next();
  PackedMatrix packed;
  packed.pack(W.data(), N, K);
  const double gemm_flops = 2.0 * double(M) * double(N) * double(K);
  r.gemm_gflops_1 = best_rate(opt.ms, [&](int64_t reps) {
    for (int64_t i = 0; i < reps; ++i) packed_gemm(M, A.data(), K, packed, 0, N, false, C.data(), N);
    g_sink = C[size_t(M * N - 1)];
    return gemm_flops * double(reps);
  }) / 1e9;

  const int64_t panels = packed.num_panels(), P = PackedMatrix::panel_width();
  const ThreadPool::RangeFn slice = [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c0 = std::min(N, p * panels / threads * P), c1 = std::min(N, (p + 1) * panels / threads * P);
      packed_gemm(M, A.data(), K, packed, c0, c1, false, C.data(), N);
    }
  };
  r.gemm_gflops_all = best_rate(opt.ms, [&](int64_t reps) {
    for (int64_t i = 0; i < reps; ++i) parallel_for(threads, 1, slice);
    g_sink = C[size_t(M * N - 1)];
    return gemm_flops * double(reps);
  }) / 1e9;

  // One thread reading kL2ReadBytes again and again (warm: the first pass brings it into L2).
  // 64-byte aligned (a std::vector's 16-byte alignment splits every zmm load over two lines and
  // halves the figure).
  const ReadStream read = loops.read_stream;
  const int64_t n = kL2ReadBytes / 4;
  Scratch<float> buffer(n);
  for (int64_t i = 0; i < n; ++i) buffer.data()[i] = next();
  float sink = 0;
  read(buffer.data(), n, 1, &sink);
  r.l2_read_gbs_1 = best_rate(opt.ms, [&](int64_t reps) {
    const double bytes = read(buffer.data(), n, reps, &sink);
    g_sink = sink;
    return bytes;
  }) / 1e9;
  return r;
}

}  // namespace rnnkit
