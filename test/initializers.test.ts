/**
 * Initializers: every option produces what it says (checked from the numbers, not against stored
 * values), seeds reproduce, and bad options are rejected with a named error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { GRU, LSTM, SimpleRNN } from '../lib/index.js';

function blockGramError(w: ArrayLike<number>, blocks: number, n: number): number {
  // max |Q Qᵀ − I| over the gate blocks
  let worst = 0;
  for (let b = 0; b < blocks; b++) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let dot = 0;
        for (let k = 0; k < n; k++) dot += w[b * n * n + i * n + k] * w[b * n * n + j * n + k];
        worst = Math.max(worst, Math.abs(dot - (i === j ? 1 : 0)));
      }
    }
  }
  return worst;
}

test('default recurrent weights are orthogonal per gate block (Keras)', () => {
  const layer = new LSTM({ inputSize: 5, units: 7, seed: 3, dtype: 'float64' });
  const err = blockGramError(layer.stateDict().weight_hh_l0.data, 4, 7);
  assert.ok(err < 1e-12, `max |QQᵀ − I| = ${err}`);
});

test("recurrentInitializer 'identity' makes an IRNN (Le et al. 2015)", () => {
  const layer = new SimpleRNN({ inputSize: 3, units: 6, activation: 'relu', recurrentInitializer: 'identity' });
  const w = layer.stateDict().weight_hh_l0.data;
  for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) assert.equal(w[i * 6 + j], i === j ? 1 : 0, `W_hh[${i}, ${j}]`);
});

test('glorotUniform and pytorch initializers stay within their bounds and are not constant', () => {
  const I = 9, H = 11;
  const glorot = new GRU({ inputSize: I, units: H, seed: 1 }).stateDict().weight_ih_l0.data;
  const limit = Math.sqrt(6 / (I + H));
  const torchLike = new GRU({ inputSize: I, units: H, seed: 1, kernelInitializer: 'pytorch', biasInitializer: 'pytorch' }).stateDict();
  const k = 1 / Math.sqrt(H);
  for (const [name, data, bound] of [
    ['glorot W_ih', glorot, limit],
    ['pytorch W_ih', torchLike.weight_ih_l0.data, k],
    ['pytorch b_ih', torchLike.bias_ih_l0.data, k],
  ] as const) {
    const max = Math.max(...Array.from(data, Math.abs));
    assert.ok(max <= bound, `${name}: max |w| ${max} exceeds ${bound}`);
    assert.ok(max > bound / 2, `${name}: max |w| ${max} suspiciously small for bound ${bound}`);
  }
});

test('constant and zeros initializers; the LSTM forget bias is 1 in total unless unitForgetBias is false', () => {
  const H = 4;
  const a = new LSTM({ inputSize: 2, units: H, biasInitializer: { name: 'constant', value: 0.25 } }).stateDict();
  for (let j = 0; j < 4 * H; j++) {
    const total = a.bias_ih_l0.data[j] + a.bias_hh_l0.data[j];
    const want = j >= H && j < 2 * H ? 1 : 0.5;
    assert.equal(total, want, `b_ih + b_hh at ${j}`);
  }
  const b = new LSTM({ inputSize: 2, units: H, unitForgetBias: false, kernelInitializer: 'zeros' }).stateDict();
  assert.ok(b.bias_ih_l0.data.every((v) => v === 0));
  assert.ok(b.weight_ih_l0.data.every((v) => v === 0));
});

test('the same seed gives the same weights; another seed does not', () => {
  const w = (seed: number) => new LSTM({ inputSize: 4, units: 5, seed }).stateDict().weight_ih_l0.data;
  assert.deepEqual(w(42), w(42));
  assert.notDeepEqual(w(42), w(43));
});

test('bad initializers are rejected with the option named', () => {
  assert.throws(() => new LSTM({ inputSize: 2, units: 3, kernelInitializer: 'he' as 'zeros' }), (e: unknown) => e instanceof TypeError && /options\.kernelInitializer/.test(String(e)));
  assert.throws(() => new GRU({ inputSize: 2, units: 3, recurrentInitializer: { name: 'uniform', limit: -1 } }), (e: unknown) => e instanceof TypeError && /options\.recurrentInitializer/.test(String(e)));
  assert.throws(() => new LSTM({ inputSize: 2, units: 3, projSize: 2, recurrentInitializer: 'identity' }), (e: unknown) => e instanceof RangeError && /square/.test(String(e)));
});

test('native orthonormalizeRows: several blocks of n = 150 come out orthonormal; bad input is a named error', async () => {
  const { native } = await import('../lib/native.js');
  const n = 150, blocks = 3;
  const r = new (await import('../lib/index.js')).Random(8);
  const q = Float64Array.from({ length: blocks * n * n }, () => r.normal());
  native.orthonormalizeRows(q, n, blocks);
  const err = blockGramError(q, blocks, n);
  assert.ok(err < 1e-12, `max |QQᵀ − I| = ${err}`);
  assert.throws(() => native.orthonormalizeRows(new Float64Array(10), 3), (e: unknown) => e instanceof RangeError && /q/.test(String(e)));
  assert.throws(() => native.orthonormalizeRows(new Float32Array(9) as unknown as Float64Array, 3), (e: unknown) => e instanceof TypeError && /q/.test(String(e)));
  assert.throws(() => native.orthonormalizeRows(new Float64Array(9), 0), (e: unknown) => e instanceof RangeError && /n/.test(String(e)));
});
