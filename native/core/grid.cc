#include "grid.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>

#include "scratch.h"
#include "thread_pool.h"

namespace rnnkit {

namespace {

inline uint64_t mix64(uint64_t z) {  // splitmix64's finaliser
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

inline uint64_t row_key(uint64_t seed, uint64_t stream, int64_t t, int64_t b) {
  return mix64(mix64(mix64(seed ^ mix64(stream)) + uint64_t(t)) + uint64_t(b));
}

inline double keep_value(uint64_t key, int64_t j, double keep) {
  const double u = double(mix64(key + uint64_t(j) * 0xd1b54a32d192ed03ull) >> 11) * 0x1.0p-53;
  return u < keep ? 1.0 / keep : 0.0;
}

// Row (t, b) of a [T, B, ·] (time-major) or [B, T, ·] (batch-major) matrix.
inline int64_t row_of(bool batch_first, int64_t T, int64_t B, int64_t t, int64_t b) {
  return batch_first ? b * T + t : t * B + b;
}

// Streams: one per (layer, direction, kind) so that no two masks share draws.
enum StreamKind : uint64_t { kInput = 1, kState = 2, kOutput = 3, kBetween = 4 };
inline uint64_t stream_of(int layer, int dir, StreamKind kind) { return (uint64_t(layer) << 16) | (uint64_t(dir) << 8) | kind; }

// The packing of one call and, per direction, where each packed row comes from and goes to.
struct Packing {
  int64_t T = 0, B = 0, S = 0, N = 0;
  std::vector<int64_t> perm;     // sorted row r -> caller's sequence b
  std::vector<int64_t> rank;     // caller's sequence b -> sorted row r
  std::vector<int64_t> count;    // [B] valid steps of sequence b (caller order)
  std::vector<int64_t> sizes, offsets;
  bool uniform = true;
  bool carry = false;            // mask semantics: outputs carried over invalid positions
  // Per direction d: for packed row q, the caller's time index and sequence; for (b, position p),
  // the packed row whose output lands there (−1: none); positions in processing order.
  std::vector<int32_t> src_t[2], src_b[2];
  std::vector<int32_t> slot[2];  // [B, T]
  bool ascending[2] = {true, false};
  StepPlan plan() const {
    StepPlan p;
    p.T = S; p.B = B;
    if (!uniform) { p.sizes = sizes.data(); p.offsets = offsets.data(); }
    return p;
  }
};

// Orders the batch by valid-step count (longest first, stable) and fills every map. reverse[d]:
// direction d processes each sequence's valid times backwards.
Packing make_packing(const GridShape& g, const bool* reverse, int directions) {
  Packing k;
  const int64_t T = g.T, B = g.B;
  k.T = T; k.B = B;
  k.carry = g.mask != nullptr;
  // The valid times of each sequence, in order.
  std::vector<int32_t> times(size_t(B * T));
  k.count.assign(size_t(B), T);
  for (int64_t b = 0; b < B; ++b) {
    int32_t* tb = times.data() + b * T;
    int64_t n = 0;
    if (g.mask) {
      for (int64_t t = 0; t < T; ++t) if (g.mask[b * T + t]) tb[n++] = int32_t(t);
    } else {
      n = g.lengths ? g.lengths[b] : T;
      const int64_t first = g.lengths && g.pre_padding ? T - n : 0;
      for (int64_t i = 0; i < n; ++i) tb[i] = int32_t(first + i);
    }
    k.count[b] = n;
  }
  k.perm.resize(size_t(B));
  std::iota(k.perm.begin(), k.perm.end(), 0);
  std::stable_sort(k.perm.begin(), k.perm.end(), [&](int64_t a, int64_t b) { return k.count[a] > k.count[b]; });
  k.rank.resize(size_t(B));
  for (int64_t r = 0; r < B; ++r) k.rank[k.perm[r]] = r;
  k.S = k.count[k.perm[0]];
  k.sizes.assign(size_t(k.S), 0);
  for (int64_t r = 0; r < B; ++r)
    for (int64_t s = 0; s < k.count[k.perm[r]]; ++s) ++k.sizes[s];
  k.offsets.assign(size_t(k.S + 1), 0);
  for (int64_t s = 0; s < k.S; ++s) k.offsets[s + 1] = k.offsets[s] + k.sizes[s];
  k.N = k.offsets[k.S];
  k.uniform = k.S == T && k.sizes[T - 1] == B;
  for (int d = 0; d < directions; ++d) {
    k.src_t[d].assign(size_t(k.N), 0);
    k.src_b[d].assign(size_t(k.N), 0);
    k.slot[d].assign(size_t(B * T), -1);
    const bool rev = reverse[d];
    const bool proc = g.processing_order_output;
    k.ascending[d] = proc || !rev;
    for (int64_t r = 0; r < B; ++r) {
      const int64_t b = k.perm[r], n = k.count[b];
      for (int64_t s = 0; s < n; ++s) {
        const int64_t q = k.offsets[s] + r;
        const int32_t t = times[b * T + (rev ? n - 1 - s : s)];
        k.src_t[d][q] = t;
        k.src_b[d][q] = int32_t(b);
        int64_t pos = t;
        if (proc) pos = g.mask ? T - 1 - t : s;
        k.slot[d][b * T + pos] = int32_t(q);
      }
    }
  }
  return k;
}

// Whether the two directions of a layer should run at the same time, each on one thread (the
// calls inside a direction then run inline): when the pool has no more threads than there are
// directions, or when a step is too small to be split across the pool anyway. With 2 threads this
// beats splitting each step of each direction in two on every shape measured, because the
// threads stop meeting at a barrier every step and each keeps its own direction's weights in its
// own cache: 2-layer BiLSTM(128 → 256) B = 32, T = 50 training 101.5–104.5 against 106.9–109.8 ms,
// inference 24.7–27.4 against 29.3–31.2 ms; BiLSTM(256 → 512) B = 64, T = 100 training 538–582
// against 636–642 ms; BiLSTM(64 → 128) B = 128 training 48.2–48.7 against 63.4–66.9 ms; BiLSTM
// (128 → 1024) B = 16 inference 62.0–62.7 against 65.0–65.9 ms (alternating, same build). With more
// threads than directions the steps are still split, so that no thread idles.
bool directions_concurrently(const SeqConfig& c, int64_t B, int directions) {
  const int threads = ThreadPool::instance().num_threads();
  if (directions < 2 || threads < 2) return false;
  if (threads <= directions) return true;
  return 2.0 * double(B) * double(c.gate_width()) * double(c.state_size()) < double(1 << 18);
}

template <typename Fn>
void for_directions(bool concurrent, int directions, Fn&& fn) {
  if (concurrent) {
    parallel_for(directions, 1, [&](int64_t d0, int64_t d1) { for (int64_t d = d0; d < d1; ++d) fn(int(d)); });
  } else {
    for (int d = 0; d < directions; ++d) fn(d);
  }
}

}  // namespace

double dropout_value(uint64_t seed, uint64_t stream, int64_t t, int64_t b, int64_t j, double keep) {
  return keep_value(row_key(seed, stream, t, b), j, keep);
}

template <typename S>
struct GridRun {
  std::shared_ptr<const PreparedStack<S>> stack;
  Packing pk;
  GridShape shape;  // pointers cleared (copied into pk)
  MergeMode merge = MergeMode::kConcat;
  DropoutSpec dropout;
  bool reverse[2] = {false, true};
  struct Cell {
    Scratch<S> x;               // [N, I] packed input (masked), every row written by gather_inputs
    Scratch<S> workspace;       // every element written by the training forward before it is read
    std::vector<S> state_mask;  // [N, P] or empty
  };
  std::vector<Cell> cells;      // layer·D + dir
  Scratch<S> top_raw;           // [T, B, D·P] top layer's halves (mul merge)
  int64_t in_width(int layer) const {
    if (layer == 0) return stack->at(0, 0).config().I;
    int64_t w = 0;
    for (int d = 0; d < stack->directions; ++d) w += stack->at(layer - 1, d).config().state_size();
    return w;
  }
};

std::string grid_check_shape(const GridShape& g) {
  if (g.lengths) {
    for (int64_t b = 0; b < g.B; ++b)
      if (g.lengths[b] < 1 || g.lengths[b] > g.T)
        return "lengths[" + std::to_string(b) + "]: expected an integer in [1, steps=" + std::to_string(g.T) + "], got " +
               std::to_string(g.lengths[b]);
  }
  if (g.mask) {
    for (int64_t b = 0; b < g.B; ++b) {
      bool any = false;
      for (int64_t t = 0; t < g.T; ++t) {
        const uint8_t v = g.mask[b * g.T + t];
        if (v > 1) return "mask[" + std::to_string(b) + ", " + std::to_string(t) + "]: expected 0 or 1, got " + std::to_string(v);
        any = any || v;
      }
      if (!any) return "mask[" + std::to_string(b) + "]: sequence " + std::to_string(b) + " has no valid step (every mask entry is 0)";
    }
  }
  return "";
}

namespace {

template <typename S>
int64_t top_width(const PreparedStack<S>& st, MergeMode merge) {
  const int L = st.layers, D = st.directions;
  if (merge != MergeMode::kConcat) return st.at(L - 1, 0).config().state_size();
  int64_t w = 0;
  for (int d = 0; d < D; ++d) w += st.at(L - 1, d).config().state_size();
  return w;
}

// x_packed[q, :] = in[t, b, :] (⊙ input mask) for the direction's packed rows.
// y[row, P] = merge(forward half, backward half) of the top layer's time-major outputs [T·B, w].
template <typename S>
void merge_directions(MergeMode merge, int64_t T, int64_t B, int64_t w, int64_t P, bool batch_first, const S* a, S* out) {
  parallel_for(T * B, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const S* fw = a + i * w;
      const S* bw = fw + P;
      S* y = out + row_of(batch_first, T, B, i / B, i % B) * P;
      for (int64_t j = 0; j < P; ++j) {
        switch (merge) {
          case MergeMode::kSum: y[j] = fw[j] + bw[j]; break;
          case MergeMode::kMul: y[j] = fw[j] * bw[j]; break;
          case MergeMode::kAve: y[j] = (fw[j] + bw[j]) * S(0.5); break;
          default: break;
        }
      }
    }
  });
}

template <typename S>
void gather_inputs(const Packing& k, int d, const S* in, bool bf, int64_t in_w, const DropoutSpec& dr, bool drop,
                   int layer, S* out) {
  const int64_t T = k.T, B = k.B, N = k.N;
  const uint64_t stream = stream_of(layer, d, kInput);
  parallel_for(N, 256, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t t = k.src_t[d][q], b = k.src_b[d][q];
      const S* src = in + row_of(bf, T, B, t, b) * in_w;
      S* dst = out + q * in_w;
      if (!drop) {
        std::memcpy(dst, src, sizeof(S) * size_t(in_w));
      } else {
        const uint64_t key = row_key(dr.seed, stream, dr.variational ? 0 : t, b);
        for (int64_t j = 0; j < in_w; ++j) dst[j] = src[j] * S(keep_value(key, j, dr.input_keep));
      }
    }
  });
}

// The positions of out no packed row of direction d wrote: zeros, or (mask) the last output
// before them in processing order carried over, as scatter_outputs leaves them.
template <typename S>
void fill_invalid(const Packing& k, int d, S* out, bool bf, int64_t ld, int64_t col0, int64_t P) {
  const int64_t T = k.T, B = k.B;
  if (k.uniform && !k.carry) return;  // every position was written
  parallel_for(B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const S* last = nullptr;
      for (int64_t i = 0; i < T; ++i) {
        const int64_t p = k.ascending[d] ? i : T - 1 - i;
        S* dst = out + row_of(bf, T, B, p, b) * ld + col0;
        if (k.slot[d][b * T + p] >= 0) last = dst;
        else if (k.carry && last) std::memcpy(dst, last, sizeof(S) * size_t(P));
        else std::fill(dst, dst + P, S(0));
      }
    }
  });
}

// out[t, b, col0 .. col0 + P) from the packed outputs (⊙ output mask), zero or carried elsewhere.
template <typename S>
void scatter_outputs(const Packing& k, int d, const S* y, int64_t P, const DropoutSpec& dr, bool drop, int layer,
                     S* out, bool bf, int64_t ld, int64_t col0) {
  const int64_t T = k.T, B = k.B;
  const uint64_t stream = stream_of(layer, d, kOutput);
  parallel_for(B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t p = 0; p < T; ++p) {
        const int32_t q = k.slot[d][b * T + p];
        if (q < 0) continue;
        S* dst = out + row_of(bf, T, B, p, b) * ld + col0;
        const S* src = y + int64_t(q) * P;
        if (!drop) {
          std::memcpy(dst, src, sizeof(S) * size_t(P));
        } else {
          const uint64_t key = row_key(dr.seed, stream, dr.variational ? 0 : k.src_t[d][q], b);
          for (int64_t j = 0; j < P; ++j) dst[j] = src[j] * S(keep_value(key, j, dr.output_keep));
        }
      }
    }
  });
  fill_invalid(k, d, out, bf, ld, col0, P);
}

// The adjoint of scatter_outputs: dy_packed[q] = Σ of the gradients of every position q's output
// reached (itself, and the carried ones), ⊙ the output mask.
template <typename S>
void gather_output_grads(const Packing& k, int d, const S* dout, bool bf, int64_t ld, int64_t col0, int64_t P,
                         const DropoutSpec& dr, bool drop, int layer, S* dy) {
  const int64_t T = k.T, B = k.B;
  const uint64_t stream = stream_of(layer, d, kOutput);
  parallel_for(B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<S> acc(size_t(P), S(0));
    for (int64_t b = b0; b < b1; ++b) {
      std::fill(acc.begin(), acc.end(), S(0));
      for (int64_t i = T - 1; i >= 0; --i) {  // reverse processing order
        const int64_t p = k.ascending[d] ? i : T - 1 - i;
        const S* src = dout + row_of(bf, T, B, p, b) * ld + col0;
        const int32_t q = k.slot[d][b * T + p];
        if (q >= 0 && !drop && !k.carry) {  // (the common case: a copy)
          std::memcpy(dy + int64_t(q) * P, src, sizeof(S) * size_t(P));
        } else if (q >= 0) {
          S* dst = dy + int64_t(q) * P;
          const uint64_t key = drop ? row_key(dr.seed, stream, dr.variational ? 0 : k.src_t[d][q], b) : 0;
          for (int64_t j = 0; j < P; ++j) {
            const S g = src[j] + (k.carry ? acc[j] : S(0));
            dst[j] = drop ? g * S(keep_value(key, j, dr.output_keep)) : g;
          }
          if (k.carry) std::fill(acc.begin(), acc.end(), S(0));
        } else if (k.carry) {
          for (int64_t j = 0; j < P; ++j) acc[j] += src[j];
        }
      }
    }
  });
}

// d_in[t, b, :] += dx_packed[q] (⊙ input mask): the adjoint of gather_inputs. Rows of one
// sequence are touched by one thread only. first: d_in is not initialised yet, and each sequence's
// T rows are zeroed by its thread before its first direction adds to them (in parallel, and while
// they stay in cache, instead of a fill of all of d_in on one thread).
template <typename S>
void scatter_input_grads(const Packing& k, int d, const S* dxp, int64_t in_w, const DropoutSpec& dr, bool drop,
                         int layer, S* d_in, bool bf, bool first) {
  const int64_t T = k.T, B = k.B;
  const uint64_t stream = stream_of(layer, d, kInput);
  parallel_for(B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      if (first) {
        if (bf) std::fill(d_in + b * T * in_w, d_in + (b + 1) * T * in_w, S(0));
        else for (int64_t t = 0; t < T; ++t) std::fill(d_in + (t * B + b) * in_w, d_in + (t * B + b + 1) * in_w, S(0));
      }
      // The packed rows of sequence b: rank r in the sorted order, one per step.
      const int64_t r = k.rank[b];
      for (int64_t s = 0; s < k.count[b]; ++s) {
        const int64_t q = k.offsets[s] + r;
        const int64_t t = k.src_t[d][q];
        const S* src = dxp + q * in_w;
        S* dst = d_in + row_of(bf, T, B, t, b) * in_w;
        if (!drop) {
          for (int64_t j = 0; j < in_w; ++j) dst[j] += src[j];
        } else {
          const uint64_t key = row_key(dr.seed, stream, dr.variational ? 0 : t, b);
          for (int64_t j = 0; j < in_w; ++j) dst[j] += src[j] * S(keep_value(key, j, dr.input_keep));
        }
      }
    }
  });
}

// v[t, b, j] *= between-layer mask (PyTorch dropout on a layer's output), in place.
template <typename S>
void apply_between_mask(int64_t T, int64_t B, int64_t w, const DropoutSpec& dr, int layer, S* v) {
  const uint64_t stream = stream_of(layer, 0, kBetween);
  parallel_for(T * B, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const uint64_t key = row_key(dr.seed, stream, i / B, i % B);
      S* row = v + i * w;
      for (int64_t j = 0; j < w; ++j) row[j] *= S(keep_value(key, j, dr.between_keep));
    }
  });
}

// The state mask of a layer-direction as packed rows [N, P] (row q: the mask on h_prev of q's step).
template <typename S>
void make_state_mask(const Packing& k, int d, int64_t P, const DropoutSpec& dr, int layer, S* out) {
  const int64_t B = k.B;
  const uint64_t stream = stream_of(layer, d, kState);
  parallel_for(k.N, 256, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      S* row = out + q * P;
      if (!dr.state_on_initial && q < B) {  // step 0 reads h0 (TF1 drops only the states the cell made)
        std::fill(row, row + P, S(1));
        continue;
      }
      const uint64_t key = row_key(dr.seed, stream, dr.variational ? 0 : k.src_t[d][q], k.src_b[d][q]);
      for (int64_t j = 0; j < P; ++j) row[j] = S(keep_value(key, j, dr.state_keep));
    }
  });
}

// Sorted rows <-> the caller's [B, w] block of a state tensor.
template <typename S>
void sort_rows(const Packing& k, const S* src, int64_t w, S* dst) {
  for (int64_t r = 0; r < k.B; ++r) std::memcpy(dst + r * w, src + k.perm[r] * w, sizeof(S) * size_t(w));
}
template <typename S>
void unsort_rows(const Packing& k, const S* src, int64_t w, S* dst) {
  for (int64_t r = 0; r < k.B; ++r) std::memcpy(dst + k.perm[r] * w, src + r * w, sizeof(S) * size_t(w));
}

// ---------------------------------------------------------------------------------------------
// Inference in time chunks.
//
// A layer-direction runs its packed steps in chunks of inference_chunk_steps (sequence.h) steps,
// carrying its state (h, c, and the effective gates of full gate recurrence) from one chunk to
// the next in sorted rows; each chunk's inputs are gathered, and its outputs scattered, on their
// own. The projections are those of one whole-sequence call (same rows, same blocks), so the
// results are bit-identical to it. Memory: O(chunk · B · width) per layer-direction, never O(T),
// except where the layer above needs the whole sequence (see grid_infer).

// Packed rows [r0, r1) of direction d from in[T, B, in_w] (time- or batch-major).
template <typename S>
void gather_rows(const Packing& k, int d, const S* in, bool bf, int64_t in_w, int64_t r0, int64_t r1, S* out) {
  const int64_t T = k.T, B = k.B;
  parallel_for(r1 - r0, 256, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t q = r0 + i, t = k.src_t[d][q], b = k.src_b[d][q];
      std::memcpy(out + i * in_w, in + row_of(bf, T, B, t, b) * in_w, sizeof(S) * size_t(in_w));
    }
  });
}

// The outputs of packed steps [s0, s1) (y rows from packed row off_{s0}) into their positions of
// out[T, B, ld] at columns [col0, col0 + P).
template <typename S>
void scatter_rows(const Packing& k, int d, const GridShape& g, int64_t s0, int64_t s1, const S* y, int64_t P, S* out,
                  bool bf, int64_t ld, int64_t col0) {
  const int64_t T = k.T, B = k.B, r0 = k.offsets[size_t(s0)];
  const bool proc = g.processing_order_output;
  parallel_for(s1 - s0, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t s = s0 + i0; s < s0 + i1; ++s) {
      const int64_t off = k.offsets[size_t(s)], n = k.sizes[size_t(s)];
      for (int64_t r = 0; r < n; ++r) {
        const int64_t q = off + r, t = k.src_t[d][q], b = k.src_b[d][q];
        const int64_t pos = proc ? (g.mask ? T - 1 - t : s) : t;  // as make_packing's slot
        std::memcpy(out + row_of(bf, T, B, pos, b) * ld + col0, y + (q - r0) * P, sizeof(S) * size_t(P));
      }
    }
  });
}

// Whether packed row q of direction d is row q of the caller's input (gather_rows would copy every
// row onto itself), and of its output (scatter_rows likewise): then a chunk reads x and writes y in
// place. True for a uniform batch in time-major order, or of one step, in the natural direction.
bool rows_in_place(const Packing& k, int d, const GridShape& g, bool output) {
  if (!k.uniform || k.carry) return false;
  const int64_t T = k.T, B = k.B;
  for (int64_t q = 0; q < k.N; ++q) {
    const int64_t t = k.src_t[d][q], b = k.src_b[d][q];
    const int64_t pos = output && g.processing_order_output ? (g.mask ? T - 1 - t : q / B) : t;
    if (row_of(g.batch_first, T, B, pos, b) != q) return false;
  }
  return true;
}

// One layer-direction's state between chunks, in sorted rows, and the step plan of a chunk. When
// the rows need no sorting (a uniform batch) and the caller takes the final states, the state lives
// in the caller's h_n/c_n from the first chunk on (read from h0/c0 by the first step): no copies in
// or out.
template <typename S>
struct ChunkedCell {
  const PreparedLayer<S>& W;
  const Packing& k;
  Scratch<S> h, c, acts;             // [B, P], [B, H] (LSTM), [B, 3H] (full gate recurrence)
  std::vector<int64_t> rel_offsets;  // a chunk's offsets from its first row
  S* h_state = nullptr;              // the state the chunks carry: h (c) above, or the caller's h_n (c_n)
  S* c_state = nullptr;
  const S* h_first = nullptr;        // what the first chunk reads: the same, or the caller's h0 (c0)
  const S* c_first = nullptr;
  bool in_place = false;
  ChunkedCell(const PreparedLayer<S>& w, const Packing& pk, const S* h0, const S* c0, S* h_n, S* c_n) : W(w), k(pk) {
    const SeqConfig& cfg = W.config();
    const int64_t B = k.B, P = cfg.state_size(), H = cfg.H;
    const bool lstm = cfg.cell == CellKind::kLstm;
    in_place = k.uniform && k.S > 0 && h_n && (!lstm || c_n);  // uniform: perm is the identity
    if (in_place) {
      h_state = h_n;
      h_first = h0;  // null: zeros (sequence_forward)
      if (lstm) {
        c_state = c_n;
        c_first = c0;
      }
    } else {
      h.reset(B * P);
      if (h0) sort_rows(k, h0, P, h.data()); else std::fill(h.data(), h.data() + B * P, S(0));
      h_state = h.data();
      h_first = h_state;
      if (lstm) {
        c.reset(B * H);
        if (c0) sort_rows(k, c0, H, c.data()); else std::fill(c.data(), c.data() + B * H, S(0));
        c_state = c.data();
        c_first = c_state;
      }
    }
    if (lstm && cfg.opt.full_gate_recurrence) {
      acts.reset(B * 3 * H);
      std::fill(acts.data(), acts.data() + B * 3 * H, S(0));
    }
  }
  // Packed steps [s0, s1): x holds their input rows, y (or null) receives their outputs.
  void run(int64_t s0, int64_t s1, const S* x, S* y) {
    StepPlan p;
    p.T = s1 - s0;
    p.B = k.sizes[size_t(s0)];
    if (!k.uniform) {
      rel_offsets.resize(size_t(p.T + 1));
      for (int64_t s = s0; s <= s1; ++s) rel_offsets[size_t(s - s0)] = k.offsets[size_t(s)] - k.offsets[size_t(s0)];
      p.sizes = k.sizes.data() + s0;
      p.offsets = rel_offsets.data();
    }
    ForwardBuffers<S> f;
    f.x = x;
    f.h0 = h_first;
    f.h_n = h_state;
    f.c0 = c_first;
    f.c_n = c_state;
    f.acts0 = acts.data();
    f.acts_n = acts.data();
    f.y = y;
    sequence_forward(W, p, f);
    h_first = h_state;  // the next chunk continues from this one's final states
    c_first = c_state;
  }
  void write_states(const GridForwardIO<S>& io, int index) const {
    if (in_place) return;  // already there
    const SeqConfig& cfg = W.config();
    const int64_t B = k.B, P = cfg.state_size(), H = cfg.H;
    if (io.h_n) unsort_rows(k, h.data(), P, io.h_n + index * B * P);
    if (c.data() && io.c_n) unsort_rows(k, c.data(), H, io.c_n + index * B * H);
  }
};

// Inference forward. A unidirectional stack runs chunk by chunk through all its layers (layer l
// takes chunk c as soon as layer l − 1 has made it: the packed rows of one layer's output are the
// next layer's input rows), so it holds a chunk of each layer's input and output only. A layer
// with two directions cannot: its reverse direction starts from the end of the sequence, so it
// needs the whole output of the layer below, and a layer above it needs its whole output; those
// [T, B, 2P] buffers are inherent (O(T)). Its directions still gather their inputs and scatter
// their outputs chunk by chunk (no per-direction copies of the sequence), and the top layer makes
// no per-step outputs unless the caller asks for y. The same holds for a unidirectional stack
// returning processing order (goBackwards) with more than one layer: each layer reads the one
// below in reverse, which needs all of it.
template <typename S>
void grid_infer(const PreparedStack<S>& st, const GridShape& shape, MergeMode merge, const GridForwardIO<S>& io) {
  const int L = st.layers, D = st.directions;
  const int64_t T = shape.T, B = shape.B;
  const bool reverse[2] = {D == 1 && shape.processing_order_output, true};
  const Packing k = make_packing(shape, reverse, D);
  const int64_t C = inference_chunk_steps(st.at(0, 0).config(), k.S, B);  // every layer has the same gates
  int64_t chunk_rows = 0;
  for (int64_t s0 = 0; s0 < k.S; s0 += C) chunk_rows = std::max(chunk_rows, k.offsets[size_t(std::min(k.S, s0 + C))] - k.offsets[size_t(s0)]);
  const bool want_y = io.y != nullptr;

  if (D == 1 && (L == 1 || !shape.processing_order_output)) {
    const int64_t P = st.at(0, 0).config().state_size(), I = st.at(0, 0).config().I;
    std::vector<std::unique_ptr<ChunkedCell<S>>> cells;
    for (int l = 0; l < L; ++l) {
      const int64_t H = st.at(l, 0).config().H;
      cells.push_back(std::make_unique<ChunkedCell<S>>(st.at(l, 0), k, io.h0 ? io.h0 + l * B * P : nullptr, io.c0 ? io.c0 + l * B * H : nullptr,
                                                      io.h_n ? io.h_n + l * B * P : nullptr, io.c_n ? io.c_n + l * B * H : nullptr));
    }
    // Rows already in packed order (a uniform batch time-major, or one step) are read from x and
    // written to y where they are.
    const bool x_in_place = rows_in_place(k, 0, shape, false), y_in_place = want_y && rows_in_place(k, 0, shape, true);
    Scratch<S> xin(x_in_place ? 0 : chunk_rows * I), a(L > 1 || (want_y && !y_in_place) ? chunk_rows * P : 0),
        b(L > 2 || (L > 1 && want_y && !y_in_place) ? chunk_rows * P : 0);
    for (int64_t s0 = 0; s0 < k.S; s0 += C) {
      const int64_t s1 = std::min(k.S, s0 + C), r0 = k.offsets[size_t(s0)];
      const S* in = io.x + r0 * I;
      if (!x_in_place) {
        gather_rows(k, 0, io.x, shape.batch_first, I, r0, k.offsets[size_t(s1)], xin.data());
        in = xin.data();
      }
      for (int l = 0; l < L; ++l) {
        S* out;
        if (l < L - 1 || (want_y && !y_in_place)) out = in == a.data() ? b.data() : a.data();
        else out = want_y ? io.y + r0 * P : nullptr;
        cells[size_t(l)]->run(s0, s1, in, out);
        in = out;
      }
      if (want_y && !y_in_place) scatter_rows(k, 0, shape, s0, s1, in, P, io.y, shape.batch_first, P, 0);
    }
    if (want_y) fill_invalid(k, 0, io.y, shape.batch_first, P, 0, P);
    for (int l = 0; l < L; ++l) cells[size_t(l)]->write_states(io, l);
    return;
  }

  std::vector<S> layer_in, layer_out;  // [T, B, width] between layers (time-major)
  const S* in = io.x;
  bool in_bf = shape.batch_first;
  int64_t in_w = st.at(0, 0).config().I;
  for (int l = 0; l < L; ++l) {
    const bool top = l == L - 1;
    int64_t w = 0;
    for (int d = 0; d < D; ++d) w += st.at(l, d).config().state_size();
    // Where the layer's outputs go: the layer above's input, y (concat), the halves to merge into
    // y, or nowhere (the top layer when the caller wants the final states only).
    S* out = nullptr;
    bool out_bf = false;
    if (!top || (want_y && merge != MergeMode::kConcat)) {
      layer_out.resize(size_t(T * B * w));
      out = layer_out.data();
    } else if (want_y) {
      out = io.y;
      out_bf = shape.batch_first;
    }
    std::vector<int64_t> cols(size_t(D), 0);
    for (int d = 1; d < D; ++d) cols[size_t(d)] = cols[size_t(d - 1)] + st.at(l, d - 1).config().state_size();
    const bool concurrent = directions_concurrently(st.at(l, 0).config(), B, D);
    for_directions(concurrent, D, [&](int d) {
      const PreparedLayer<S>& W = st.at(l, d);
      const int64_t P = W.config().state_size();
      const int64_t H = W.config().H, i = l * D + d;
      ChunkedCell<S> cell(W, k, io.h0 ? io.h0 + i * B * P : nullptr, io.c0 ? io.c0 + i * B * H : nullptr,
                          io.h_n ? io.h_n + i * B * P : nullptr, io.c_n ? io.c_n + i * B * H : nullptr);
      Scratch<S> xin(chunk_rows * in_w), yc(out ? chunk_rows * P : 0);
      for (int64_t s0 = 0; s0 < k.S; s0 += C) {
        const int64_t s1 = std::min(k.S, s0 + C);
        gather_rows(k, d, in, in_bf, in_w, k.offsets[size_t(s0)], k.offsets[size_t(s1)], xin.data());
        cell.run(s0, s1, xin.data(), yc.data());
        if (out) scatter_rows(k, d, shape, s0, s1, yc.data(), P, out, out_bf, w, cols[size_t(d)]);
      }
      if (out) fill_invalid(k, d, out, out_bf, w, cols[size_t(d)], P);
      cell.write_states(io, l * D + d);
    });
    if (!top) {
      layer_in.swap(layer_out);
      in = layer_in.data();
      in_bf = false;
      in_w = w;
    } else if (want_y && merge != MergeMode::kConcat) {
      merge_directions(merge, T, B, w, st.at(l, 0).config().state_size(), shape.batch_first, layer_out.data(), io.y);
    }
  }
}

}  // namespace

template <typename S>
double grid_training_bytes(const PreparedStack<S>& st, int64_t T, int64_t B) {
  const int L = st.layers, D = st.directions;
  const int64_t N = T * B;
  double total = 0, scratch = 0;
  for (int l = 0; l < L; ++l)
    for (int d = 0; d < D; ++d) {
      SeqConfig c = st.at(l, d).config();
      c.T = T; c.B = B;
      total += double(workspace_elems(c, N, true) + N * c.I);
      scratch = std::max(scratch, double(backward_scratch_elems(c, N) + N * (c.I + c.state_size())));
    }
  return (total + scratch + 3.0 * double(N) * double(top_width(st, MergeMode::kConcat))) * sizeof(S);
}

template <typename S>
size_t grid_run_bytes(const GridRun<S>& run) {
  size_t n = run.top_raw.size();
  for (const auto& c : run.cells) n += c.x.size() + c.workspace.size() + c.state_mask.size();
  return n * sizeof(S);
}

template <typename S>
std::shared_ptr<GridRun<S>> grid_forward(std::shared_ptr<const PreparedStack<S>> stack, const GridShape& shape,
                                         MergeMode merge, const DropoutSpec& dropout_in, bool training,
                                         const GridForwardIO<S>& io) {
  const PreparedStack<S>& st = *stack;
  const int L = st.layers, D = st.directions;
  const int64_t T = shape.T, B = shape.B;
  if (!training) {
    grid_infer(st, shape, merge, io);
    return nullptr;
  }
  const DropoutSpec dr = training ? dropout_in : DropoutSpec();
  std::shared_ptr<GridRun<S>> run;
  if (training) {
    run = std::make_shared<GridRun<S>>();
    run->stack = stack;
    run->merge = merge;
    run->dropout = dr;
    run->cells.resize(size_t(L * D));
  }
  Packing local;
  Packing& k = training ? run->pk : local;
  // Direction 1 runs backwards; a single direction does when it returns processing order (goBackwards).
  const bool reverse[2] = {D == 1 && shape.processing_order_output, true};
  k = make_packing(shape, reverse, D);
  if (training) {
    run->shape = shape;
    run->shape.lengths = nullptr;
    run->shape.mask = nullptr;
    run->reverse[0] = reverse[0];
    run->reverse[1] = reverse[1];
  }
  const StepPlan plan = k.plan();
  const int64_t N = k.N;

  // [T, B, width] between layers: every position of each direction's columns is written by
  // scatter_outputs (its output, carried or zero), so neither is zero-filled first.
  Scratch<S> layer_in, layer_out;
  const S* in = io.x;
  int64_t in_w = st.at(0, 0).config().I;
  for (int l = 0; l < L; ++l) {
    const bool top = l == L - 1;
    int64_t w = 0;
    for (int d = 0; d < D; ++d) w += st.at(l, d).config().state_size();
    // The top layer writes straight into y when it concatenates; otherwise into its own buffer.
    S* out;
    int64_t ld = w;
    bool out_bf = false;
    if (top && merge == MergeMode::kConcat) {
      out = io.y;
      out_bf = shape.batch_first;
    } else {
      layer_out.reset(T * B * w);
      out = layer_out.data();
    }
    const bool concurrent = directions_concurrently(st.at(l, 0).config(), B, D);
    std::vector<Scratch<S>> ys(static_cast<size_t>(D));  // written whole by sequence_forward
    for_directions(concurrent, D, [&](int d) {
      const PreparedLayer<S>& W = st.at(l, d);
      const SeqConfig& c = W.config();
      const int64_t P = c.state_size(), H = c.H;
      const bool lstm = c.cell == CellKind::kLstm;
      Scratch<S> xp_local;
      Scratch<S>* xp = training ? &run->cells[size_t(l * D + d)].x : &xp_local;
      xp->reset(N * in_w);  // every packed row written by the gather
      gather_inputs(k, d, in, l == 0 && shape.batch_first, in_w, dr, dr.input_keep < 1, l, xp->data());
      std::vector<S> h0s, c0s, hns(size_t(B * P)), cns(lstm ? size_t(B * H) : 0);
      if (io.h0) { h0s.resize(size_t(B * P)); sort_rows(k, io.h0 + (l * D + d) * B * P, P, h0s.data()); }
      if (lstm && io.c0) { c0s.resize(size_t(B * H)); sort_rows(k, io.c0 + (l * D + d) * B * H, H, c0s.data()); }
      ys[d].reset(N * P);
      ForwardBuffers<S> f;
      f.x = xp->data();
      f.h0 = h0s.empty() ? nullptr : h0s.data();
      f.c0 = c0s.empty() ? nullptr : c0s.data();
      f.y = ys[d].data();
      f.h_n = hns.data();
      f.c_n = lstm ? cns.data() : nullptr;
      if (training) {
        auto& cell = run->cells[size_t(l * D + d)];
        const bool sd = dr.state_keep < 1;
        SeqConfig cc = c;
        cc.T = k.S; cc.B = B;
        cell.workspace.reset(workspace_elems(cc, N, sd));
        f.workspace = cell.workspace.data();
        if (sd) {
          cell.state_mask.resize(size_t(N * P));
          make_state_mask(k, d, P, dr, l, cell.state_mask.data());
          f.state_mask = cell.state_mask.data();
        }
      }
      sequence_forward(W, plan, f);
      if (io.h_n) unsort_rows(k, hns.data(), P, io.h_n + (l * D + d) * B * P);
      if (lstm && io.c_n) unsort_rows(k, cns.data(), H, io.c_n + (l * D + d) * B * H);
    });
    int64_t col = 0;
    for (int d = 0; d < D && out; ++d) {  // (no out: the top layer concatenating when y is not wanted)
      const int64_t P = st.at(l, d).config().state_size();
      scatter_outputs(k, d, ys[d].data(), P, dr, dr.output_keep < 1, l, out, out_bf, ld, col);
      col += P;
    }
    if (!top) {
      if (dr.between_keep < 1) apply_between_mask(T, B, w, dr, l, out);
      layer_in.swap(layer_out);
      in = layer_in.data();
      in_w = w;
    } else if (merge != MergeMode::kConcat && io.y) {
      merge_directions(merge, T, B, w, st.at(l, 0).config().state_size(), shape.batch_first, out, io.y);
    }
    if (top && training && merge == MergeMode::kMul) run->top_raw.swap(layer_out);
  }
  return run;
}

template <typename S>
void grid_backward(const GridRun<S>& run, const GridBackwardIO<S>& io) {
  const PreparedStack<S>& st = *run.stack;
  const Packing& k = run.pk;
  const int L = st.layers, D = st.directions;
  const int64_t T = k.T, B = k.B, N = k.N;
  const DropoutSpec& dr = run.dropout;
  const StepPlan plan = k.plan();
  const MergeMode merge = run.merge;

  // d_out: the gradient of the current layer's [T, B, w] output (both halves).
  Scratch<S> d_out;  // (both written whole before they are read)
  int64_t w_top = 0;
  for (int d = 0; d < D; ++d) w_top += st.at(L - 1, d).config().state_size();
  const S* dcur = nullptr;
  const bool bf = run.shape.batch_first;
  bool dcur_bf = false;  // the layout of dcur: the caller's at the top, time-major below
  if (io.dy) {
    if (merge == MergeMode::kConcat) {
      dcur = io.dy;
      dcur_bf = bf;
    } else {
      const int64_t P = st.at(L - 1, 0).config().state_size();
      d_out.reset(T * B * w_top);  // every element written below
      parallel_for(T * B, 64, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const S* g = io.dy + row_of(bf, T, B, i / B, i % B) * P;
          S* dfw = d_out.data() + i * w_top;
          S* dbw = dfw + P;
          for (int64_t j = 0; j < P; ++j) {
            switch (merge) {
              case MergeMode::kSum: dfw[j] = g[j]; dbw[j] = g[j]; break;
              case MergeMode::kAve: dfw[j] = g[j] * S(0.5); dbw[j] = g[j] * S(0.5); break;
              case MergeMode::kMul: {
                const S* raw = run.top_raw.data() + i * w_top;
                dfw[j] = g[j] * raw[P + j];
                dbw[j] = g[j] * raw[j];
                break;
              }
              default: break;
            }
          }
        }
      });
      dcur = d_out.data();
    }
  }
  Scratch<S> d_in;
  for (int l = L - 1; l >= 0; --l) {
    int64_t w = 0;
    for (int d = 0; d < D; ++d) w += st.at(l, d).config().state_size();
    const int64_t in_w = run.in_width(l);
    const bool need_dx = l > 0 || io.dx;
    std::vector<Scratch<S>> dxp(static_cast<size_t>(D));  // written whole by sequence_backward
    const bool concurrent = directions_concurrently(st.at(l, 0).config(), B, D);
    std::vector<int64_t> cols(size_t(D), 0);
    for (int d = 1; d < D; ++d) cols[d] = cols[d - 1] + st.at(l, d - 1).config().state_size();
    for_directions(concurrent, D, [&](int d) {
      const PreparedLayer<S>& W = st.at(l, d);
      const SeqConfig& c = W.config();
      const int64_t P = c.state_size(), H = c.H;
      const bool lstm = c.cell == CellKind::kLstm;
      const auto& cell = run.cells[size_t(l * D + d)];
      std::vector<S> dhn, dcn, dh0s(size_t(B * P)), dc0s(lstm ? size_t(B * H) : 0);
      Scratch<S> dyp;  // every packed row written by the gather
      if (dcur) {
        dyp.reset(N * P);
        gather_output_grads(k, d, dcur, dcur_bf, w, cols[d], P, dr, dr.output_keep < 1, l, dyp.data());
      }
      if (io.dh_n) { dhn.resize(size_t(B * P)); sort_rows(k, io.dh_n + (l * D + d) * B * P, P, dhn.data()); }
      if (lstm && io.dc_n) { dcn.resize(size_t(B * H)); sort_rows(k, io.dc_n + (l * D + d) * B * H, H, dcn.data()); }
      BackwardBuffers<S> b = io.grads[size_t(l * D + d)];
      b.x = cell.x.data();
      b.workspace = cell.workspace.data();
      b.state_mask = cell.state_mask.empty() ? nullptr : cell.state_mask.data();
      b.dy = dyp.data();
      b.dh_n = dhn.empty() ? nullptr : dhn.data();
      b.dc_n = dcn.empty() ? nullptr : dcn.data();
      if (need_dx) { dxp[d].reset(N * in_w); b.dx = dxp[d].data(); }
      b.dx_accumulate = false;
      b.dh0 = dh0s.data();
      b.dc0 = lstm ? dc0s.data() : nullptr;
      sequence_backward(W, plan, b);
      if (io.dh0) unsort_rows(k, dh0s.data(), P, io.dh0 + (l * D + d) * B * P);
      if (lstm && io.dc0) unsort_rows(k, dc0s.data(), H, io.dc0 + (l * D + d) * B * H);
    });
    if (!need_dx) break;
    S* target;
    if (l == 0) {
      target = io.dx;
    } else {
      d_in.reset(T * B * in_w);  // zeroed by the first scatter
      target = d_in.data();
    }
    for (int d = 0; d < D; ++d)
      scatter_input_grads(k, d, dxp[d].data(), in_w, dr, dr.input_keep < 1, l, target, l == 0 && bf, d == 0);
    if (l > 0) {
      if (dr.between_keep < 1) apply_between_mask(T, B, in_w, dr, l - 1, target);
      d_out.swap(d_in);
      dcur = d_out.data();
      dcur_bf = false;
    }
  }
}

#define RNNKIT_GRID(S)                                                                                            \
  template struct GridRun<S>;                                                                                     \
  template std::shared_ptr<GridRun<S>> grid_forward<S>(std::shared_ptr<const PreparedStack<S>>, const GridShape&, \
                                                       MergeMode, const DropoutSpec&, bool, const GridForwardIO<S>&); \
  template void grid_backward<S>(const GridRun<S>&, const GridBackwardIO<S>&);                                    \
  template double grid_training_bytes<S>(const PreparedStack<S>&, int64_t, int64_t);                              \
  template size_t grid_run_bytes<S>(const GridRun<S>&);
RNNKIT_GRID(float)
RNNKIT_GRID(double)

}  // namespace rnnkit
