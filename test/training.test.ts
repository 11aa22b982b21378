/**
 * Training building blocks: the Dense layer, the losses, the optimizers and gradient clipping.
 *  - Dense (float64): forward against act(x Wᵀ + b) written out here; every gradient entry
 *    against central finite differences of L = Σ output ⊙ r for a fixed random r.
 *  - mseLoss and softmaxCrossEntropy: values from their definitions, gradients by finite differences.
 *  - Adam and SGD: several steps on tiny float64 tensors against the update rules as published
 *    (Kingma & Ba 2015, Algorithm 1; heavy-ball momentum), recomputed in the test.
 *  - clipGradNorm: returned norm, clipped norm and direction.
 *  - Learning: LSTM + Dense trained with MSE and Adam on a short adding problem (T = 10).
 * Inputs come from fixed seeds; failure messages give the worst entry, its index and both values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Random, Tensor } from '../lib/index.js';
import { Dense, type DenseActivation } from '../lib/layers/dense.js';
import { mseLoss, softmaxCrossEntropy } from '../lib/train/losses.js';
import { Adam, clipGradNorm, SGD } from '../lib/train/optimizers.js';
import { AddingModel, addingProblemBatch, evaluate } from '../examples/adding-problem.js';
import { centralDifferences } from './helpers/compare.js';

/** Tolerance on |got − want| / max(1, |want|) for finite-difference checks. */
const FD_TOL = 1e-7;
/** Tolerance for closed forms recomputed in float64 (rounding only). */
const EXACT_TOL = 1e-12;

// ---------------------------------------------------------------------------------------------
// Helpers

function randomTensor(rng: Random, shape: number[], scale = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.from(Float64Array.from({ length: n }, () => rng.uniform(-scale, scale)), shape);
}

function multiIndex(flat: number, shape: readonly number[]): string {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(flat % shape[d]);
    flat = Math.floor(flat / shape[d]);
  }
  return `[${idx.join(', ')}]`;
}

/** Fails with the worst entry (index in `shape`, both values) unless |got − want| / max(1, |want|) <= tol everywhere. */
function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string, shape: readonly number[] = [got.length]): void {
  assert.equal(got.length, want.length, `${what}: length ${got.length}, expected ${want.length}`);
  let worst = -1, at = 0;
  for (let k = 0; k < got.length; k++) {
    const err = Math.abs(got[k] - want[k]) / Math.max(1, Math.abs(want[k]));
    if (!(err <= worst)) {
      worst = err;
      at = k;
      if (Number.isNaN(err)) break;
    }
  }
  assert.ok(
    worst <= tol,
    `${what}: largest difference ${worst.toExponential(3)} > ${tol} at ${multiIndex(at, shape)} (got ${got[at]}, want ${want[at]})`,
  );
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k] * b[k];
  return s;
};

const f64 = (t: Tensor): Float64Array => {
  assert.ok(t.data instanceof Float64Array, 'expected a float64 tensor');
  return t.data;
};

// ---------------------------------------------------------------------------------------------
// Dense

const ACTIVATIONS: DenseActivation[] = ['linear', 'sigmoid', 'tanh', 'relu', 'softmax'];

/** act(x Wᵀ + b) row by row, from the definitions. */
function referenceDense(x: Tensor, w: Tensor, b: Tensor | undefined, activation: DenseActivation): Float64Array {
  const [batch, I] = x.shape as [number, number];
  const U = w.shape[0];
  const out = new Float64Array(batch * U);
  for (let r = 0; r < batch; r++) {
    const z = Array.from({ length: U }, (_, u) => {
      let s = b ? b.data[u] : 0;
      for (let i = 0; i < I; i++) s += x.data[r * I + i] * w.data[u * I + i];
      return s;
    });
    const denom = z.reduce((s, v) => s + Math.exp(v), 0);
    z.forEach((v, u) => {
      const act = { linear: v, sigmoid: 1 / (1 + Math.exp(-v)), tanh: Math.tanh(v), relu: Math.max(0, v), softmax: Math.exp(v) / denom };
      out[r * U + u] = act[activation];
    });
  }
  return out;
}

for (const activation of ACTIVATIONS) {
  for (const useBias of [true, false]) {
    test(`Dense ${activation}${useBias ? '' : ' (no bias)'}: forward and finite-difference gradients (float64)`, () => {
      const rng = new Random(ACTIVATIONS.indexOf(activation) * 2 + Number(useBias) + 11);
      const [batch, I, U] = [3, 5, 4];
      const layer = new Dense({ inputSize: I, units: U, activation, useBias, seed: 7, dtype: 'float64' });
      const params = layer.stateDict();
      if (params.bias) params.bias.data.set(randomTensor(rng, [U], 0.5).data);
      const x = randomTensor(rng, [batch, I]);
      const r = randomTensor(rng, [batch, U]);

      const { output, run } = layer.forward(x, { training: true });
      assert.deepEqual(output.shape, [batch, U]);
      assertClose(output.data, referenceDense(x, params.weight, params.bias, activation), EXACT_TOL, 'output', [batch, U]);

      const grads = layer.backward(run!, r);
      assert.deepEqual(Object.keys(grads.params).sort(), Object.keys(params).sort());
      const loss = (): number => dot(layer.forward(x).output.data, r.data);
      assertClose(grads.input.data, centralDifferences(f64(x), loss), FD_TOL, 'dInput', [batch, I]);
      for (const [name, p] of Object.entries(params)) {
        assertClose(grads.params[name].data, centralDifferences(f64(p), loss), FD_TOL, `d${name}`, p.shape);
      }
    });
  }
}

test('Dense: the run keeps its own copy of the input', () => {
  const layer = new Dense({ inputSize: 2, units: 2, activation: 'tanh', seed: 1, dtype: 'float64' });
  const x = Tensor.from([0.5, -0.25], [1, 2], 'float64');
  const dy = Tensor.from([1, -1], [1, 2], 'float64');
  const { run } = layer.forward(x, { training: true });
  const before = layer.backward(run!, dy);
  x.data.fill(9);
  const after = layer.backward(run!, dy);
  assert.deepEqual(after.params.weight.data, before.params.weight.data);
});

test('Dense: argument validation names the argument and the expected shape', () => {
  assert.throws(() => new Dense({ inputSize: 0, units: 2 }), { name: 'TypeError', message: /options\.inputSize/ });
  assert.throws(() => new Dense({ inputSize: 2, units: 1.5 }), { name: 'TypeError', message: /options\.units/ });
  assert.throws(() => new Dense({ inputSize: 2, units: 2, activation: 'gelu' as DenseActivation }), {
    name: 'TypeError',
    message: /options\.activation/,
  });
  const layer = new Dense({ inputSize: 3, units: 2, seed: 1 });
  assert.throws(() => layer.forward(Tensor.zeros([4, 2])), { name: 'RangeError', message: /\[batch, inputSize=3\].*\[4, 2\]/ });
  assert.throws(() => layer.forward(Tensor.zeros([4, 3, 1])), { name: 'RangeError', message: /\[batch, inputSize=3\]/ });
  assert.throws(() => layer.forward(Tensor.zeros([4, 3], 'float64')), { name: 'TypeError', message: /dtype float32/ });
  assert.throws(() => layer.forward([[1, 2, 3]] as unknown as Tensor), { name: 'TypeError', message: /input must be a Tensor/ });
  const { run } = layer.forward(Tensor.zeros([4, 3]), { training: true });
  assert.throws(() => layer.backward(run!, Tensor.zeros([4, 3])), { name: 'RangeError', message: /dOutput.*\[batch=4, units=2\]/ });
  const other = new Dense({ inputSize: 3, units: 2, seed: 1 });
  assert.throws(() => other.backward(run!, Tensor.zeros([4, 2])), { name: 'TypeError', message: /run must be/ });
});

test('Dense: stateDict layout and loadStateDict', () => {
  const a = new Dense({ inputSize: 3, units: 2, seed: 1 });
  const b = new Dense({ inputSize: 3, units: 2, seed: 2 });
  assert.deepEqual(a.stateDict().weight.shape, [2, 3]);
  assert.deepEqual(a.stateDict().bias.shape, [2]);
  b.loadStateDict(a.stateDict());
  const x = Tensor.from([1, 2, 3, -1, 0.5, 0], [2, 3]);
  assert.deepEqual(b.forward(x).output.data, a.forward(x).output.data);
  assert.throws(() => b.loadStateDict({ weight: Tensor.zeros([3, 2]), bias: Tensor.zeros([2]) }), {
    name: 'RangeError',
    message: /weight: expected shape \[2, 3\], got \[3, 2\]/,
  });
  assert.throws(() => b.loadStateDict({ weight: Tensor.zeros([2, 3]) }), { name: 'RangeError', message: /missing parameter bias/ });
  assert.throws(() => b.loadStateDict({ ...a.stateDict(), extra: Tensor.zeros([1]) }), { name: 'RangeError', message: /unexpected.*extra/ });
  const bad = Tensor.from([0, 0, NaN, 0, 0, 0], [2, 3]);
  const before = b.stateDict().bias.data.slice();
  assert.throws(() => b.loadStateDict({ weight: bad, bias: Tensor.from([5, 5], [2]) }), { name: 'RangeError', message: /non-finite/ });
  assert.deepEqual(b.stateDict().bias.data, before, 'a failed load must change nothing');
});

// ---------------------------------------------------------------------------------------------
// Losses

test('mseLoss: value and finite-difference gradient', () => {
  const rng = new Random(21);
  const pred = randomTensor(rng, [4, 3]);
  const target = randomTensor(rng, [4, 3]);
  const { loss, grad } = mseLoss(pred, target);
  let want = 0;
  for (let k = 0; k < 12; k++) want += (pred.data[k] - target.data[k]) ** 2 / 12;
  assertClose([loss], [want], EXACT_TOL, 'loss');
  assertClose(grad.data, centralDifferences(f64(pred), () => mseLoss(pred, target).loss), FD_TOL, 'dPred', [4, 3]);
  assert.throws(() => mseLoss(pred, randomTensor(rng, [3, 4])), { name: 'RangeError', message: /target.*expected shape \[4, 3\], got \[3, 4\]/ });
  assert.throws(() => mseLoss(pred, Tensor.zeros([4, 3])), { name: 'TypeError', message: /dtype float64/ });
});

test('softmaxCrossEntropy: value, finite-difference gradient, large logits', () => {
  const rng = new Random(22);
  const logits = randomTensor(rng, [3, 5], 3);
  const labels = [4, 0, 2];
  const { loss, grad } = softmaxCrossEntropy(logits, labels);
  let want = 0;
  for (let r = 0; r < 3; r++) {
    const row = Array.from(logits.data.subarray(r * 5, r * 5 + 5));
    want -= Math.log(Math.exp(row[labels[r]]) / row.reduce((s, v) => s + Math.exp(v), 0)) / 3;
  }
  assertClose([loss], [want], EXACT_TOL, 'loss');
  assertClose(grad.data, centralDifferences(f64(logits), () => softmaxCrossEntropy(logits, labels).loss), FD_TOL, 'dLogits', [3, 5]);

  const big = softmaxCrossEntropy(Tensor.from([1000, 0, -1000, 1000], [2, 2], 'float64'), Int32Array.from([1, 0]));
  assertClose([big.loss], [(1000 + 2000) / 2], EXACT_TOL, 'loss with large logits');
  assertClose(big.grad.data, [0.5, -0.5, -0.5, 0.5], EXACT_TOL, 'dLogits with large logits', [2, 2]);

  assert.throws(() => softmaxCrossEntropy(logits, [0, 1]), { name: 'RangeError', message: /length batch=3/ });
  assert.throws(() => softmaxCrossEntropy(logits, [0, 5, 1]), { name: 'RangeError', message: /labels\[1\].*\[0, 5\)/ });
  assert.throws(() => softmaxCrossEntropy(logits, [0, 1.5, 1]), { name: 'RangeError', message: /labels\[1\]/ });
  assert.throws(() => softmaxCrossEntropy(randomTensor(rng, [5]), [0]), { name: 'RangeError', message: /\[batch, classes\]/ });
});

// ---------------------------------------------------------------------------------------------
// Optimizers

/** Gradient sequences for two small float64 parameters over three steps. */
function gradientSequence(): { init: Record<string, number[]>; grads: Record<string, number[]>[] } {
  return {
    init: { a: [0.5, -1, 2], b: [0.25] },
    grads: [
      { a: [0.1, -0.2, 0.3], b: [4] },
      { a: [-0.05, 0.4, 0], b: [-1] },
      { a: [0.2, 0.2, -0.1], b: [0.5] },
    ],
  };
}

const toTensors = (rec: Record<string, number[]>): Record<string, Tensor> =>
  Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, Tensor.from(v, [v.length], 'float64')]));

test('Adam: three steps match Kingma & Ba (2015), Algorithm 1', () => {
  const [lr, beta1, beta2, eps] = [0.1, 0.8, 0.9, 1e-3];
  const { init, grads } = gradientSequence();
  const params = toTensors(init);
  const adam = new Adam({ lr, beta1, beta2, eps });
  grads.forEach((g) => adam.step(params, toTensors(g)));
  for (const name of Object.keys(init)) {
    // θ_t = θ_{t−1} − α m̂_t / (√v̂_t + ε), m̂_t = m_t / (1 − β₁ᵗ), v̂_t = v_t / (1 − β₂ᵗ).
    const want = init[name].map((theta0, k) => {
      let theta = theta0, m = 0, v = 0;
      grads.forEach((g, i) => {
        const t = i + 1;
        m = beta1 * m + (1 - beta1) * g[name][k];
        v = beta2 * v + (1 - beta2) * g[name][k] ** 2;
        theta -= (lr * (m / (1 - beta1 ** t))) / (Math.sqrt(v / (1 - beta2 ** t)) + eps);
      });
      return theta;
    });
    assertClose(params[name].data, want, EXACT_TOL, `Adam parameter ${name}`);
  }
});

test('Adam: state follows the Tensor, not the key', () => {
  const adam = new Adam({ lr: 0.1 });
  const first = Tensor.from([1], [1], 'float64');
  for (let i = 0; i < 3; i++) adam.step({ w: first }, { w: Tensor.from([i + 1], [1], 'float64') });
  const second = Tensor.from([1], [1], 'float64');
  adam.step({ w: second }, { w: Tensor.from([2], [1], 'float64') });
  // A first step moves by lr · g / (|g| + ε) ≈ lr whatever came before under the same key.
  assertClose(second.data, [1 - (0.1 * 2) / (2 + 1e-8)], EXACT_TOL, 'fresh tensor after first step');
});

test('SGD: plain and momentum steps match p ← p − lr b, b ← μ b + g', () => {
  const { init, grads } = gradientSequence();
  for (const momentum of [0, 0.9]) {
    const lr = 0.05;
    const params = toTensors(init);
    const sgd = new SGD({ lr, momentum });
    grads.forEach((g) => sgd.step(params, toTensors(g)));
    for (const name of Object.keys(init)) {
      const want = init[name].map((p, k) => {
        let b = 0;
        grads.forEach((g, i) => {
          b = i === 0 ? g[name][k] : momentum * b + g[name][k];
          p -= lr * b;
        });
        return p;
      });
      assertClose(params[name].data, want, EXACT_TOL, `SGD(momentum=${momentum}) parameter ${name}`);
    }
  }
});

test('optimizers: validation, and a failed step changes nothing', () => {
  assert.throws(() => new Adam({ lr: -1 }), { name: 'RangeError', message: /Adam: lr/ });
  assert.throws(() => new Adam({ beta2: 1 }), { name: 'RangeError', message: /Adam: beta2.*\[0, 1\)/ });
  assert.throws(() => new SGD({ lr: 0.1, momentum: 1.5 }), { name: 'RangeError', message: /SGD: momentum/ });
  assert.throws(() => new SGD({} as { lr: number }), { name: 'RangeError', message: /SGD: learningRate/ });
  const a = Tensor.from([1, 2], [2], 'float64');
  const b = Tensor.from([3], [1], 'float64');
  const adam = new Adam();
  const g = Tensor.from([1, 1], [2], 'float64');
  assert.throws(() => adam.step({ a, b }, { a: g }), { name: 'RangeError', message: /grads\.b is missing/ });
  assert.throws(() => adam.step({ a }, { a: g, c: g }), { name: 'RangeError', message: /grads has key\(s\) c/ });
  assert.throws(() => adam.step({ a, b }, { a: g, b: g }), { name: 'RangeError', message: /grads\.b.*expected shape \[1\], got \[2\]/ });
  assert.deepEqual([...a.data, ...b.data], [1, 2, 3]);
});

test('clipGradNorm: returns the global norm and rescales only above maxNorm', () => {
  const grads = [Tensor.from([3, 0], [2], 'float64'), Tensor.from([0, 4, 0, 0], [2, 2], 'float64')];
  const original = grads.map((t) => Array.from(t.data));
  assert.equal(clipGradNorm(grads, 10), 5);
  assert.deepEqual(grads.map((t) => Array.from(t.data)), original, 'below maxNorm nothing changes');

  assert.equal(clipGradNorm(grads, 2), 5);
  const clipped = grads.flatMap((t) => Array.from(t.data));
  assertClose([Math.hypot(...clipped)], [2], EXACT_TOL, 'norm after clipping');
  assertClose(clipped, original.flat().map((v) => (v * 2) / 5), EXACT_TOL, 'clipped gradients');

  const record = { w: Tensor.from([6, 8], [2]), b: Tensor.from([0], [1]) };
  assertClose([clipGradNorm(record, 1)], [10], EXACT_TOL, 'norm of a record');
  assertClose(record.w.data, [0.6, 0.8], 1e-7, 'clipped record');

  const inf = [Tensor.from([Infinity, 1], [2], 'float64')];
  assert.equal(clipGradNorm(inf, 1), Infinity);
  assert.deepEqual(Array.from(inf[0].data), [Infinity, 1], 'a non-finite norm leaves gradients alone');
  assert.throws(() => clipGradNorm(grads, 0), { name: 'RangeError', message: /maxNorm/ });
  assert.throws(() => clipGradNorm({ w: [1, 2] as unknown as Tensor }, 1), { name: 'TypeError', message: /grads\.w must be a Tensor/ });
});

// ---------------------------------------------------------------------------------------------
// Learning

test('adding problem: generated batches have one marker per half and target = sum of marked values', () => {
  const steps = 9;
  const { x, y } = addingProblemBatch(new Random(5), 64, steps);
  assert.deepEqual(x.shape, [64, steps, 2]);
  assert.deepEqual(y.shape, [64, 1]);
  for (let b = 0; b < 64; b++) {
    const marked: number[] = [];
    for (let t = 0; t < steps; t++) {
      const [value, marker] = [x.data[(b * steps + t) * 2], x.data[(b * steps + t) * 2 + 1]];
      assert.ok(value >= 0 && value < 1, `sequence ${b} step ${t}: value ${value} outside [0, 1)`);
      assert.ok(marker === 0 || marker === 1, `sequence ${b} step ${t}: marker ${marker}`);
      if (marker === 1) marked.push(t);
    }
    assert.equal(marked.length, 2, `sequence ${b}: markers at ${marked.join(', ')}`);
    assert.ok(marked[0] < Math.floor(steps / 2) && marked[1] >= Math.floor(steps / 2), `sequence ${b}: markers at ${marked.join(', ')}`);
    const want = x.data[(b * steps + marked[0]) * 2] + x.data[(b * steps + marked[1]) * 2];
    assert.equal(y.data[b], Math.fround(want), `sequence ${b}: target`);
  }
});

test('adding problem (T = 10): LSTM + Dense with MSE and Adam learn well below the baseline', () => {
  const steps = 10;
  const model = new AddingModel({ units: 16, seed: 3 });
  const adam = new Adam({ lr: 0.01 });
  const rng = new Random(4);
  for (let i = 0; i < 400; i++) model.trainStep(addingProblemBatch(rng, 32, steps), adam, 1);
  const { mse, baseline } = evaluate(model, addingProblemBatch(new Random(99), 1000, steps));
  assert.ok(mse < baseline / 20, `test MSE ${mse.toFixed(5)} is not 20× below the baseline ${baseline.toFixed(5)} (ratio ${(baseline / mse).toFixed(1)})`);
});
