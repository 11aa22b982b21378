/**
 * Whole-model check: rnnkit's Sequential.predict against a tfjs `tf.sequential` (pure-JS cpu backend,
 * float32) holding the same weights. Random seeded weights are written into the rnnkit model
 * (namedParameters(), PyTorch layout) and converted to Keras layout by lib/io/layouts.ts for tfjs's layer.setWeights:
 *   Embedding: embeddings [inputDim, outputDim] as is;
 *   LSTM/GRU: kernel = weight_ihᵀ [I, G·H], recurrent_kernel = weight_hhᵀ [H, G·H],
 *             bias = bias_ih + bias_hh, gate blocks reordered (LSTM i,f,g,o = i,f,c,o; GRU r,z,n -> z,r,h);
 *   Bidirectional: forward layer's three weights, then the backward layer's;
 *   Dense: kernel = weightᵀ [in, units], bias.
 * tfjs only has the reset-before GRU (resetAfter: true throws), so the GRU case uses rnnkit's
 * GRU with resetAfter: false. Gate activations are set to 'sigmoid' on the tfjs side (its default is
 * hardSigmoid).
 *
 * Tolerance: every entry satisfies |got - want| <= 1e-5 · max(1, |want|) (outputs are O(1) or
 * probabilities), i.e. max abs diff ≤ 1e-5 for small entries and max rel diff ≤ 1e-5 for large ones.
 * The largest difference and its position are printed for every case.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';

import { Sequential, Embedding, LSTM, GRU, Bidirectional, Dense, TimeDistributed, Tensor } from '../lib/index.js';
import { ensureCpuBackend, download } from './helpers/tfjs-oracle.js';
import { gateCount, torchToKeras, transpose } from '../lib/io/layouts.js';
import { compare, multiIndex, rng, uniform32, type Random } from './helpers/compare.js';

const TOL = 1e-5;

/** Overwrites every parameter of the rnnkit model with seeded uniform values (embeddings U(±1), others U(±1.5/sqrt(fan-in))). */
function randomizeWeights(model: Sequential, r: Random, embeddingName?: string): void {
  for (const [name, t] of Object.entries(model.namedParameters())) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const s = name === embeddingName ? 1 : t.shape.length === 2 ? 1.5 / Math.sqrt(t.shape[1]) : 0.5;
    (t.data as Float32Array).set(uniform32(r, n, -s, s));
  }
  model.markWeightsChanged();
}

function f32(t: Tensor): Float32Array {
  return Float32Array.from(t.data as ArrayLike<number>);
}

/** rnnkit recurrent parameters under `prefix` (e.g. '1.', suffix '' or '_reverse') -> tfjs [kernel, recurrent_kernel, bias]. */
function recurrentWeights(p: Record<string, Tensor>, prefix: string, suffix: string, cell: 'lstm' | 'gru'): tf.Tensor[] {
  const wih = p[`${prefix}weight_ih_l0${suffix}`];
  const whh = p[`${prefix}weight_hh_l0${suffix}`];
  const bih = f32(p[`${prefix}bias_ih_l0${suffix}`]);
  const bhh = f32(p[`${prefix}bias_hh_l0${suffix}`]);
  assert.ok(wih && whh, `missing recurrent parameters ${prefix}*${suffix}`);
  const GH = wih.shape[0];
  const H = GH / gateCount(cell);
  const I = wih.shape[1];
  // layouts.ts: transposes, Keras gate order, bias_ih + bias_hh folded into one bias.
  const k = torchToKeras(cell, H, { weightIh: f32(wih), weightHh: f32(whh), biasIh: bih, biasHh: bhh });
  return [tf.tensor2d(k.kernel, [I, GH]), tf.tensor2d(k.recurrentKernel, [H, GH]), tf.tensor1d(k.bias!)];
}

function denseWeights(p: Record<string, Tensor>, prefix: string): tf.Tensor[] {
  const w = p[`${prefix}weight`];
  const [units, inF] = w.shape;
  return [tf.tensor2d(transpose(f32(w), units, inF), [inF, units]), tf.tensor1d(f32(p[`${prefix}bias`]))];
}

async function compareModels(label: string, model: Sequential, tfModel: tf.Sequential, x: Tensor, xTf: tf.Tensor): Promise<void> {
  const got = await model.predict(x);
  const yTf = tfModel.predict(xTf) as tf.Tensor;
  const want = await download(yTf);
  assert.deepEqual([...got.shape], yTf.shape, `${label}: output shape`);
  yTf.dispose();
  const g = got.data as ArrayLike<number>;
  assert.equal(g.length, want.length);
  const rep = compare(g, want, { rtol: TOL, floor: 1 });
  const at = (k: number): string => `[${multiIndex(k, got.shape).join(', ')}] (got ${g[k]}, want ${want[k]})`;
  console.log(
    `${label}: max |diff| ${rep.maxAbs.toExponential(3)} at ${at(rep.maxAbsIndex)}; ` +
      `max rel diff (vs max(1,|want|)) ${rep.maxRel.toExponential(3)} at ${at(rep.maxRelIndex)}`,
  );
  assert.ok(
    rep.worstRatio <= 1,
    `${label}: predict differs from tfjs by ${rep.maxRel.toExponential(3)} (> ${TOL}) at ${at(rep.worstIndex)}`,
  );
  // Sanity: the outputs are not trivially zero.
  assert.ok(want.some((v) => Math.abs(v) > 1e-3), `${label}: tfjs output is all ~0`);
}

function ids(r: Random, batch: number, steps: number, vocab: number): { x: Tensor; xTf: tf.Tensor } {
  const a = new Float32Array(batch * steps);
  for (let k = 0; k < a.length; k++) a[k] = Math.min(vocab - 1, Math.floor(r.uniform(0, vocab)));
  return { x: Tensor.from(a, [batch, steps]), xTf: tf.tensor2d(a, [batch, steps]) };
}

const B = 4;
const T = 7;

test('(a) Embedding -> LSTM(returnSequences) -> TimeDistributed(Dense) matches tfjs', async () => {
  await ensureCpuBackend();
  const r = rng(1001);
  const model = new Sequential(
    [new Embedding({ inputDim: 11, outputDim: 5 }), new LSTM({ units: 6, returnSequences: true }), new TimeDistributed(new Dense({ units: 4 }))],
    { seed: 7 },
  );
  model.build([T]);
  randomizeWeights(model, r, '0.weight');
  const p = model.namedParameters();

  const emb = tf.layers.embedding({ inputDim: 11, outputDim: 5, inputLength: T, batchInputShape: [null, T] });
  const lstm = tf.layers.lstm({ units: 6, returnSequences: true, recurrentActivation: 'sigmoid', activation: 'tanh' });
  const td = tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 4 }) });
  const tfModel = tf.sequential({ layers: [emb, lstm, td] });
  emb.setWeights([tf.tensor2d(f32(p['0.weight']), [11, 5])]);
  lstm.setWeights(recurrentWeights(p, '1.', '', 'lstm'));
  td.setWeights(denseWeights(p, '2.'));

  const { x, xTf } = ids(r, B, T, 11);
  await compareModels('(a) embedding-lstm-timedistributed', model, tfModel, x, xTf);
  xTf.dispose();
  tfModel.dispose();
});

test('(b) Embedding -> GRU (resetAfter: false) -> Dense(softmax) on the last output matches tfjs', async () => {
  await ensureCpuBackend();
  // tfjs-layers has no reset-after GRU: it throws on resetAfter: true.
  assert.throws(() => tf.layers.gru({ units: 6, resetAfter: true } as Parameters<typeof tf.layers.gru>[0]));
  const r = rng(2002);
  const model = new Sequential(
    [new Embedding({ inputDim: 11, outputDim: 5 }), new GRU({ units: 6, resetAfter: false }), new Dense({ units: 3, activation: 'softmax' })],
    { seed: 8 },
  );
  model.build([T]);
  randomizeWeights(model, r, '0.weight');
  const p = model.namedParameters();

  const emb = tf.layers.embedding({ inputDim: 11, outputDim: 5, batchInputShape: [null, T] });
  const gru = tf.layers.gru({ units: 6, recurrentActivation: 'sigmoid', activation: 'tanh' });
  const dense = tf.layers.dense({ units: 3, activation: 'softmax' });
  const tfModel = tf.sequential({ layers: [emb, gru, dense] });
  emb.setWeights([tf.tensor2d(f32(p['0.weight']), [11, 5])]);
  gru.setWeights(recurrentWeights(p, '1.', '', 'gru'));
  dense.setWeights(denseWeights(p, '2.'));

  const { x, xTf } = ids(r, B, T, 11);
  await compareModels('(b) embedding-gru-dense(softmax)', model, tfModel, x, xTf);
  xTf.dispose();
  tfModel.dispose();
});

test('(c) Bidirectional(LSTM, returnSequences) -> LSTM -> Dense on [batch, steps, 3] matches tfjs', async () => {
  await ensureCpuBackend();
  const r = rng(3003);
  const F = 3;
  const model = new Sequential(
    [new Bidirectional(new LSTM({ units: 4, returnSequences: true })), new LSTM({ units: 5 }), new Dense({ units: 2 })],
    { seed: 9 },
  );
  model.build([T, F]);
  randomizeWeights(model, r);
  const p = model.namedParameters();

  const bi = tf.layers.bidirectional({
    layer: tf.layers.lstm({ units: 4, returnSequences: true, recurrentActivation: 'sigmoid', activation: 'tanh' }) as tf.layers.RNN,
    mergeMode: 'concat',
    batchInputShape: [null, T, F],
  });
  const lstm = tf.layers.lstm({ units: 5, recurrentActivation: 'sigmoid', activation: 'tanh' });
  const dense = tf.layers.dense({ units: 2 });
  const tfModel = tf.sequential({ layers: [bi, lstm, dense] });
  bi.setWeights([...recurrentWeights(p, '0.', '', 'lstm'), ...recurrentWeights(p, '0.', '_reverse', 'lstm')]);
  lstm.setWeights(recurrentWeights(p, '1.', '', 'lstm'));
  dense.setWeights(denseWeights(p, '2.'));

  const xs = uniform32(r, B * T * F);
  const xTf = tf.tensor3d(xs, [B, T, F]);
  await compareModels('(c) bidirectional-lstm-lstm-dense', model, tfModel, Tensor.from(xs, [B, T, F]), xTf);
  xTf.dispose();
  tfModel.dispose();
});
