// packed_gemm: packing, run-time kernel dispatch, cache blocking and the portable kernel.
// The AVX2 / AVX-512 micro-kernels live in packed_gemm_avx2.cc / packed_gemm_avx512.cc (compiled with
// their own -m flags); this file is compiled for baseline x86-64 and must not inline any of them.
#include "packed_gemm.h"
#include "isa.h"
#include "scratch.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

namespace rnnkit {

namespace {

constexpr int64_t kP = PackedMatrix::kPanelWidth;
constexpr std::align_val_t kAlign{64};

// ---- Cache blocking (sizes in floats; L1d 32-48 KiB, L2 >= 1 MiB on the targets) ----------------
// K is cut into chunks of at most kKcMax so that a panel chunk (kc × 32 floats = 32 KiB at kc = 256)
// stays in L1 while all row blocks of A use it. Longer K is split into near-equal chunks; the
// partial sums go through C (the first chunk honours `accumulate`, the others accumulate), and as
// every kernel goes on from the C it stored, the chunks change no bit of the result. With
// M <= kMNoKChunks there is a single row block (8 rows for AVX-512), nothing reuses the panel, and
// chunking would only re-read C and break the panel stream (measured 3-8% slower at M = 1-8).
constexpr int64_t kKcMax = 256;
constexpr int64_t kMNoKChunks = 8;
// M blocking. Up to kMSingleBlock rows form one block: every panel runs down all M rows (the
// cheapest order while A and C fit in L2). For larger M, the traffic on C dominates: a panel touches
// 2 lines in each of its rows, 4·ldc bytes apart; with at most 32 rows per block the next panel
// continues the same 32 page-streams, which the hardware prefetcher follows, while with hundreds
// of rows every C access misses. The cost of a smaller block is that W is re-read once per block
// (2·mc flops per W float), so mc grows with the W range: from 32 rows up to 1 MiB of W to 256
// rows from 8 MiB (where W comes from L3 rather than L2).
constexpr int64_t kMSingleBlock = 64;
constexpr int64_t kMcMin = 32, kMcMax = 256;
constexpr int64_t kWBytesPerMcRow = 32 << 10;

// Number of chunks of at most max_chunk that n is cut into; chunk c is [c·n / count, (c+1)·n / count)
// (near-equal sizes, none empty).
inline int64_t chunk_count(int64_t n, int64_t max_chunk) { return (n + max_chunk - 1) / max_chunk; }

// ---- Portable kernel ----------------------------------------------------------------------------
// One row of A times one panel: acc[0:32] = C[0, 0:32] (accumulating; else 0) + A[0, 0:kc] ·
// B[0:kc, 0:32], then columns [lo, hi) of the C row are stored (plus bias[lo, hi) when given):
// each element one chain over k in order, as in the AVX kernels (batch invariance,
// packed_gemm_avx512.cc). The compiler keeps acc in 8 SSE registers (baseline x86-64: ~20 GFLOP/s
// on the development machine, where wider tiles of this plain form came out 1.5-8x slower).
void generic_row(int64_t kc, const float* A, const float* B, float* C, int lo, int hi, bool accumulate, const float* bias) {
  float acc[kP] = {};
  if (accumulate)
    for (int j = lo; j < hi; ++j) acc[j] = C[j];
  for (int64_t k = 0; k < kc; ++k) {
    const float a = A[k];
    const float* b = B + k * kP;
    for (int j = 0; j < kP; ++j) acc[j] += a * b[j];
  }
  if (bias)
    for (int j = lo; j < hi; ++j) C[j] = acc[j] + bias[j];
  else
    for (int j = lo; j < hi; ++j) C[j] = acc[j];
}

void generic_run_panels(const packed_gemm_internal::PanelTask& t) {
  for (int64_t p = 0; p < t.num_panels; ++p) {
    const int lo = p == 0 ? t.col_begin : 0;
    const int hi = p == t.num_panels - 1 ? t.col_end : static_cast<int>(kP);
    const float* B = t.B + p * t.panel_stride;
    float* C = t.C + p * kP;
    const float* bias = t.bias ? t.bias + p * kP : nullptr;
    for (int64_t i = 0; i < t.m; ++i) generic_row(t.kc, t.A + i * t.lda, B, C + i * t.ldc, lo, hi, t.accumulate, bias);
  }
}

// ---- Run-time dispatch --------------------------------------------------------------------------
// The ISA comes from the shared detector (isa.h); packed_gemm_force_isa can override it for tests.
std::atomic<int> g_forced_isa{kAuto};  // set by packed_gemm_force_isa

int active_isa() {
  const int forced = g_forced_isa.load(std::memory_order_relaxed);
  return forced != kAuto ? forced : default_isa();
}

using RunPanels = void (*)(const packed_gemm_internal::PanelTask&);

RunPanels kernel_for(int isa) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (isa == kAvx512) return &packed_gemm_internal::avx512::run_panels;
  if (isa == kAvx2) return &packed_gemm_internal::avx2::run_panels;
#else
  (void)isa;
#endif
  return &generic_run_panels;
}

}  // namespace

// ---- PackedMatrix -----------------------------------------------------------------------------

PackedMatrix::~PackedMatrix() {
  if (data_) ::operator delete(data_, kAlign);
}

PackedMatrix::PackedMatrix(PackedMatrix&& other) noexcept
    : data_(other.data_), capacity_(other.capacity_), n_(other.n_), k_(other.k_) {
  other.data_ = nullptr;
  other.capacity_ = 0;
  other.n_ = other.k_ = 0;
}

PackedMatrix& PackedMatrix::operator=(PackedMatrix&& other) noexcept {
  if (this != &other) {
    if (data_) ::operator delete(data_, kAlign);
    data_ = other.data_;
    capacity_ = other.capacity_;
    n_ = other.n_;
    k_ = other.k_;
    other.data_ = nullptr;
    other.capacity_ = 0;
    other.n_ = other.k_ = 0;
  }
  return *this;
}

void PackedMatrix::reserve(int64_t N, int64_t K) {
  const int64_t panels = (N + kP - 1) / kP;
  const size_t need = static_cast<size_t>(panels * kP * K);
  if (need > capacity_) {
    if (data_) ::operator delete(data_, kAlign);
    data_ = nullptr;  // stays valid (empty) if the allocation throws
    capacity_ = 0;
    n_ = k_ = 0;
    data_ = static_cast<float*>(::operator new(need * sizeof(float), kAlign));
    capacity_ = need;
  }
  n_ = N;
  k_ = K;
}

void PackedMatrix::pack(const float* W, int64_t N, int64_t K) {
  reserve(N, K);
  const int64_t panels = num_panels();
  // panel(p)[k·P + j] = W[p·P + j, k], a transpose of each 32-row strip of W, done in blocks of
  // kPackK columns so that the destination block (kPackK × 32 floats = 2 KiB) stays in L1 while the
  // 32 source rows are read 64 bytes at a time.
  constexpr int64_t kPackK = 16;
  for (int64_t p = 0; p < panels; ++p) {
    float* panel = data_ + p * kP * K;
    const float* strip = W + p * kP * K;
    const int64_t width = std::min(kP, N - p * kP);
    for (int64_t k0 = 0; k0 < K; k0 += kPackK) {
      const int64_t k1 = std::min(K, k0 + kPackK);
      for (int64_t j = 0; j < width; ++j)
        for (int64_t k = k0; k < k1; ++k) panel[k * kP + j] = strip[j * K + k];
      for (int64_t j = width; j < kP; ++j)  // zero padding of the last panel
        for (int64_t k = k0; k < k1; ++k) panel[k * kP + j] = 0.0f;
    }
  }
}

void PackedMatrix::pack_transposed(const float* Wt, int64_t K, int64_t N, int64_t ldw) {
  reserve(N, K);
  const int64_t panels = num_panels();
  // panel(p)[k·P + j] = Wt[k, p·P + j]: each panel row is a contiguous slice of a row of Wt.
  for (int64_t p = 0; p < panels; ++p) {
    float* panel = data_ + p * kP * K;
    const int64_t width = std::min(kP, N - p * kP);
    for (int64_t k = 0; k < K; ++k) {
      const float* src = Wt + k * ldw + p * kP;
      float* dst = panel + k * kP;
      for (int64_t j = 0; j < width; ++j) dst[j] = src[j];
      for (int64_t j = width; j < kP; ++j) dst[j] = 0.0f;
    }
  }
}

// ---- packed_gemm ------------------------------------------------------------------------------

void packed_gemm(int64_t M, const float* A, int64_t lda, const PackedMatrix& W, int64_t n0, int64_t n1,
                 bool accumulate, float* C, int64_t ldc, const float* bias) {
  if (M <= 0 || n1 <= n0 || W.empty()) return;
  const int64_t K = W.cols();
  const RunPanels run = kernel_for(active_isa());

  // Panels p0 .. p1-1 hold the columns [n0, n1); the first and last may be partial.
  const int64_t p0 = n0 / kP, p1 = (n1 + kP - 1) / kP;
  packed_gemm_internal::PanelTask t;
  t.lda = lda;
  t.ldc = ldc;
  t.panel_stride = kP * K;
  t.num_panels = p1 - p0;
  t.col_begin = static_cast<int>(n0 - p0 * kP);
  t.col_end = static_cast<int>(n1 - (p1 - 1) * kP);

  const int64_t w_bytes = (p1 - p0) * kP * K * static_cast<int64_t>(sizeof(float));
  const int64_t mc = M <= kMSingleBlock ? M : std::min(kMcMax, std::max(kMcMin, w_bytes / kWBytesPerMcRow));
  const int64_t m_chunks = chunk_count(M, mc);
  const int64_t k_chunks = M <= kMNoKChunks || K == 0 ? 1 : chunk_count(K, kKcMax);  // K = 0: C = 0 (or kept)
  for (int64_t mb = 0; mb < m_chunks; ++mb) {
    const int64_t m_begin = mb * M / m_chunks, m_end = (mb + 1) * M / m_chunks;
    t.m = m_end - m_begin;
    t.C = C + m_begin * ldc + p0 * kP;
    for (int64_t kb = 0; kb < k_chunks; ++kb) {
      const int64_t k_begin = kb * K / k_chunks, k_end = (kb + 1) * K / k_chunks;
      t.kc = k_end - k_begin;
      t.A = A + m_begin * lda + k_begin;
      t.B = W.panel(p0) + k_begin * kP;
      t.accumulate = accumulate || kb > 0;
      t.bias = bias && kb == k_chunks - 1 ? bias + p0 * kP : nullptr;  // once the sums are complete
      run(t);
    }
  }
}

namespace {

using TnRun = void (*)(const packed_gemm_internal::TnTask&);

// The active ISA's gemm_tn tile driver, or null (generic: no packed gemm_tn).
TnRun tn_kernel() {
  const int isa = active_isa();
  if (isa == kAvx512) return &packed_gemm_internal::avx512::run_tn;
  if (isa == kAvx2) return &packed_gemm_internal::avx2::run_tn;
  return nullptr;
}

// K in near-equal chunks of at most kTnKc rows, in order (gemm_tn_packed's and the blocks' alike).
constexpr int64_t kTnKc = 128;

// Rows [k_begin, k_begin + kc) of B [·, N] into 32-column panels (kc × 128 contiguous bytes each,
// zero past N; panel p at dst + p·kc·32).
void pack_b_chunk(const float* B, int64_t ldb, int64_t N, int64_t k_begin, int64_t kc, float* dst0) {
  const int64_t np = (N + kP - 1) / kP;
  for (int64_t p = 0; p < np; ++p) {
    const int64_t j0 = p * kP, w = std::min(kP, N - j0);
    float* dst = dst0 + p * kc * kP;
    if (w == kP) {  // (a constant size: the copy is inlined as a few vector moves)
      for (int64_t k = 0; k < kc; ++k, dst += kP) std::memcpy(dst, B + (k_begin + k) * ldb + j0, sizeof(float) * kP);
    } else {
      for (int64_t k = 0; k < kc; ++k, dst += kP) {
        std::memcpy(dst, B + (k_begin + k) * ldb + j0, size_t(w) * sizeof(float));
        std::memset(dst + w, 0, size_t(kP - w) * sizeof(float));
      }
    }
  }
}

// Rows [0, kc) of the mb (≤ 32) columns at a_src (leading dimension lda) into kc × mb contiguous
// floats; with col_sums (mb values), also adds each column's rows to it, in order.
void pack_a_chunk(const float* a_src, int64_t lda, int64_t kc, int64_t mb, float* apack, float* col_sums) {
  // 128-byte rows: a constant-size copy (a variable one compiled to `rep movsq`, whose start-up
  // cost made this loop ~7% of a 2-layer BiLSTM training step on Zen 5).
  if (mb == kTnBlockRows) {
    for (int64_t k = 0; k < kc; ++k) std::memcpy(apack + k * kTnBlockRows, a_src + k * lda, sizeof(float) * kTnBlockRows);
    if (col_sums) {  // in a local block the compiler keeps in registers; each column's rows in order
      float acc[kTnBlockRows];
      std::copy(col_sums, col_sums + kTnBlockRows, acc);
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t j = 0; j < kTnBlockRows; ++j) acc[j] += apack[k * kTnBlockRows + j];
      std::copy(acc, acc + kTnBlockRows, col_sums);
    }
  } else {
    for (int64_t k = 0; k < kc; ++k) std::memcpy(apack + k * mb, a_src + k * lda, size_t(mb) * sizeof(float));
    if (col_sums)
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t j = 0; j < mb; ++j) col_sums[j] += apack[k * mb + j];
  }
}

}  // namespace

bool gemm_tn_packed_available() { return tn_kernel() != nullptr; }

bool gemm_tn_packed(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                    float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return gemm_tn_packed_available();  // (nothing to write)
  const TnOperand op{B, ldb, N};
  TnSegment seg;
  seg.A = A;
  seg.lda = lda;
  seg.M = M;
  seg.products[0] = TnProduct{0, C, ldc};
  seg.num_products = 1;
  return gemm_tn_packed_blocks(K, &op, 1, &seg, 1, 0, tn_block_count(&seg, 1));
}

bool gemm_tn_packed_blocks(int64_t K, const TnOperand* ops, int num_ops, const TnSegment* segs, int num_segs,
                           int64_t blk0, int64_t blk1) {
  const TnRun run_tn = tn_kernel();
  if (!run_tn) return false;
  // The blocks of the range: (segment, first row, rows).
  struct Block {
    int seg;
    int64_t r0, mb;
  };
  std::vector<Block> blocks;
  std::vector<char> used(size_t(num_ops), 0);
  for (int s = 0, g = 0; s < num_segs && g < blk1; ++s) {
    for (int64_t r0 = 0; r0 < segs[s].M && g < blk1; r0 += kTnBlockRows, ++g) {
      if (g < blk0) continue;
      blocks.push_back(Block{s, r0, std::min(kTnBlockRows, segs[s].M - r0)});
      for (int p = 0; p < segs[s].num_products; ++p) used[size_t(segs[s].products[p].operand)] = 1;
    }
  }
  for (const Block& b : blocks)
    if (float* cs = segs[b.seg].col_sums) std::fill(cs + b.r0, cs + b.r0 + b.mb, 0.f);
  if (K <= 0) {
    for (const Block& b : blocks) {
      const TnSegment& sg = segs[b.seg];
      for (int p = 0; p < sg.num_products; ++p) {
        const TnProduct& pr = sg.products[p];
        for (int64_t i = b.r0; i < b.r0 + b.mb; ++i)
          std::memset(pr.C + i * pr.ldc, 0, size_t(ops[pr.operand].N) * sizeof(float));
      }
    }
    return true;
  }
  // Each chunk of an operand is copied once into 32-column panels (kc × 128 contiguous bytes each,
  // zero past N) and each chunk of a 32-row block of A into kc × 32 contiguous floats: read in
  // place, rows 4·lda and 4·ldb bytes apart (4 KiB for 4H = 1024) fall into the same few L1 sets
  // and every tile missed L1 (measured 1.4× OpenBLAS-Haswell in place, against ~2.5× packed).
  const int64_t k_chunks = chunk_count(K, kTnKc);
  const int64_t kc_max = (K + k_chunks - 1) / k_chunks;
  std::vector<int64_t> offset(size_t(num_ops), 0);
  int64_t total = 0;
  for (int b = 0; b < num_ops; ++b) {
    offset[size_t(b)] = total;
    if (used[size_t(b)]) total += kc_max * ((ops[b].N + kP - 1) / kP) * kP;
  }
  Scratch<float> bpack(total), apack(kc_max * kTnBlockRows);
  packed_gemm_internal::TnTask t;
  for (int64_t kb = 0; kb < k_chunks; ++kb) {
    const int64_t k_begin = kb * K / k_chunks, k_end = (kb + 1) * K / k_chunks, kc = k_end - k_begin;
    for (int b = 0; b < num_ops; ++b)
      if (used[size_t(b)]) pack_b_chunk(ops[b].B, ops[b].ldb, ops[b].N, k_begin, kc, bpack.data() + offset[size_t(b)]);
    t.kc = kc;
    t.panel_stride = kc * kP;
    t.accumulate = kb > 0;
    for (const Block& blk : blocks) {
      const TnSegment& sg = segs[blk.seg];
      pack_a_chunk(sg.A + k_begin * sg.lda + blk.r0, sg.lda, kc, blk.mb, apack.data(),
                   sg.col_sums ? sg.col_sums + blk.r0 : nullptr);
      t.m = blk.mb;
      t.A = apack.data();
      t.lda = blk.mb;
      for (int p = 0; p < sg.num_products; ++p) {
        const TnProduct& pr = sg.products[p];
        t.n = ops[pr.operand].N;
        t.B = bpack.data() + offset[size_t(pr.operand)];
        t.C = pr.C + blk.r0 * pr.ldc;
        t.ldc = pr.ldc;
        run_tn(t);
      }
    }
  }
  return true;
}

const char* packed_gemm_isa() { return isa_name(active_isa()); }

bool packed_gemm_force_isa(const char* isa) {
  const int want = parse_isa(isa);
  if (want == kAuto) {
    if (isa != nullptr && *isa != '\0') return false;  // unknown name
    g_forced_isa.store(kAuto);
    return true;
  }
  if (want > best_isa()) return false;
  g_forced_isa.store(want);
  return true;
}

}  // namespace rnnkit
