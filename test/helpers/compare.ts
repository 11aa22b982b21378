/**
 * Shared helpers for the rnnkit test files:
 *  - assertClose / assertBitIdentical: element-wise comparisons whose failure message names the
 *    largest difference, where it occurred (flat index and, given a shape, the multi-index) and
 *    both values;
 *  - time-major [T, B, F] <-> batch-first [B, T, F] transposes (optionally reversing time);
 *  - seeded random arrays built on the library's own mulberry32 `Random`.
 */
import assert from 'node:assert/strict';

import { Random } from '../../lib/index.js';

export type NumArray = ArrayLike<number>;
export type FloatArray = Float32Array | Float64Array;

// ---------------------------------------------------------------------------------------------
// Indices

/** Row-major multi-index of a flat index, e.g. multiIndex(5, [2, 3]) -> [1, 2]. */
export function multiIndex(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  let rest = flat;
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = rest % shape[d];
    rest = Math.floor(rest / shape[d]);
  }
  return idx;
}

function where(flat: number, shape: readonly number[] | undefined): string {
  return shape ? `[${multiIndex(flat, shape).join(', ')}] (flat ${flat}, shape [${shape.join(', ')}])` : `flat index ${flat}`;
}

// ---------------------------------------------------------------------------------------------
// Closeness

export interface CloseOptions {
  /** Relative tolerance, applied to max(|want|, floor). Default 0. */
  rtol?: number;
  /** Absolute tolerance, added to the relative one. Default 0. */
  atol?: number;
  /**
   * Lower bound on the magnitude the relative tolerance is applied to (default 0), so entries whose
   * reference value is tiny compared to the data's scale are not judged by a meaningless relative error.
   */
  floor?: number;
  /** Names the compared quantity in the failure message. */
  label?: string;
  /** Shape of the data, for multi-dimensional indices in the failure message. */
  shape?: readonly number[];
}

export interface CloseReport {
  /** Largest |got - want| / (atol + rtol·max(|want|, floor)); <= 1 means within tolerance. */
  worstRatio: number;
  /** Flat index of that entry (-1 for empty data). */
  worstIndex: number;
  /** Largest |got - want| over all entries, and where. */
  maxAbs: number;
  maxAbsIndex: number;
  /** Largest |got - want| / max(|want|, floor) over all entries, and where. */
  maxRel: number;
  maxRelIndex: number;
}

/** Computes the comparison statistics without asserting. NaN/Infinity mismatches count as infinitely bad. */
export function compare(got: NumArray, want: NumArray, opts: CloseOptions = {}): CloseReport {
  const { rtol = 0, atol = 0, floor = 0 } = opts;
  const r: CloseReport = { worstRatio: 0, worstIndex: -1, maxAbs: 0, maxAbsIndex: -1, maxRel: 0, maxRelIndex: -1 };
  for (let k = 0; k < want.length; k++) {
    const g = got[k], w = want[k];
    let diff = Math.abs(g - w);
    if (Number.isNaN(diff)) diff = Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w)) ? 0 : Infinity;
    else if (!Number.isFinite(g) || !Number.isFinite(w)) diff = g === w ? 0 : Infinity;
    const scale = Math.max(Math.abs(w), floor);
    const rel = diff === 0 ? 0 : scale > 0 ? diff / scale : Infinity;
    const tol = atol + rtol * scale;
    const ratio = diff === 0 ? 0 : tol > 0 ? diff / tol : Infinity;
    if (r.worstIndex < 0 || ratio > r.worstRatio) {
      r.worstRatio = ratio;
      r.worstIndex = k;
    }
    if (r.maxAbsIndex < 0 || diff > r.maxAbs) {
      r.maxAbs = diff;
      r.maxAbsIndex = k;
    }
    if (r.maxRelIndex < 0 || rel > r.maxRel) {
      r.maxRel = rel;
      r.maxRelIndex = k;
    }
  }
  return r;
}

/**
 * Asserts |got - want| <= atol + rtol·max(|want|, floor) for every entry. On failure the message
 * names the label, the entry with the largest (tolerance-scaled) difference, its flat index and
 * multi-index, both values, and also where the largest absolute difference occurred.
 * Returns the statistics (useful for logging the margin).
 */
export function assertClose(got: NumArray | undefined | null, want: NumArray, opts: CloseOptions = {}): CloseReport {
  const label = opts.label ?? 'value';
  assert.ok(got !== undefined && got !== null, `${label}: missing (got ${String(got)})`);
  assert.equal(got.length, want.length, `${label}: length mismatch, got ${got.length} entries, want ${want.length}`);
  if (opts.shape) {
    const n = opts.shape.reduce((a, b) => a * b, 1);
    assert.equal(want.length, n, `${label}: ${want.length} entries do not fit shape [${opts.shape.join(', ')}]`);
  }
  const r = compare(got, want, opts);
  if (r.worstRatio > 1) {
    const k = r.worstIndex;
    const a = r.maxAbsIndex;
    const { rtol = 0, atol = 0, floor = 0 } = opts;
    assert.fail(
      `${label}: not close (rtol ${rtol}, atol ${atol}, floor ${floor}). ` +
        `Largest difference relative to tolerance: ${r.worstRatio.toPrecision(4)}x the tolerance at ${where(k, opts.shape)}: ` +
        `got ${got[k]}, want ${want[k]}, |diff| ${Math.abs(got[k] - want[k]).toExponential(3)}. ` +
        `Largest absolute difference ${r.maxAbs.toExponential(3)} at ${where(a, opts.shape)}: got ${got[a]}, want ${want[a]}. ` +
        `Largest relative difference ${r.maxRel.toExponential(3)}.`,
    );
  }
  return r;
}

/** Bit-for-bit equality of two float arrays of the same type (distinguishes -0/+0, compares NaN payloads). */
export function assertBitIdentical(got: FloatArray, want: FloatArray, label = 'value', shape?: readonly number[]): void {
  assert.equal(got.constructor, want.constructor, `${label}: type ${got.constructor.name} vs ${want.constructor.name}`);
  assert.equal(got.length, want.length, `${label}: length mismatch, got ${got.length}, want ${want.length}`);
  const gb = new Uint8Array(got.buffer, got.byteOffset, got.byteLength);
  const wb = new Uint8Array(want.buffer, want.byteOffset, want.byteLength);
  const size = got.BYTES_PER_ELEMENT;
  let first = -1;
  let count = 0;
  let maxAbs = 0;
  let maxAbsIndex = -1;
  for (let k = 0; k < got.length; k++) {
    let same = true;
    for (let b = 0; b < size; b++) {
      if (gb[k * size + b] !== wb[k * size + b]) {
        same = false;
        break;
      }
    }
    if (!same) {
      count++;
      if (first < 0) first = k;
      const d = Math.abs(got[k] - want[k]);
      if (maxAbsIndex < 0 || d > maxAbs || Number.isNaN(d)) {
        maxAbs = d;
        maxAbsIndex = k;
      }
    }
  }
  if (count > 0) {
    assert.fail(
      `${label}: ${count} of ${got.length} entries differ bitwise. First at ${where(first, shape)}: got ${got[first]}, want ${want[first]}. ` +
        `Largest difference ${maxAbs} at ${where(maxAbsIndex, shape)}: got ${got[maxAbsIndex]}, want ${want[maxAbsIndex]}.`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Layout

function like<A extends FloatArray>(src: A, n: number): A {
  return (src instanceof Float64Array ? new Float64Array(n) : new Float32Array(n)) as A;
}

/**
 * Swaps the two leading axes of [A, B, F] into [B, A, F]. With reverseSecond, index b of the
 * second input axis lands at B-1-b (time reversal when the second axis is time).
 */
export function swapLeadingAxes<A extends FloatArray>(src: A, a: number, b: number, f: number, reverseSecond = false): A {
  assert.equal(src.length, a * b * f, `swapLeadingAxes: ${src.length} entries do not fit [${a}, ${b}, ${f}]`);
  const dst = like(src, src.length);
  for (let i = 0; i < a; i++) {
    for (let j = 0; j < b; j++) {
      const jj = reverseSecond ? b - 1 - j : j;
      dst.set(src.subarray((i * b + j) * f, (i * b + j + 1) * f), (jj * a + i) * f);
    }
  }
  return dst;
}

/** Time-major [T, B, F] -> batch-first [B, T, F]. */
export function timeToBatch<A extends FloatArray>(src: A, T: number, B: number, F: number): A {
  return swapLeadingAxes(src, T, B, F);
}

/** Batch-first [B, T, F] -> time-major [T, B, F]. */
export function batchToTime<A extends FloatArray>(src: A, B: number, T: number, F: number): A {
  return swapLeadingAxes(src, B, T, F);
}

/** Reverses the time axis of a time-major [T, B, F] array. */
export function reverseTimeMajor<A extends FloatArray>(src: A, T: number, B: number, F: number): A {
  const dst = like(src, src.length);
  const row = B * F;
  for (let t = 0; t < T; t++) dst.set(src.subarray(t * row, (t + 1) * row), (T - 1 - t) * row);
  return dst;
}

/** Reverses the time axis of a batch-first [B, T, F] array. */
export function reverseBatchFirst<A extends FloatArray>(src: A, B: number, T: number, F: number): A {
  const dst = like(src, src.length);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const from = (b * T + t) * F;
      dst.set(src.subarray(from, from + F), (b * T + (T - 1 - t)) * F);
    }
  }
  return dst;
}

// ---------------------------------------------------------------------------------------------
// Random data

export { Random };

/** A seeded generator (the library's mulberry32). */
export function rng(seed: number): Random {
  return new Random(seed);
}

/** n uniform values in [lo, hi) as a Float64Array. */
export function uniform64(r: Random, n: number, lo = -1, hi = 1): Float64Array {
  const a = new Float64Array(n);
  for (let k = 0; k < n; k++) a[k] = r.uniform(lo, hi);
  return a;
}

/** n uniform values in [lo, hi) as a Float32Array. */
export function uniform32(r: Random, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let k = 0; k < n; k++) a[k] = r.uniform(lo, hi);
  return a;
}

/** An integer in [lo, hi] (inclusive). */
export function randInt(r: Random, lo: number, hi: number): number {
  return lo + r.int(hi - lo + 1);
}

/** Sum of a[k]·b[k] in float64 (compensated, so loss evaluations add little rounding noise). */
export function dot(a: NumArray, b: NumArray): number {
  assert.equal(a.length, b.length, `dot: length mismatch ${a.length} vs ${b.length}`);
  let s = 0;
  let c = 0;
  for (let k = 0; k < a.length; k++) {
    const y = a[k] * b[k] - c;
    const t = s + y;
    c = t - s - y;
    s = t;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Relu kinks

/**
 * The smallest |pre-activation| W_ih x_t + b_ih + W_hh h_{t-1} + b_hh of a relu SimpleRNN over all
 * steps, batch rows and units, in float64. x is time-major [T, B, I] in processing order; weights
 * in PyTorch layout (missing biases = zeros); h0 [B, H] or undefined (zeros). Finite differences
 * and float32-vs-float64 comparisons are only meaningful when this is not tiny.
 */
export function reluMinPreactivation(
  T: number,
  B: number,
  I: number,
  H: number,
  x: NumArray,
  weights: { weight_ih_l0: NumArray; weight_hh_l0: NumArray; bias_ih_l0?: NumArray; bias_hh_l0?: NumArray },
  h0?: NumArray,
): number {
  const { weight_ih_l0: wih, weight_hh_l0: whh } = weights;
  let h = h0 ? Float64Array.from(h0) : new Float64Array(B * H);
  let min = Infinity;
  for (let t = 0; t < T; t++) {
    const next = new Float64Array(B * H);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < H; j++) {
        let a = (weights.bias_ih_l0?.[j] ?? 0) + (weights.bias_hh_l0?.[j] ?? 0);
        for (let c = 0; c < I; c++) a += wih[j * I + c] * x[(t * B + b) * I + c];
        for (let c = 0; c < H; c++) a += whh[j * H + c] * h[b * H + c];
        min = Math.min(min, Math.abs(a));
        next[b * H + j] = Math.max(0, a);
      }
    }
    h = next;
  }
  return min;
}

/**
 * Finite-difference gradient checks in float64: central differences with step `eps`, compared as
 * |analytic − fd| <= rtol · max(|fd|, floor). The central difference has truncation error
 * ~eps²·|L'''| ≈ 1e-12 and rounding error ~1e-16·Σ|terms of L| / eps ≈ 1e-10·(a few) here, an
 * absolute noise of at most ~1e-9; floor = 1e-2 keeps it below rtol·floor = 1e-8 for near-zero
 * entries, while every entry of magnitude >= 1e-2 is checked to a true relative 1e-6.
 */
export const FINITE_DIFFERENCES = { eps: 1e-6, rtol: 1e-6, floor: 1e-2 } as const;

/**
 * Central differences of L() with respect to data[k] for each k in `indices` (default: every entry);
 * data is perturbed in place and restored.
 */
export function centralDifferences(
  data: Float64Array,
  L: () => number,
  indices?: readonly number[],
  eps: number = FINITE_DIFFERENCES.eps,
): Float64Array {
  const ks = indices ?? Array.from({ length: data.length }, (_, k) => k);
  const g = new Float64Array(ks.length);
  ks.forEach((k, i) => {
    const saved = data[k];
    data[k] = saved + eps;
    const plus = L();
    data[k] = saved - eps;
    const minus = L();
    data[k] = saved;
    g[i] = (plus - minus) / (2 * eps);
  });
  return g;
}
