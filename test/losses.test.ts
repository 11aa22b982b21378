/**
 * The row losses of lib/train/losses.ts (getLoss) and the streaming metrics of lib/train/metrics.ts
 * (getMetric), on pred [rows, classes] with optional per-row weights (0 = masked row):
 *  - gradients against float64 central finite differences (Richardson-extrapolated, relative
 *    tolerance 1e-7) for every loss × fromLogits × with/without weights, label smoothing, and the
 *    clipped regions of the probability forms (zero gradient where the clip holds);
 *  - values (and gradients) against @tensorflow/tfjs (cpu backend, float32): tf.losses.*
 *    (softmaxCrossEntropy, sigmoidCrossEntropy, meanSquaredError, absoluteDifference with weights and
 *    Reduction.MEAN = Σ w·ℓ / Σ w) and tf.metrics.* (categoricalCrossentropy, binaryCrossentropy,
 *    meanSquaredError, meanAbsoluteError, the accuracies), to 1e-5;
 *  - the masked mean: weight-0 rows change nothing, Σw = 0 gives 0;
 *  - errors of getLoss, compute, getMetric and update;
 *  - streaming metrics: two updates = one update over the concatenated rows (bit for bit).
 * The test needs no native addon (its own seeded generator; only tensor/losses/metrics are imported).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';

import { Tensor } from '../lib/tensor.js';
import { getLoss, LOSS_EPSILON, LOSS_NAMES, mseLoss, softmaxCrossEntropy, type Loss, type LossConfig } from '../lib/train/losses.js';
import { getMetric, METRIC_NAMES, type MetricName } from '../lib/train/metrics.js';

// ---------------------------------------------------------------------------------------------
// Helpers

/** mulberry32: a small seeded generator (uniform in [0, 1)). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const uniform = (r: () => number, lo: number, hi: number): number => lo + (hi - lo) * r();
const randInt = (r: () => number, n: number): number => Math.floor(r() * n);

type Name = 'sparseCategoricalCrossentropy' | 'categoricalCrossentropy' | 'binaryCrossentropy' | 'meanSquaredError' | 'meanAbsoluteError';

interface Case {
  pred: Float64Array;
  target: Int32Array | Float64Array;
  weights: Float64Array | undefined;
  rows: number;
  cols: number;
}

/**
 * Random inputs for `name`: logits in [-3, 3]; categorical probabilities positive, unnormalised
 * (rows sum to ~C/2, exercising the normalisation) and well inside the clip range; binary
 * probabilities in [0.02, 0.98]; soft/one-hot/0-1 targets; weights with zeros, ones and others.
 */
function makeCase(name: Name, fromLogits: boolean, weighted: boolean, seed: number, rows = 6, cols = 4): Case {
  const r = rng(seed);
  const pred = new Float64Array(rows * cols);
  for (let k = 0; k < pred.length; k++) {
    pred[k] = fromLogits ? uniform(r, -3, 3)
      : name === 'binaryCrossentropy' ? uniform(r, 0.02, 0.98)
      : name === 'sparseCategoricalCrossentropy' || name === 'categoricalCrossentropy' ? uniform(r, 0.05, 1)
      : uniform(r, -2, 2);
  }
  let target: Int32Array | Float64Array;
  if (name === 'sparseCategoricalCrossentropy') {
    target = Int32Array.from({ length: rows }, () => randInt(r, cols));
  } else {
    target = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      const o = i * cols;
      if (name === 'categoricalCrossentropy') {
        if (i % 2 === 0) target[o + randInt(r, cols)] = 1;  // one-hot rows and soft rows
        else for (let c = 0; c < cols; c++) target[o + c] = uniform(r, 0, 1) / cols;
      } else if (name === 'binaryCrossentropy') {
        for (let c = 0; c < cols; c++) target[o + c] = i % 2 === 0 ? randInt(r, 2) : uniform(r, 0, 1);
      } else {
        for (let c = 0; c < cols; c++) target[o + c] = uniform(r, -2, 2);
      }
    }
  }
  let weights: Float64Array | undefined;
  if (weighted) {
    const choices = [0, 1, 1, 0.5, 2.25, 0];
    weights = Float64Array.from({ length: rows }, (_, i) => choices[(i + seed) % choices.length]);
  }
  return { pred, target, weights, rows, cols };
}

function denseTarget(c: Case): Int32Array | Tensor {
  return c.target instanceof Int32Array ? c.target : Tensor.from(c.target, [c.rows, c.cols]);
}

/**
 * Richardson-extrapolated central differences of L with respect to every entry of `data`
 * (perturbed in place and restored): (4·D(h/2) − D(h)) / 3 with D(h) = (L(x+h) − L(x−h)) / 2h and
 * h = stepOf(x), by default 1e-4·max(|x|, 1e-2), whose truncation error is O(h⁴) and rounding
 * error ~1e-16·|L|/h.
 */
function finiteDifferences(data: Float64Array, L: () => number, stepOf: (x: number) => number = (x) => 1e-4 * Math.max(Math.abs(x), 1e-2)): Float64Array {
  const out = new Float64Array(data.length);
  for (let k = 0; k < data.length; k++) {
    const x = data[k];
    const h = stepOf(x);
    const central = (step: number): number => {
      data[k] = x + step;
      const plus = L();
      data[k] = x - step;
      const minus = L();
      data[k] = x;
      return (plus - minus) / (2 * step);
    };
    out[k] = (4 * central(h / 2) - central(h)) / 3;
  }
  return out;
}

interface Worst {
  err: number;
  at: number;
  got: number;
  want: number;
}

/**
 * The worst entry of |got − want| / max(|want|, floor) (NaN counts as worst). `floor` keeps
 * near-zero entries from demanding more than the arithmetic can give.
 */
function worstEntry(got: ArrayLike<number>, want: ArrayLike<number>, floor: number): Worst {
  assert.equal(got.length, want.length, `length ${got.length}, expected ${want.length}`);
  let worst: Worst = { err: 0, at: -1, got: NaN, want: NaN };
  for (let k = 0; k < got.length; k++) {
    const err = Math.abs(got[k] - want[k]) / Math.max(Math.abs(want[k]), floor);
    if (!(err <= worst.err)) {
      worst = { err: Number.isNaN(err) ? Infinity : err, at: k, got: got[k], want: want[k] };
      if (Number.isNaN(err)) break;
    }
  }
  return worst;
}

function at(k: number, cols: number): string {
  return `[${Math.floor(k / cols)}, ${k % cols}]`;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k]));
  return m;
}

/** Finite-difference tolerance: relative 1e-7, with a floor of 1e-4 of the largest gradient entry. */
const FD_RTOL = 1e-7;
const FD_FLOOR = 1e-4;
const fdReport: string[] = [];

/**
 * Checks loss.compute's gradient on `c` against finite differences and returns the worst entry's
 * relative error; also that rows of weight 0 have exactly zero gradient.
 */
function checkGradient(loss: Loss, c: Case, label: string, perturb?: (g: Float64Array) => void, stepOf?: (x: number) => number): number {
  const pred = Tensor.from(c.pred, [c.rows, c.cols]);
  const target = denseTarget(c);
  const { grad } = loss.compute(pred, target, c.weights);
  assert.equal(grad.dtype, 'float64');
  assert.deepEqual(grad.shape, [c.rows, c.cols]);
  const g = Float64Array.from(grad.data);
  perturb?.(g);
  const fd = finiteDifferences(c.pred, () => loss.compute(pred, target, c.weights).loss, stepOf);
  const worst = worstEntry(g, fd, FD_FLOOR * Math.max(maxAbs(fd), 1e-300));
  fdReport.push(`${label}: ${worst.err.toExponential(2)}`);
  assert.ok(
    worst.err <= FD_RTOL,
    `${label}: gradient vs finite differences: relative error ${worst.err.toExponential(3)} > ${FD_RTOL} at ${at(worst.at, c.cols)} (analytic ${worst.got}, fd ${worst.want})`,
  );
  if (c.weights) {
    for (let r = 0; r < c.rows; r++) {
      if (c.weights[r] !== 0) continue;
      for (let j = 0; j < c.cols; j++) assert.equal(grad.data[r * c.cols + j], 0, `${label}: masked row ${r} has gradient`);
    }
  }
  return worst.err;
}

const CE_NAMES: Name[] = ['sparseCategoricalCrossentropy', 'categoricalCrossentropy', 'binaryCrossentropy'];
const ALL_NAMES: Name[] = [...CE_NAMES, 'meanSquaredError', 'meanAbsoluteError'];

// ---------------------------------------------------------------------------------------------
// Finite differences (float64)

describe('gradients against finite differences (float64)', () => {
  let seed = 100;
  for (const name of ALL_NAMES) {
    const logitsChoices = CE_NAMES.includes(name) ? [false, true] : [false];
    for (const fromLogits of logitsChoices) {
      for (const weighted of [false, true]) {
        const s = seed++;
        const label = `${name} fromLogits=${fromLogits} ${weighted ? 'weighted' : 'unweighted'}`;
        test(label, () => {
          const c = makeCase(name, fromLogits, weighted, s);
          if (name === 'meanAbsoluteError') {
            // Stay away from the kink at pred = target (the finite differences step is <= 2e-4).
            for (let k = 0; k < c.pred.length; k++) assert.ok(Math.abs(c.pred[k] - (c.target as Float64Array)[k]) > 1e-2, 'case too close to a kink');
          }
          const loss = getLoss(CE_NAMES.includes(name) ? { name, fromLogits } : name);
          checkGradient(loss, c, label);
        });
      }
    }
  }

  for (const name of CE_NAMES) {
    for (const fromLogits of [false, true]) {
      const s = seed++;
      const label = `${name} fromLogits=${fromLogits} labelSmoothing=0.2 weighted`;
      test(label, () => {
        checkGradient(getLoss({ name, fromLogits, labelSmoothing: 0.2 }), makeCase(name, fromLogits, true, s), label);
      });
    }
  }

  test('categorical probabilities in the clipped regions: zero gradient where the target is clipped, exact elsewhere', () => {
    // Row 0: target class 1 ≈ 1e-12 (clipped below): loss −log ε, no gradient at all.
    // Row 1: class 0 dominant (u > 1 − ε, clipped above) and the target: no gradient.
    // Row 2: a clipped non-target entry (5e-8) with an unclipped target: gradient through the row sum.
    const pred = Float64Array.from([0.3, 1e-12, 0.7, 1, 1e-9, 1e-9, 0.4, 0.6, 5e-8]);
    const loss = getLoss('sparseCategoricalCrossentropy');
    const { loss: value, grad } = loss.compute(Tensor.from(pred, [3, 3]), Int32Array.from([1, 0, 1]));
    const S2 = 0.4 + 0.6 + 5e-8;
    const want = (-Math.log(LOSS_EPSILON) - Math.log(1 - LOSS_EPSILON) - Math.log(0.6 / S2)) / 3;
    assert.ok(Math.abs(value - want) <= 1e-15 * want, `loss ${value}, want ${want}`);
    for (let k = 0; k < 6; k++) assert.equal(grad.data[k], 0, `grad ${at(k, 3)} must be 0 (target clipped)`);
    assert.ok(Math.abs(grad.data[8] - 1 / S2 / 3) <= 1e-15, `the clipped non-target entry gets gradient 1/S through the row sum, got ${grad.data[8]}`);
    // Finite differences: rows 0-1 (the loss is flat there: differences exactly 0) with steps small
    // enough to stay clipped; row 2 alone (a small loss, so little rounding) with a step of 0.8·p for
    // the clipped entry (p ± h stays below ε·S) and 1e-4·p elsewhere.
    const flat: Case = { pred: pred.slice(0, 6), target: Int32Array.from([1, 0]), weights: undefined, rows: 2, cols: 3 };
    checkGradient(loss, flat, 'sparse probabilities, target clipped', undefined, (x) => 1e-4 * x);
    const step = (x: number): number => (x < 1e-6 ? 0.8 * x : 1e-4 * x);
    const row: Case = { pred: pred.slice(6), target: Int32Array.from([1]), weights: undefined, rows: 1, cols: 3 };
    checkGradient(loss, row, 'sparse probabilities, non-target clipped', undefined, step);
    const flatDense: Case = { ...flat, target: Float64Array.from([0, 1, 0, 1, 0, 0]) };
    checkGradient(getLoss('categoricalCrossentropy'), flatDense, 'categorical probabilities, target clipped', undefined, (x) => 1e-4 * x);
    const rowDense: Case = { ...row, target: Float64Array.from([0.3, 0.7, 0]) };
    checkGradient(getLoss('categoricalCrossentropy'), rowDense, 'categorical probabilities, non-target clipped', undefined, step);
  });

  test('binary probabilities at 0 and 1: clipped, zero gradient; exact elsewhere', () => {
    const pred = Float64Array.from([0, 1, 0.3, 1e-9, 0.999, 1 - 1e-9]);
    const target = Float64Array.from([1, 0, 0.5, 0.2, 1, 0.7]);
    const c: Case = { pred, target, weights: undefined, rows: 2, cols: 3 };
    const loss = getLoss('binaryCrossentropy');
    const { loss: value, grad } = loss.compute(Tensor.from(pred, [2, 3]), Tensor.from(target, [2, 3]));
    const q = (p: number): number => Math.min(Math.max(p, LOSS_EPSILON), 1 - LOSS_EPSILON);
    let want = 0;
    for (let k = 0; k < 6; k++) want -= target[k] * Math.log(q(pred[k])) + (1 - target[k]) * Math.log(1 - q(pred[k]));
    want /= 6;  // mean over 3 columns, then over 2 rows
    assert.ok(Math.abs(value - want) <= 1e-14 * want, `loss ${value}, want ${want}`);
    for (const k of [0, 1, 3, 5]) assert.equal(grad.data[k], 0, `grad ${at(k, 3)} must be 0 (clipped)`);
    // Finite differences only away from 0 and 1 (a step from p = 0 would leave [0, 1]).
    const inner: Case = { pred: Float64Array.from([0.3, 0.999]), target: Float64Array.from([0.5, 1]), weights: undefined, rows: 1, cols: 2 };
    checkGradient(loss, inner, 'binary probabilities near 1');
  });

  test('control: the finite-difference check fails on a gradient off by 1e-6 in one entry', () => {
    const c = makeCase('categoricalCrossentropy', true, true, 7);
    assert.throws(
      () => checkGradient(getLoss({ name: 'categoricalCrossentropy', fromLogits: true }), c, 'control', (g) => {
        g[1] *= 1 + 1e-6;
      }),
      /relative error/,
    );
    fdReport.pop();
  });

  test('float32 pred: float32 gradient equal to the float64 gradient rounded', () => {
    for (const name of ALL_NAMES) {
      for (const fromLogits of CE_NAMES.includes(name) ? [false, true] : [false]) {
        const c = makeCase(name, fromLogits, true, 55);
        const p32 = Float32Array.from(c.pred);
        const loss = getLoss(CE_NAMES.includes(name) ? { name, fromLogits } : name);
        const t = c.target instanceof Int32Array ? c.target : Tensor.from(Float32Array.from(c.target), [c.rows, c.cols]);
        const r32 = loss.compute(Tensor.from(p32, [c.rows, c.cols]), t, c.weights);
        const t64 = c.target instanceof Int32Array ? c.target : Tensor.from(Float64Array.from(Float32Array.from(c.target)), [c.rows, c.cols]);
        const r64 = loss.compute(Tensor.from(Float64Array.from(p32), [c.rows, c.cols]), t64, c.weights);
        assert.equal(r32.grad.dtype, 'float32', name);
        assert.equal(r32.loss, r64.loss, `${name}: float32 and float64 pred of the same values give the same loss`);
        assert.deepEqual(r32.grad.data, Float32Array.from(r64.grad.data), `${name} fromLogits=${fromLogits}: gradient`);
      }
    }
  });
});

after(() => {
  if (fdReport.length) console.log(`# worst relative error per finite-difference case (tolerance ${FD_RTOL}):\n#   ${fdReport.join('\n#   ')}`);
});

// ---------------------------------------------------------------------------------------------
// Closed forms and the old losses

describe('values', () => {
  test('sparse CE with logits equals softmaxCrossEntropy; mse equals mseLoss (unweighted)', () => {
    const c = makeCase('sparseCategoricalCrossentropy', true, false, 3);
    const pred = Tensor.from(c.pred, [c.rows, c.cols]);
    const a = getLoss({ name: 'sparseCategoricalCrossentropy', fromLogits: true }).compute(pred, c.target as Int32Array);
    const b = softmaxCrossEntropy(pred, c.target as Int32Array);
    assert.ok(Math.abs(a.loss - b.loss) <= 1e-15 * b.loss, `${a.loss} vs ${b.loss}`);
    const w = worstEntry(a.grad.data, b.grad.data, 1e-3);
    assert.ok(w.err <= 1e-14, `grad ${w.err}`);
    const m = makeCase('meanSquaredError', false, false, 4);
    const mp = Tensor.from(m.pred, [m.rows, m.cols]), mt = Tensor.from(m.target as Float64Array, [m.rows, m.cols]);
    const x = getLoss('mse').compute(mp, mt), y = mseLoss(mp, mt);
    assert.ok(Math.abs(x.loss - y.loss) <= 1e-14 * y.loss, `${x.loss} vs ${y.loss}`);
    assert.ok(worstEntry(x.grad.data, y.grad.data, 1e-3).err <= 1e-14);
  });

  test('probabilities equal the logits form on softmax(logits); rows are normalised by their sum (Keras)', () => {
    const c = makeCase('categoricalCrossentropy', true, true, 9);
    const probs = new Float64Array(c.pred.length);
    for (let r = 0; r < c.rows; r++) {
      let s = 0;
      for (let j = 0; j < c.cols; j++) s += Math.exp(c.pred[r * c.cols + j]);
      // Scaled by 3: the normalisation divides it away.
      for (let j = 0; j < c.cols; j++) probs[r * c.cols + j] = (3 * Math.exp(c.pred[r * c.cols + j])) / s;
    }
    const t = denseTarget(c);
    const fromLogits = getLoss({ name: 'categoricalCrossentropy', fromLogits: true }).compute(Tensor.from(c.pred, [c.rows, c.cols]), t, c.weights).loss;
    const fromProbs = getLoss('categoricalCrossentropy').compute(Tensor.from(probs, [c.rows, c.cols]), t, c.weights).loss;
    assert.ok(Math.abs(fromLogits - fromProbs) <= 1e-14 * fromLogits, `${fromLogits} vs ${fromProbs}`);
  });

  test('weighted mean = Σ w·ℓ / Σ w, from per-row losses', () => {
    for (const name of ALL_NAMES) {
      const c = makeCase(name, false, true, 21);
      const loss = getLoss(name);
      const got = loss.compute(Tensor.from(c.pred, [c.rows, c.cols]), denseTarget(c), c.weights).loss;
      let num = 0, den = 0;
      for (let r = 0; r < c.rows; r++) {
        const one: Case = { ...c, rows: 1, pred: c.pred.slice(r * c.cols, (r + 1) * c.cols), weights: undefined,
          target: c.target instanceof Int32Array ? c.target.slice(r, r + 1) : c.target.slice(r * c.cols, (r + 1) * c.cols) };
        num += c.weights![r] * loss.compute(Tensor.from(one.pred, [1, c.cols]), denseTarget(one)).loss;
        den += c.weights![r];
      }
      assert.ok(Math.abs(got - num / den) <= 1e-14 * Math.abs(num / den), `${name}: ${got} vs ${num / den}`);
    }
  });

  test('meanAbsoluteError: gradient sign(pred − target)/k, 0 where pred = target', () => {
    const pred = Tensor.from([1, 2, 3, -1], [2, 2], 'float64');
    const target = Tensor.from([1, 0, 3.5, -1], [2, 2], 'float64');
    const { loss, grad } = getLoss('mae').compute(pred, target);
    assert.equal(loss, (0 + 2 + 0.5 + 0) / 4);
    assert.deepEqual([...grad.data], [0, 0.25, -0.25, 0]);
  });

  test('extreme logits stay finite (stable log-softmax and sigmoid CE)', () => {
    const z = Tensor.from([1000, -1000, 0, -1000, 1000, 0], [2, 3], 'float64');
    const sparse = getLoss({ name: 'sparseCategoricalCrossentropy', fromLogits: true }).compute(z, Int32Array.from([1, 1]));
    assert.ok(Math.abs(sparse.loss - 1000) <= 1e-12, `sparse ${sparse.loss}`);  // (2000 + 0) / 2
    assert.ok([...sparse.grad.data].every(Number.isFinite));
    const bce = getLoss({ name: 'binaryCrossentropy', fromLogits: true }).compute(z, Tensor.from([0, 1, 1, 0, 0, 0], [2, 3], 'float64'));
    const want = (1000 + 1000 + Math.LN2 + 0 + 1000 + Math.LN2) / 6;
    assert.ok(Math.abs(bce.loss - want) <= 1e-12, `binary ${bce.loss} vs ${want}`);
    assert.ok([...bce.grad.data].every(Number.isFinite));
  });
});

// ---------------------------------------------------------------------------------------------
// tfjs oracle (float32)

/** Value tolerance against tfjs: |got − want| <= 1e-5·max(|want|, 1e-2). */
const TF_TOL = 1e-5;
/** Gradient tolerance against tf.grad (float32 on both sides): relative 1e-5, floor 1e-2 of the largest entry. */
const TF_GRAD_TOL = 1e-5;

function closeValue(got: number, want: number, what: string, tol = TF_TOL): void {
  assert.ok(Math.abs(got - want) <= tol * Math.max(Math.abs(want), 1e-2), `${what}: got ${got}, tfjs ${want} (difference ${Math.abs(got - want).toExponential(3)})`);
}

function closeGrad(got: ArrayLike<number>, want: ArrayLike<number>, cols: number, what: string): void {
  const w = worstEntry(got, want, 1e-2 * Math.max(maxAbs(want), 1e-30));
  assert.ok(w.err <= TF_GRAD_TOL, `${what}: gradient relative error ${w.err.toExponential(3)} at ${at(w.at, cols)} (got ${w.got}, tfjs ${w.want})`);
}

interface Case32 {
  pred: Float32Array;
  target: Int32Array | Float32Array;
  weights: Float64Array | undefined;
  rows: number;
  cols: number;
}

/**
 * makeCase in float32. Soft categorical targets are normalised to sum to 1 here: tfjs's (and
 * TensorFlow's) fused softmax cross-entropy gradient is softmax − t, exact only then; rnnkit's is the
 * exact (Σ t)·softmax − t (checked by finite differences above).
 */
function case32(name: Name, fromLogits: boolean, weighted: boolean, seed: number, rows = 7, cols = 5): Case32 {
  const c = makeCase(name, fromLogits, weighted, seed, rows, cols);
  if (name === 'categoricalCrossentropy') {
    const t = c.target as Float64Array;
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let j = 0; j < cols; j++) sum += t[r * cols + j];
      for (let j = 0; j < cols; j++) t[r * cols + j] /= sum;
    }
  }
  return { ...c, pred: Float32Array.from(c.pred), target: c.target instanceof Int32Array ? c.target : Float32Array.from(c.target) };
}

function oneHot32(labels: Int32Array, cols: number): Float32Array {
  const out = new Float32Array(labels.length * cols);
  labels.forEach((c, r) => (out[r * cols + c] = 1));
  return out;
}

function target32(c: Case32): Int32Array | Tensor {
  return c.target instanceof Int32Array ? c.target : Tensor.from(c.target, [c.rows, c.cols]);
}

/** The dense float32 targets tfjs is given (one-hot rows for sparse). */
function tfTarget(c: Case32): tf.Tensor2D {
  return tf.tensor2d(c.target instanceof Int32Array ? oneHot32(c.target, c.cols) : c.target, [c.rows, c.cols]);
}

function tfWeights(c: Case32, column: boolean): tf.Tensor | undefined {
  if (!c.weights) return undefined;
  return column ? tf.tensor2d(Float32Array.from(c.weights), [c.rows, 1]) : tf.tensor1d(Float32Array.from(c.weights));
}

/** tfjs's reduction of per-row values with our weights: Reduction.MEAN = Σ w·v / Σ w (mean without weights). */
function tfWeightedMean(perRow: tf.Tensor, c: Case32): tf.Tensor {
  return tf.losses.computeWeightedLoss(perRow, tfWeights(c, false), tf.Reduction.MEAN);
}

/** The value and gradient (tf.grad with respect to pred) of a tfjs scalar loss of pred. */
function tfLossAndGrad(c: Case32, f: (pred: tf.Tensor2D) => tf.Tensor): { value: number; grad: Float32Array } {
  return tf.tidy(() => {
    const pred = tf.tensor2d(c.pred, [c.rows, c.cols]);
    const value = (f(pred).dataSync() as Float32Array)[0];
    const grad = tf.grad((p: tf.Tensor) => f(p as tf.Tensor2D))(pred).dataSync() as Float32Array;
    return { value, grad: Float32Array.from(grad) };
  });
}

describe('against tfjs (float32)', () => {
  before(async () => {
    const ok = await tf.setBackend('cpu');
    if (!ok || tf.getBackend() !== 'cpu') throw new Error('could not activate the tfjs cpu backend');
  });

  let seed = 300;
  for (const weighted of [false, true]) {
    const tag = weighted ? 'weighted' : 'unweighted';

    for (const [name, smoothing] of [['sparseCategoricalCrossentropy', 0], ['categoricalCrossentropy', 0], ['categoricalCrossentropy', 0.1], ['sparseCategoricalCrossentropy', 0.3]] as const) {
      const s = seed++;
      test(`${name} fromLogits=true labelSmoothing=${smoothing} ${tag} vs tf.losses.softmaxCrossEntropy`, () => {
        const c = case32(name, true, weighted, s);
        const ours = getLoss({ name, fromLogits: true, labelSmoothing: smoothing }).compute(Tensor.from(c.pred, [c.rows, c.cols]), target32(c), c.weights);
        const want = tfLossAndGrad(c, (p) => tf.losses.softmaxCrossEntropy(tfTarget(c), p, tfWeights(c, false), smoothing, tf.Reduction.MEAN));
        closeValue(ours.loss, want.value, name);
        closeGrad(ours.grad.data, want.grad, c.cols, name);
      });
    }

    for (const name of ['sparseCategoricalCrossentropy', 'categoricalCrossentropy'] as const) {
      const s = seed++;
      test(`${name} fromLogits=false ${tag} vs tf.metrics.categoricalCrossentropy (normalise + clip)`, () => {
        const c = case32(name, false, weighted, s);
        const ours = getLoss(name).compute(Tensor.from(c.pred, [c.rows, c.cols]), target32(c), c.weights);
        const want = tfLossAndGrad(c, (p) => tfWeightedMean(tf.metrics.categoricalCrossentropy(tfTarget(c), p), c));
        closeValue(ours.loss, want.value, name);
        closeGrad(ours.grad.data, want.grad, c.cols, name);
      });
    }

    for (const smoothing of [0, 0.2]) {
      const s = seed++;
      test(`binaryCrossentropy fromLogits=true labelSmoothing=${smoothing} ${tag} vs tf.losses.sigmoidCrossEntropy`, () => {
        const c = case32('binaryCrossentropy', true, weighted, s);
        const ours = getLoss({ name: 'binaryCrossentropy', fromLogits: true, labelSmoothing: smoothing }).compute(Tensor.from(c.pred, [c.rows, c.cols]), target32(c), c.weights);
        const want = tfLossAndGrad(c, (p) => tf.losses.sigmoidCrossEntropy(tfTarget(c), p, tfWeights(c, true), smoothing, tf.Reduction.MEAN));
        closeValue(ours.loss, want.value, 'binaryCrossentropy');
        closeGrad(ours.grad.data, want.grad, c.cols, 'binaryCrossentropy');
      });
    }

    {
      const s = seed++;
      test(`binaryCrossentropy fromLogits=false ${tag} vs tf.metrics.binaryCrossentropy`, () => {
        const c = case32('binaryCrossentropy', false, weighted, s);
        const ours = getLoss('binaryCrossentropy').compute(Tensor.from(c.pred, [c.rows, c.cols]), target32(c), c.weights);
        const want = tfLossAndGrad(c, (p) => tfWeightedMean(tf.metrics.binaryCrossentropy(tfTarget(c), p), c));
        closeValue(ours.loss, want.value, 'binaryCrossentropy');
        closeGrad(ours.grad.data, want.grad, c.cols, 'binaryCrossentropy');
      });
    }

    for (const [name, alias] of [['meanSquaredError', 'mse'], ['meanAbsoluteError', 'mae']] as const) {
      const s = seed++;
      test(`${alias} ${tag} vs tf.losses.${name === 'meanSquaredError' ? 'meanSquaredError' : 'absoluteDifference'} and tf.metrics.${name}`, () => {
        const c = case32(name, false, weighted, s);
        const ours = getLoss(alias).compute(Tensor.from(c.pred, [c.rows, c.cols]), target32(c), c.weights);
        const lossFn = name === 'meanSquaredError' ? tf.losses.meanSquaredError : tf.losses.absoluteDifference;
        const want = tfLossAndGrad(c, (p) => lossFn(tfTarget(c), p, tfWeights(c, true), tf.Reduction.MEAN));
        closeValue(ours.loss, want.value, name);
        closeGrad(ours.grad.data, want.grad, c.cols, name);
        const metricFn = name === 'meanSquaredError' ? tf.metrics.meanSquaredError : tf.metrics.meanAbsoluteError;
        const viaMetric = tf.tidy(() => (tfWeightedMean(metricFn(tfTarget(c), tf.tensor2d(c.pred, [c.rows, c.cols])), c).dataSync() as Float32Array)[0]);
        closeValue(ours.loss, viaMetric, `${name} (tf.metrics)`);
        const m = getMetric(name, getLoss(alias));
        m.update(Tensor.from(c.pred, [c.rows, c.cols]), target32(c), c.weights);
        closeValue(m.result(), viaMetric, `${name} metric`);
      });
    }

    {
      const s = seed++;
      test(`metrics ${tag}: accuracies vs tf.metrics, perplexity and bitsPerCharacter vs tf.losses.softmaxCrossEntropy`, () => {
        const sparse = case32('sparseCategoricalCrossentropy', true, weighted, s, 40, 4);
        const pred = Tensor.from(sparse.pred, [sparse.rows, sparse.cols]);
        const labels = tf.tensor1d(Float32Array.from(sparse.target as Int32Array));
        const logitsLoss = getLoss({ name: 'sparseCategoricalCrossentropy', fromLogits: true });
        const run = (name: MetricName, loss: Loss, c: Case32): number => {
          const m = getMetric(name, loss);
          m.update(Tensor.from(c.pred, [c.rows, c.cols]), target32(c), c.weights);
          return m.result();
        };
        const tfMean = (f: () => tf.Tensor, c: Case32): number => tf.tidy(() => (tfWeightedMean(f(), c).dataSync() as Float32Array)[0]);

        const wantSparseAcc = tfMean(() => tf.metrics.sparseCategoricalAccuracy(labels, tf.tensor2d(sparse.pred, [sparse.rows, sparse.cols])), sparse);
        closeValue(run('accuracy', logitsLoss, sparse), wantSparseAcc, 'accuracy (sparse)');
        closeValue(run('sparseCategoricalAccuracy', getLoss('sparseCategoricalCrossentropy'), sparse), wantSparseAcc, 'sparseCategoricalAccuracy');
        assert.ok(wantSparseAcc > 0 && wantSparseAcc < 1, `a meaningful accuracy (${wantSparseAcc})`);

        const ce = tf.tidy(() => (tf.losses.softmaxCrossEntropy(tfTarget(sparse), tf.tensor2d(sparse.pred, [sparse.rows, sparse.cols]), tfWeights(sparse, false), 0, tf.Reduction.MEAN).dataSync() as Float32Array)[0]);
        closeValue(run('perplexity', logitsLoss, sparse), Math.exp(ce), 'perplexity');
        closeValue(run('bitsPerCharacter', logitsLoss, sparse), ce / Math.LN2, 'bitsPerCharacter');
        // Label smoothing shapes the loss, not the perplexity.
        closeValue(run('perplexity', getLoss({ name: 'sparseCategoricalCrossentropy', fromLogits: true, labelSmoothing: 0.3 }), sparse), Math.exp(ce), 'perplexity (smoothed loss)');
        // Probability pred: softmax of the logits gives the same perplexity.
        const probs = tf.tidy(() => tf.softmax(tf.tensor2d(sparse.pred, [sparse.rows, sparse.cols])).dataSync() as Float32Array);
        closeValue(run('perplexity', getLoss('sparseCategoricalCrossentropy'), { ...sparse, pred: Float32Array.from(probs) }), Math.exp(ce), 'perplexity (probabilities)');
        // Categorical CE: dense targets.
        const cat = case32('categoricalCrossentropy', true, weighted, s + 1000, 40, 4);
        const catCe = tf.tidy(() => (tf.losses.softmaxCrossEntropy(tfTarget(cat), tf.tensor2d(cat.pred, [cat.rows, cat.cols]), tfWeights(cat, false), 0, tf.Reduction.MEAN).dataSync() as Float32Array)[0]);
        closeValue(run('perplexity', getLoss({ name: 'categoricalCrossentropy', fromLogits: true }), cat), Math.exp(catCe), 'perplexity (categorical)');

        const wantCatAcc = tfMean(() => tf.metrics.categoricalAccuracy(tfTarget(cat), tf.tensor2d(cat.pred, [cat.rows, cat.cols])), cat);
        closeValue(run('accuracy', getLoss('categoricalCrossentropy'), cat), wantCatAcc, 'accuracy (categorical)');
        closeValue(run('categoricalAccuracy', getLoss('categoricalCrossentropy'), cat), wantCatAcc, 'categoricalAccuracy');

        // Binary: 0/1 targets, threshold 0.5 on probabilities (tfjs) and 0 on logits.
        const bin = case32('binaryCrossentropy', false, weighted, s + 2000, 40, 3);
        for (let k = 0; k < bin.target.length; k++) (bin.target as Float32Array)[k] = (bin.target as Float32Array)[k] > 0.5 ? 1 : 0;
        const wantBinAcc = tfMean(() => tf.metrics.binaryAccuracy(tfTarget(bin), tf.tensor2d(bin.pred, [bin.rows, bin.cols])), bin);
        assert.ok(wantBinAcc > 0 && wantBinAcc < 1, `a meaningful binary accuracy (${wantBinAcc})`);
        closeValue(run('accuracy', getLoss('binaryCrossentropy'), bin), wantBinAcc, 'accuracy (binary)');
        const logits = Float32Array.from(bin.pred, (p) => Math.log(p / (1 - p)));
        closeValue(run('binaryAccuracy', getLoss({ name: 'binaryCrossentropy', fromLogits: true }), { ...bin, pred: logits }), wantBinAcc, 'binaryAccuracy (logits, threshold 0)');
        // Control: logits thresholded at 0.5 as if they were probabilities give another value.
        assert.notEqual(run('binaryAccuracy', getLoss('binaryCrossentropy'), { ...bin, pred: Float32Array.from(logits, (z) => Math.min(Math.max(z, 0), 1)) }), wantBinAcc);
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------
// The masked mean

describe('masked mean', () => {
  test('changing pred (even to NaN) or the target of a weight-0 row changes nothing', () => {
    for (const name of ALL_NAMES) {
      for (const fromLogits of CE_NAMES.includes(name) ? [false, true] : [false]) {
        const c = makeCase(name, fromLogits, true, 77);
        const loss = getLoss(CE_NAMES.includes(name) ? { name, fromLogits } : name);
        const base = loss.compute(Tensor.from(c.pred, [c.rows, c.cols]), denseTarget(c), c.weights);
        const masked = [...c.weights!.keys()].filter((r) => c.weights![r] === 0);
        assert.ok(masked.length > 0 && masked.length < c.rows);
        const pred2 = c.pred.slice();
        const target2 = c.target.slice();
        for (const r of masked) {
          pred2.fill(NaN, r * c.cols, (r + 1) * c.cols);
          pred2[r * c.cols] = -5;  // also a negative "probability"
          if (target2 instanceof Int32Array) target2[r] = -1;  // padding id, out of range
          else target2.fill(7, r * c.cols, (r + 1) * c.cols);
        }
        const t2 = target2 instanceof Int32Array ? target2 : Tensor.from(target2, [c.rows, c.cols]);
        const again = loss.compute(Tensor.from(pred2, [c.rows, c.cols]), t2, c.weights);
        assert.equal(again.loss, base.loss, `${name} fromLogits=${fromLogits}: loss`);
        assert.deepEqual(again.grad.data, base.grad.data, `${name} fromLogits=${fromLogits}: gradient`);
        // Control: changing an unmasked row does change the loss.
        const pred3 = c.pred.slice();
        const live = c.weights!.findIndex((w) => w > 0);
        pred3[live * c.cols] = name === 'binaryCrossentropy' && !fromLogits ? 0.5 : pred3[live * c.cols] * 0.5 + 0.01;
        assert.notEqual(loss.compute(Tensor.from(pred3, [c.rows, c.cols]), denseTarget(c), c.weights).loss, base.loss);
      }
    }
  });

  test('0/1 weights give the plain mean over the kept rows; Σw = 0 and rows = 0 give loss 0 and zero gradient', () => {
    const c = makeCase('sparseCategoricalCrossentropy', true, false, 12, 6, 3);
    const loss = getLoss({ name: 'sparseCategoricalCrossentropy', fromLogits: true });
    const weights = Float64Array.from([1, 0, 1, 1, 0, 0]);
    const keep = [0, 2, 3];
    const all = loss.compute(Tensor.from(c.pred, [6, 3]), c.target as Int32Array, weights);
    const subPred = Float64Array.from(keep.flatMap((r) => [...c.pred.slice(r * 3, r * 3 + 3)]));
    const sub = loss.compute(Tensor.from(subPred, [3, 3]), Int32Array.from(keep.map((r) => (c.target as Int32Array)[r])));
    assert.equal(all.loss, sub.loss);
    keep.forEach((r, i) => assert.deepEqual(all.grad.data.slice(r * 3, r * 3 + 3), sub.grad.data.slice(i * 3, i * 3 + 3)));

    for (const name of ALL_NAMES) {
      const z = makeCase(name, false, false, 13);
      const r = getLoss(name).compute(Tensor.from(z.pred, [z.rows, z.cols]), denseTarget(z), new Float64Array(z.rows));
      assert.equal(r.loss, 0, name);
      assert.ok(r.grad.data.every((v) => v === 0), name);
      const empty = getLoss(name).compute(Tensor.zeros([0, 3], 'float64'), name === 'sparseCategoricalCrossentropy' ? new Int32Array(0) : Tensor.zeros([0, 3], 'float64'));
      assert.equal(empty.loss, 0);
      assert.deepEqual(empty.grad.shape, [0, 3]);
    }
  });

  test('metrics ignore weight-0 rows too', () => {
    const c = case32('sparseCategoricalCrossentropy', true, true, 14, 10, 4);
    for (const name of ['accuracy', 'perplexity', 'bitsPerCharacter'] as const) {
      const m = getMetric(name, getLoss({ name: 'sparseCategoricalCrossentropy', fromLogits: true }));
      m.update(Tensor.from(c.pred, [c.rows, c.cols]), c.target as Int32Array, c.weights);
      const first = m.result();
      const pred2 = c.pred.slice();
      c.weights!.forEach((w, r) => w === 0 && pred2.fill(r % 2 ? NaN : 100, r * c.cols, (r + 1) * c.cols));
      m.reset();
      m.update(Tensor.from(pred2, [c.rows, c.cols]), c.target as Int32Array, c.weights);
      assert.equal(m.result(), first, name);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// getLoss / getMetric and their errors

describe('getLoss, getMetric and errors', () => {
  test('names, defaults, aliases and getConfig round trip', () => {
    assert.deepEqual(LOSS_NAMES, ['sparseCategoricalCrossentropy', 'categoricalCrossentropy', 'binaryCrossentropy', 'meanSquaredError', 'meanAbsoluteError', 'mse', 'mae']);
    const sparse = getLoss('sparseCategoricalCrossentropy');
    assert.equal(sparse.fromLogits, false);
    assert.equal(sparse.targetKind, 'sparse');
    assert.deepEqual(sparse.getConfig(), { name: 'sparseCategoricalCrossentropy', fromLogits: false, labelSmoothing: 0 });
    assert.equal(getLoss('categoricalCrossentropy').targetKind, 'dense');
    assert.equal(getLoss('binaryCrossentropy').targetKind, 'dense');
    const mse = getLoss('mse');
    assert.equal(mse.name, 'meanSquaredError');
    assert.equal(mse.fromLogits, false);
    assert.equal(mse.targetKind, 'dense');
    assert.deepEqual(mse.getConfig(), { name: 'meanSquaredError' });
    assert.equal(getLoss({ name: 'mae' }).name, 'meanAbsoluteError');
    assert.equal(getLoss({ name: 'mse', fromLogits: false }).name, 'meanSquaredError');
    const cfg: LossConfig = { name: 'binaryCrossentropy', fromLogits: true, labelSmoothing: 0.25 };
    const bce = getLoss(cfg);
    assert.deepEqual(bce.getConfig(), cfg);
    assert.equal(getLoss(bce), bce, 'a Loss is returned as it is');
    const again = getLoss(bce.getConfig());
    const c = makeCase('binaryCrossentropy', true, true, 5);
    const run = (l: Loss): number => l.compute(Tensor.from(c.pred, [c.rows, c.cols]), denseTarget(c), c.weights).loss;
    assert.equal(run(again), run(bce));
    assert.notEqual(run(getLoss({ name: 'binaryCrossentropy', fromLogits: true })), run(bce), 'labelSmoothing changes the loss');
  });

  test('getLoss errors: unknown name, unknown option, bad option values', () => {
    const list = /valid names: sparseCategoricalCrossentropy, categoricalCrossentropy, binaryCrossentropy, meanSquaredError, meanAbsoluteError, mse, mae/;
    assert.throws(() => getLoss('crossEntropy' as never), { name: 'TypeError', message: /unknown loss "crossEntropy"/ });
    assert.throws(() => getLoss('crossEntropy' as never), { name: 'TypeError', message: list });
    assert.throws(() => getLoss({ name: 'hinge' } as never), { name: 'TypeError', message: /loss\.name: unknown loss "hinge"/ });
    assert.throws(() => getLoss({} as never), { name: 'TypeError', message: /unknown loss undefined/ });
    assert.throws(() => getLoss(3 as never), { name: 'TypeError', message: /expected a loss name/ });
    assert.throws(() => getLoss({ name: 'categoricalCrossentropy', fromLogit: true } as never), {
      name: 'TypeError',
      message: /loss\.fromLogit: unknown option for categoricalCrossentropy; valid options: name, fromLogits, labelSmoothing/,
    });
    assert.throws(() => getLoss({ name: 'mse', labelSmoothing: 0.1 }), { name: 'TypeError', message: /loss\.labelSmoothing: unknown option for meanSquaredError/ });
    assert.throws(() => getLoss({ name: 'mae', fromLogits: true }), { name: 'TypeError', message: /fromLogits.*meanAbsoluteError/ });
    assert.throws(() => getLoss({ name: 'binaryCrossentropy', fromLogits: 1 as never }), { name: 'TypeError', message: /loss\.fromLogits: expected a boolean, got 1/ });
    assert.throws(() => getLoss({ name: 'binaryCrossentropy', labelSmoothing: 1.5 }), { name: 'RangeError', message: /loss\.labelSmoothing: expected a finite number in \[0, 1\], got 1\.5/ });
    assert.throws(() => getLoss({ name: 'binaryCrossentropy', labelSmoothing: '0.1' as never }), { name: 'TypeError', message: /loss\.labelSmoothing/ });
  });

  test('compute errors name the argument', () => {
    const sparse = getLoss('sparseCategoricalCrossentropy');
    const logits = getLoss({ name: 'sparseCategoricalCrossentropy', fromLogits: true });
    const cat = getLoss('categoricalCrossentropy');
    const bce = getLoss('binaryCrossentropy');
    const p = Tensor.from([0.2, 0.3, 0.5, 0.1, 0.1, 0.8], [2, 3], 'float64');
    const ids = Int32Array.from([0, 2]);
    assert.throws(() => sparse.compute(p, Int32Array.from([0, 1, 2])), { name: 'RangeError', message: /sparseCategoricalCrossentropy: target must have length rows=2.*got 3/ });
    assert.throws(() => sparse.compute(p, Int32Array.from([0, 3])), { name: 'RangeError', message: /target\[1\] must be a class id in \[0, 3\), got 3/ });
    assert.throws(() => logits.compute(p, Int32Array.from([-1, 0])), { name: 'RangeError', message: /target\[0\] must be a class id in \[0, 3\), got -1/ });
    assert.throws(() => sparse.compute(p, [0, 2] as never), { name: 'TypeError', message: /target must be an Int32Array/ });
    assert.throws(() => sparse.compute(p, p), { name: 'TypeError', message: /target must be an Int32Array.*dense loss/ });
    assert.throws(() => cat.compute(p, ids), { name: 'TypeError', message: /categoricalCrossentropy: target must be a Tensor.*sparse loss/ });
    assert.throws(() => cat.compute(p, Tensor.zeros([3, 2], 'float64')), { name: 'RangeError', message: /target \(same shape as pred\): expected shape \[rows=2, classes=3\], got \[3, 2\]/ });
    assert.throws(() => cat.compute(p, Tensor.zeros([6], 'float64')), { name: 'RangeError', message: /target.*expected rank 2/ });
    assert.throws(() => cat.compute(p, Tensor.from([0, 1, 0, -1, 0, 0], [2, 3], 'float64')), { name: 'RangeError', message: /target\[1, 0\] must be a finite number >= 0, got -1/ });
    assert.throws(() => bce.compute(p, Tensor.from([0, 1, 0, 1.5, 0, 0], [2, 3], 'float64')), { name: 'RangeError', message: /target\[1, 0\] must be in \[0, 1\], got 1\.5/ });
    assert.throws(() => sparse.compute(Tensor.zeros([2, 3, 1], 'float64'), ids), { name: 'RangeError', message: /pred must have shape \[rows, classes\].*got \[2, 3, 1\]/ });
    assert.throws(() => sparse.compute(Tensor.zeros([2, 0], 'float64'), ids), { name: 'RangeError', message: /classes >= 1/ });
    assert.throws(() => sparse.compute({ data: new Float64Array(6), shape: [2, 3] } as never, ids), { name: 'TypeError', message: /pred must be a Tensor/ });
    assert.throws(() => sparse.compute(p, ids, new Float64Array(3)), { name: 'RangeError', message: /weights must have length rows=2, got 3/ });
    assert.throws(() => sparse.compute(p, ids, Float64Array.from([1, -1])), { name: 'RangeError', message: /weights\[1\] must be a finite number >= 0, got -1/ });
    assert.throws(() => sparse.compute(p, ids, Float64Array.from([NaN, 1])), { name: 'RangeError', message: /weights\[0\]/ });
    assert.throws(() => sparse.compute(p, ids, Float32Array.from([1, 1]) as never), { name: 'TypeError', message: /weights must be a Float64Array/ });
    // Probabilities: negative entries and zero rows (logits given to a fromLogits: false loss).
    const z = Tensor.from([0.2, -0.3, 0.5, 0.1, 0.1, 0.8], [2, 3], 'float64');
    assert.throws(() => sparse.compute(z, ids), { name: 'RangeError', message: /pred\[0, 1\] must be >= 0, got -0\.3.*fromLogits: true/ });
    assert.throws(() => sparse.compute(Tensor.zeros([2, 3], 'float64'), ids), { name: 'RangeError', message: /pred row 0 sums to 0/ });
    assert.throws(() => bce.compute(Tensor.from([0.2, 1.3, 0.5, 0.1, 0.1, 0.8], [2, 3], 'float64'), p), { name: 'RangeError', message: /pred\[0, 1\] must be in \[0, 1\], got 1\.3/ });
    assert.doesNotThrow(() => logits.compute(z, ids), 'logits may be negative');
  });

  test('getMetric: names, resolution by the loss, errors', () => {
    assert.deepEqual(METRIC_NAMES, ['accuracy', 'sparseCategoricalAccuracy', 'categoricalAccuracy', 'binaryAccuracy', 'perplexity', 'bitsPerCharacter', 'meanSquaredError', 'meanAbsoluteError']);
    for (const n of METRIC_NAMES) {
      if (n === 'accuracy') continue;
      assert.equal(getMetric(n, getLoss('sparseCategoricalCrossentropy')).name, n);
    }
    assert.equal(getMetric('accuracy', getLoss('binaryCrossentropy')).name, 'accuracy');
    assert.throws(() => getMetric('acc' as never, getLoss('mse')), { name: 'TypeError', message: /unknown metric "acc"; valid names: accuracy, sparseCategoricalAccuracy/ });
    assert.throws(() => getMetric('accuracy', getLoss('mse')), { name: 'TypeError', message: /'accuracy' is not defined for the loss "meanSquaredError"/ });
    assert.throws(() => getMetric('accuracy', 'hinge' as never), { name: 'TypeError', message: /unknown loss "hinge"/ });
    const custom = { name: 'mine', reset() {}, update() {}, result: () => 42 };
    assert.equal(getMetric(custom, getLoss('mse')), custom);
    // Resolution: the sparse accuracy wants class ids, the categorical one a Tensor.
    const p = Tensor.from([0.2, 0.3, 0.5, 0.1, 0.1, 0.8], [2, 3], 'float64');
    assert.throws(() => getMetric('accuracy', getLoss('sparseCategoricalCrossentropy')).update(p, p), { name: 'TypeError', message: /accuracy metric: target must be an Int32Array/ });
    assert.throws(() => getMetric('accuracy', getLoss('categoricalCrossentropy')).update(p, Int32Array.from([0, 1])), { name: 'TypeError', message: /target must be a Tensor/ });
    assert.throws(() => getMetric('perplexity', getLoss('mse')).update(p, Int32Array.from([0, 3])), { name: 'RangeError', message: /perplexity metric: target\[1\]/ });
    // A failed update adds nothing.
    const m = getMetric('accuracy', getLoss('sparseCategoricalCrossentropy'));
    m.update(p, Int32Array.from([2, 2]));
    assert.equal(m.result(), 1);
    assert.throws(() => m.update(p, Int32Array.from([0, 9])), RangeError);
    assert.equal(m.result(), 1);
    m.update(p, Int32Array.from([0, 0]));
    assert.equal(m.result(), 0.5);
    m.reset();
    assert.equal(m.result(), 0, 'no rows: 0');
    assert.equal(getMetric('perplexity', getLoss('sparseCategoricalCrossentropy')).result(), 1, 'no rows: perplexity 1');
  });
});

// ---------------------------------------------------------------------------------------------
// Streaming

describe('streaming metrics', () => {
  interface Combo {
    metric: MetricName;
    loss: LossConfig;
    data: Name;
  }
  const combos: Combo[] = [
    { metric: 'accuracy', loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true }, data: 'sparseCategoricalCrossentropy' },
    { metric: 'sparseCategoricalAccuracy', loss: { name: 'sparseCategoricalCrossentropy' }, data: 'sparseCategoricalCrossentropy' },
    { metric: 'perplexity', loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true }, data: 'sparseCategoricalCrossentropy' },
    { metric: 'perplexity', loss: { name: 'sparseCategoricalCrossentropy' }, data: 'sparseCategoricalCrossentropy' },
    { metric: 'bitsPerCharacter', loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true }, data: 'sparseCategoricalCrossentropy' },
    { metric: 'perplexity', loss: { name: 'categoricalCrossentropy', fromLogits: true }, data: 'categoricalCrossentropy' },
    { metric: 'accuracy', loss: { name: 'categoricalCrossentropy' }, data: 'categoricalCrossentropy' },
    { metric: 'categoricalAccuracy', loss: { name: 'categoricalCrossentropy', fromLogits: true }, data: 'categoricalCrossentropy' },
    { metric: 'accuracy', loss: { name: 'binaryCrossentropy' }, data: 'binaryCrossentropy' },
    { metric: 'binaryAccuracy', loss: { name: 'binaryCrossentropy', fromLogits: true }, data: 'binaryCrossentropy' },
    { metric: 'meanSquaredError', loss: { name: 'mse' }, data: 'meanSquaredError' },
    { metric: 'meanAbsoluteError', loss: { name: 'mae' }, data: 'meanAbsoluteError' },
  ];
  let seed = 500;
  for (const { metric, loss, data } of combos) {
    for (const weighted of [false, true]) {
      const s = seed++;
      test(`${metric} with ${loss.name} fromLogits=${loss.fromLogits ?? false} ${weighted ? 'weighted' : 'unweighted'}: two updates = one over the concatenation`, () => {
        const fromLogits = loss.fromLogits ?? false;
        const a = makeCase(data, fromLogits, weighted, s, 5, 4);
        const b = makeCase(data, fromLogits, weighted, s + 1, 7, 4);
        const cat: Case = {
          rows: 12,
          cols: 4,
          pred: Float64Array.from([...a.pred, ...b.pred]),
          target: a.target instanceof Int32Array ? Int32Array.from([...a.target, ...(b.target as Int32Array)]) : Float64Array.from([...a.target, ...b.target]),
          weights: weighted ? Float64Array.from([...a.weights!, ...b.weights!]) : undefined,
        };
        const l = getLoss(loss);
        const m = getMetric(metric, l);
        m.update(Tensor.from(a.pred, [a.rows, 4]), denseTarget(a), a.weights);
        const partial = m.result();
        m.update(Tensor.from(b.pred, [b.rows, 4]), denseTarget(b), b.weights);
        const streamed = m.result();
        const one = getMetric(metric, l);
        one.update(Tensor.from(cat.pred, [12, 4]), denseTarget(cat), cat.weights);
        assert.equal(streamed, one.result(), 'streamed result');
        assert.ok(Number.isFinite(streamed));
        // Control: the result after the first update alone differs (or the data make it coincide rarely).
        if (metric === 'perplexity' || metric === 'bitsPerCharacter' || metric === 'meanSquaredError' || metric === 'meanAbsoluteError') {
          assert.notEqual(partial, streamed, 'the second update changes the result');
        }
        m.reset();
        m.update(Tensor.from(cat.pred, [12, 4]), denseTarget(cat), cat.weights);
        assert.equal(m.result(), one.result(), 'after reset');
        // Perplexity/bpc agree with the loss they come from (without label smoothing).
        if (metric === 'perplexity' || metric === 'bitsPerCharacter') {
          const ce = l.compute(Tensor.from(cat.pred, [12, 4]), denseTarget(cat), cat.weights).loss;
          const want = metric === 'perplexity' ? Math.exp(ce) : ce / Math.LN2;
          assert.ok(Math.abs(one.result() - want) <= 1e-14 * want, `${metric} ${one.result()} vs ${want} from the loss`);
        }
      });
    }
  }
});
