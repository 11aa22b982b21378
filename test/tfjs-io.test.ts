/**
 * tfjs LayersModel files ↔ rnnkit (lib/io/tfjs.ts, lib/io/keras.ts).
 *
 * Each case builds a tfjs model (pure-JS cpu backend) with seeded random weights, saves it with
 * model.save(tf.io.withSaveHandler(…)) into a temp directory in the layout tfjs-node's
 * model.save('file://dir') writes (model.json + weights.bin, or two shards), loads it with
 * loadTfjsModel and checks rnnkit's predict against tfjs's predict; then writes the rnnkit model back
 * with saveTfjsModel, loads those files with tf.loadLayersModel (tf.io.fromMemory of the parsed
 * model.json and the bin) and checks that tfjs reproduces rnnkit's outputs.
 * Tolerance: |got − want| ≤ 1e-5·max(1, |want|); the largest difference is printed per case.
 *
 * Refusals (features tfjs cannot express) must name the feature; malformed files each run in a
 * child process (a crash fails one test) and must give a clear error naming the problem.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

import {
  Bidirectional, GRU, LSTM, SimpleRNN, Sequential, Dense, Embedding, TimeDistributed, Dropout, Tensor, loadTfjsModel, saveTfjsModel, tfjsArtifactsToModel,
  modelToTfjsArtifacts, modelToKeras, modelFromKeras, type KerasWeight, type LSTMOptions,
} from '../lib/index.js';
import { UnsupportedFeatureError } from '../lib/io/layouts.js';
import { ensureCpuBackend } from './helpers/tfjs-oracle.js';
import { compare, multiIndex, rng, uniform32, type Random } from './helpers/compare.js';
import { assertChildOk, reportRefusal, runNodeChild } from './helpers/child.js';

const TOL = 1e-5;
const B = 3;
const T = 6;
const thisFile = new URL(import.meta.url).pathname;

/** Sets every weight of a tfjs model to seeded U(−s, s) values (s = 1 for biases and embeddings, 1.5/√fan-in for matrices). */
function randomize(m: tf.LayersModel, r: Random): void {
  const values = m.weights.map((w) => {
    const shape = w.shape as number[];
    const n = shape.reduce((a, b) => a * b, 1);
    const s = w.shape.length === 2 && !w.originalName.includes('embedding') ? 1.5 / Math.sqrt(w.shape[0] as number) : 1;
    return tf.tensor(uniform32(r, n, -s, s), shape);
  });
  m.setWeights(values);
  for (const v of values) v.dispose();
}

/** Saves a tfjs model as tfjs-node's file:// handler does: model.json and the weight shard(s). */
async function saveTfjsDir(m: tf.LayersModel, dir: string, shards = 1): Promise<void> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await m.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const a = artifacts!;
  const data = new Uint8Array(a.weightData as ArrayBuffer);
  mkdirSync(dir, { recursive: true });
  let paths: string[];
  if (shards === 1) {
    paths = ['./weights.bin'];
    writeFileSync(path.join(dir, 'weights.bin'), data);
  } else {
    paths = [];
    const per = Math.ceil(data.byteLength / shards);
    for (let k = 0; k < shards; k++) {
      const name = `group1-shard${k + 1}of${shards}.bin`;
      writeFileSync(path.join(dir, name), data.subarray(k * per, Math.min(data.byteLength, (k + 1) * per)));
      paths.push(name);
    }
  }
  const json = {
    modelTopology: a.modelTopology, format: a.format, generatedBy: a.generatedBy, convertedBy: a.convertedBy ?? null,
    weightsManifest: [{ paths, weights: a.weightSpecs }],
  };
  writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
}

/** tf.loadLayersModel of a tfjs directory (model.json + its shards) through tf.io.fromMemory. */
async function tfLoadDir(dir: string): Promise<tf.LayersModel> {
  const json = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const bins = json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths.map((p) => readFileSync(path.join(dir, p))));
  const all = Buffer.concat(bins);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const weightSpecs = json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData }));
}

/** Largest-difference report and the 1e-5 assertion. Returns the largest absolute difference. */
function check(label: string, got: ArrayLike<number>, gotShape: readonly number[], want: ArrayLike<number>, wantShape: readonly number[]): number {
  assert.deepEqual([...gotShape], [...wantShape], `${label}: output shape`);
  assert.equal(got.length, want.length, `${label}: output length`);
  const rep = compare(got, want, { rtol: TOL, floor: 1 });
  const at = (k: number): string => `[${multiIndex(k, gotShape).join(', ')}] (got ${got[k]}, want ${want[k]})`;
  console.log(`${label}: largest |diff| ${rep.maxAbs.toExponential(3)} at ${at(rep.maxAbsIndex)}`);
  assert.ok(rep.worstRatio <= 1, `${label}: differs by ${rep.maxRel.toExponential(3)} (> ${TOL}) at ${at(rep.worstIndex)}`);
  assert.ok(Array.from(want).some((v) => Math.abs(v) > 1e-3), `${label}: reference output is all ~0`);
  return rep.maxAbs;
}

let largest = 0;

interface Case {
  name: string;
  layers: () => tf.layers.Layer[];
  /** Input of one batch: ids for an Embedding model. */
  input: (r: Random) => { data: Float32Array; shape: number[] };
  shards?: number;
  /** Extra checks on the loaded rnnkit model. */
  inspect?: (m: Sequential, dir: string, tfOut: Float32Array, x: { data: Float32Array; shape: number[] }) => Promise<void>;
}

const seq = (F: number) => (r: Random) => ({ data: uniform32(r, B * T * F, -1, 1), shape: [B, T, F] });
const ids = (vocab: number, padded = false) => (r: Random) => {
  const a = new Float32Array(B * T);
  for (let k = 0; k < a.length; k++) a[k] = 1 + Math.min(vocab - 2, Math.floor(r.uniform(0, vocab - 1)));
  if (padded) for (let b = 0; b < B; b++) for (let t = T - b; t < T; t++) a[b * T + t] = 0; // sequence b has T − b valid steps
  return { data: a, shape: [B, T] };
};
const zeroPadded = (F: number) => (r: Random) => {
  const x = seq(F)(r);
  for (let b = 0; b < B; b++) for (let t = T - 2 * b; t < T; t++) x.data.fill(0, (b * T + t) * F, (b * T + t + 1) * F);
  return x;
};

async function runCase(c: Case, seed: number): Promise<void> {
  await ensureCpuBackend();
  const r = rng(seed);
  const root = mkdtempSync(path.join(tmpdir(), 'rnnkit-tfjs-io-'));
  try {
    const x = c.input(r);
    const tfModel = tf.sequential({ layers: c.layers() });
    randomize(tfModel, r);
    const dir = path.join(root, 'tfjs');
    await saveTfjsDir(tfModel, dir, c.shards ?? 1);
    const xTf = tf.tensor(x.data, x.shape);
    const yTf = tfModel.predict(xTf) as tf.Tensor;
    const want = (await yTf.data()) as Float32Array;
    const wantShape = yTf.shape;

    // tfjs → rnnkit
    const model = await loadTfjsModel(c.shards ? path.join(dir, 'model.json') : dir);
    const got = await model.predict(Tensor.from(x.data, x.shape));
    const gotData = Float32Array.from(got.data as ArrayLike<number>);
    largest = Math.max(largest, check(`${c.name}: tfjs → rnnkit`, gotData, got.shape, want, wantShape));
    if (c.inspect) await c.inspect(model, dir, want, x);

    // rnnkit → tfjs
    const out = path.join(root, 'back');
    await saveTfjsModel(model, out);
    const back = await tfLoadDir(out);
    const yBack = back.predict(xTf) as tf.Tensor;
    const yBackData = (await yBack.data()) as Float32Array;
    largest = Math.max(largest, check(`${c.name}: rnnkit → tfjs`, yBackData, yBack.shape, got.data as ArrayLike<number>, got.shape));

    // The in-memory pair agrees with the files.
    const again = tfjsArtifactsToModel(modelToTfjsArtifacts(model));
    const y2 = await again.predict(Tensor.from(x.data, x.shape));
    assert.deepEqual(Array.from(y2.data as ArrayLike<number>), Array.from(got.data as ArrayLike<number>), `${c.name}: artifacts round trip`);
    for (const t of [xTf, yTf, yBack]) t.dispose();
    tfModel.dispose();
    back.dispose();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const CASES: Case[] = [
  {
    name: 'Embedding → LSTM(returnSequences) → TimeDistributed(Dense softmax)',
    layers: () => [
      tf.layers.embedding({ inputDim: 13, outputDim: 5, inputLength: T }),
      tf.layers.lstm({ units: 6, returnSequences: true }),
      tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 4, activation: 'softmax' }) }),
    ],
    input: ids(13),
  },
  {
    name: 'SimpleRNN → Dense',
    layers: () => [tf.layers.simpleRNN({ units: 5, inputShape: [T, 3] }), tf.layers.dense({ units: 3, activation: 'tanh' })],
    input: seq(3),
  },
  {
    name: 'SimpleRNN relu, no bias',
    layers: () => [tf.layers.simpleRNN({ units: 4, activation: 'relu', useBias: false, returnSequences: true, inputShape: [T, 3] })],
    input: seq(3),
  },
  {
    name: 'GRU (reset-before, tfjs defaults) → Dense sigmoid',
    layers: () => [tf.layers.gru({ units: 5, inputShape: [T, 4] }), tf.layers.dense({ units: 2, activation: 'sigmoid' })],
    input: seq(4),
    inspect: async (m) => {
      const g = m.layers[0] as GRU;
      assert.equal(g.features().linearBeforeReset, false, 'a tfjs GRU is reset-before');
    },
  },
  ...(['concat', 'sum', 'mul', 'ave'] as const).map((mergeMode, k): Case => ({
    name: `Bidirectional(${['LSTM', 'GRU', 'SimpleRNN', 'LSTM'][k]}) mergeMode ${mergeMode}${k === 3 ? ', last output only' : ''}`,
    layers: () => {
      const inner = [
        () => tf.layers.lstm({ units: 4, returnSequences: true }),
        () => tf.layers.gru({ units: 4, returnSequences: true }),
        () => tf.layers.simpleRNN({ units: 4, returnSequences: true }),
        () => tf.layers.lstm({ units: 4, returnSequences: false }),
      ][k]();
      return [tf.layers.bidirectional({ layer: inner as never, mergeMode, inputShape: [T, 3] }), tf.layers.dense({ units: 2 })];
    },
    input: seq(3),
  })),
  {
    name: 'stacked LSTM(returnSequences) → LSTM (two shards)',
    layers: () => [tf.layers.lstm({ units: 5, returnSequences: true, inputShape: [T, 3] }), tf.layers.lstm({ units: 4 })],
    input: seq(3),
    shards: 2,
  },
  {
    name: 'Masking → LSTM with zero-padded sequences',
    layers: () => [tf.layers.masking({ maskValue: 0, inputShape: [T, 3] }), tf.layers.lstm({ units: 5 }), tf.layers.dense({ units: 2 })],
    input: zeroPadded(3),
  },
  {
    name: 'Embedding(maskZero) → GRU(returnSequences) with padded ids',
    layers: () => [tf.layers.embedding({ inputDim: 9, outputDim: 4, maskZero: true, inputLength: T }), tf.layers.gru({ units: 3, returnSequences: true })],
    input: ids(9, true),
  },
  {
    // Keras repeats the last valid output over masked steps (forward direction) and the backward
    // direction starts at the padding with zeros: every step is compared.
    name: 'Embedding(maskZero) → Bidirectional(LSTM, returnSequences) sum and concat → GRU(go_backwards, returnSequences) with padded ids',
    layers: () => [
      tf.layers.embedding({ inputDim: 9, outputDim: 4, maskZero: true, inputLength: T }),
      tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 3, returnSequences: true }) as tf.RNN, mergeMode: 'sum' }),
      tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 2, returnSequences: true }) as tf.RNN, mergeMode: 'concat' }),
      tf.layers.gru({ units: 3, returnSequences: true, goBackwards: true }),
    ],
    input: ids(9, true),
  },
  {
    name: 'Embedding(maskZero) → LSTM (last output) with padded ids',
    layers: () => [tf.layers.embedding({ inputDim: 9, outputDim: 4, maskZero: true, inputLength: T }), tf.layers.lstm({ units: 3 }), tf.layers.dense({ units: 2 })],
    input: ids(9, true),
  },
  {
    name: 'LSTM → Dropout → Dense → Activation',
    layers: () => [
      tf.layers.lstm({ units: 5, inputShape: [T, 3], dropout: 0.2, recurrentDropout: 0.1 }),
      tf.layers.dropout({ rate: 0.3 }),
      tf.layers.dense({ units: 4 }),
      tf.layers.activation({ activation: 'sigmoid' }),
    ],
    input: seq(3),
    inspect: async (m) => {
      const l = m.layers[0] as LSTM;
      assert.equal(l.dropout, 0.2, 'dropout carried into the rnnkit options');
      assert.equal(l.recurrentDropout, 0.1, 'recurrentDropout carried into the rnnkit options');
    },
  },
  {
    name: 'Dense → RepeatVector → LSTM(returnSequences) (one-to-sequence)',
    layers: () => [tf.layers.dense({ units: 4, inputShape: [3], activation: 'tanh' }), tf.layers.repeatVector({ n: T }), tf.layers.lstm({ units: 3, returnSequences: true })],
    input: (r) => ({ data: uniform32(r, B * 3, -1, 1), shape: [B, 3] }),
  },
  {
    name: 'LSTM goBackwards, returnSequences',
    layers: () => [tf.layers.lstm({ units: 4, goBackwards: true, returnSequences: true, inputShape: [T, 3] })],
    input: seq(3),
  },
  {
    name: 'GRU goBackwards, sigmoid gates',
    layers: () => [tf.layers.gru({ units: 4, goBackwards: true, recurrentActivation: 'sigmoid', inputShape: [T, 3] })],
    input: seq(3),
  },
  {
    name: 'LSTM with tfjs\'s default hardSigmoid gates',
    layers: () => [tf.layers.lstm({ units: 6, returnSequences: true, inputShape: [T, 4] })],
    input: (r) => ({ data: uniform32(r, B * T * 4, -2, 2), shape: [B, T, 4] }),
    inspect: async (m, dir, want, x) => {
      const l = m.layers[0] as LSTM;
      assert.equal(l.features().gateActivation?.name, 'HardSigmoid', 'an LSTM without recurrent_activation set in tfjs has hardSigmoid gates');
      // The same weights with sigmoid gates are far from tfjs: forgetting hardSigmoid is not a 1e-5 matter.
      const json = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8'));
      json.modelTopology.config.layers[0].config.recurrent_activation = 'sigmoid';
      const sig = path.join(dir, '..', 'sigmoid');
      cpSync(dir, sig, { recursive: true });
      writeFileSync(path.join(sig, 'model.json'), JSON.stringify(json));
      const wrong = await (await loadTfjsModel(sig)).predict(Tensor.from(x.data, x.shape));
      const rep = compare(wrong.data as ArrayLike<number>, want, { rtol: TOL, floor: 1 });
      console.log(`hardSigmoid case: with sigmoid gates instead the largest |diff| would be ${rep.maxAbs.toExponential(3)}`);
      assert.ok(rep.maxAbs > 1e-2, `sigmoid instead of hardSigmoid should differ by > 1e-2, got ${rep.maxAbs}`);
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Malformed files, each loaded in a child process (this file with --tfjs-io-child <dir>).

const childDir = process.argv.indexOf('--tfjs-io-child');
if (childDir >= 0) {
  const dir = process.argv[childDir + 1];
  await reportRefusal(() => loadTfjsModel(dir));
} else {
  for (const [k, c] of CASES.entries()) {
    test(`tfjs round trip: ${c.name}`, async () => {
      await runCase(c, 5000 + k);
    });
  }

  test('the largest difference over all round trips', () => {
    console.log(`largest |diff| over every tfjs ↔ rnnkit case: ${largest.toExponential(3)}`);
    assert.ok(largest <= TOL);
  });

  test('refused at export: what tfjs cannot express, by name', () => {
    const cases: [string, () => Sequential, RegExp][] = [
      ['peepholes', () => new Sequential([new LSTM({ units: 3, peepholes: true })], { inputShape: [T, 2] }), /peepholes/],
      ['projection', () => new Sequential([new LSTM({ units: 4, projSize: 2 })], { inputShape: [T, 2] }), /projection/],
      ['CIFG', () => new Sequential([new LSTM({ units: 3, coupledInputForget: true })], { inputShape: [T, 2] }), /CIFG/],
      ['clip', () => new Sequential([new LSTM({ units: 3, clip: 3 })], { inputShape: [T, 2] }), /clip/],
      ['GRU resetAfter', () => new Sequential([new GRU({ units: 3 })], { inputShape: [T, 2] }), /reset-after GRU/],
      ['a hardSigmoid slope tfjs does not have', () => new Sequential([new LSTM({ units: 3, recurrentActivation: { name: 'hardSigmoid', alpha: 0.3, beta: 0.5 } })], { inputShape: [T, 2] }), /activations outside Keras's set/],
      ['a Bidirectional with two outputs', () => new Sequential([new Bidirectional(new LSTM({ units: 3 }), { mergeMode: 'none' })], { inputShape: [T, 2] }), /mergeMode 'none'/],
    ];
    for (const [what, make, re] of cases) {
      const m = make();
      m.build();
      assert.throws(() => modelToTfjsArtifacts(m), (e: unknown) => e instanceof UnsupportedFeatureError && re.test(e.message), `${what}: expected an UnsupportedFeatureError naming it`);
      const msg = (() => { try { modelToTfjsArtifacts(m); } catch (e) { return (e as Error).message; } return ''; })();
      console.log(`${what}: ${msg}`);
    }
    // A GRU with resetAfter: false is fine for tfjs, and resetAfter: true for Keras 3.
    const ok = new Sequential([new GRU({ units: 3, resetAfter: false }), new Dense({ units: 2 })], { inputShape: [T, 2] });
    ok.build();
    assert.doesNotThrow(() => modelToTfjsArtifacts(ok));
    const k3 = new Sequential([new GRU({ units: 3 })], { inputShape: [T, 2] });
    k3.build();
    assert.equal((modelToKeras(k3, 'keras3').modelConfig.config as { layers: { config: { reset_after: boolean } }[] }).layers[1].config.reset_after, true);
    // A stacked bidirectional rnnkit layer becomes Bidirectional Keras layers.
    const st = new Sequential([new SimpleRNN({ units: 3, numLayers: 2, bidirectional: true })], { inputShape: [T, 2] });
    st.build();
    assert.deepEqual(modelToKeras(st, 'tfjs').layers.map((l) => l.className), ['Bidirectional', 'Bidirectional']);
  });

  test('rnnkit stacks (numLayers, bidirectional) exported to tfjs predict the same', async () => {
    await ensureCpuBackend();
    const root = mkdtempSync(path.join(tmpdir(), 'rnnkit-tfjs-io-'));
    try {
      const r = rng(77);
      const x = uniform32(r, B * T * 3, -1, 1);
      const models = [
        new Sequential([new LSTM({ units: 4, numLayers: 2, bidirectional: true, recurrentActivation: 'hardSigmoid', returnSequences: true, dropout: 0.1 }), new Dense({ units: 2 })], { inputShape: [T, 3], seed: 3 }),
        new Sequential([new GRU({ units: 3, numLayers: 3, resetAfter: false })], { inputShape: [T, 3], seed: 4 }),
      ];
      for (const [k, m] of models.entries()) {
        m.build();
        for (const t of Object.values(m.namedParameters())) (t.data as Float32Array).set(uniform32(r, t.data.length, -0.8, 0.8));
        m.markWeightsChanged();
        const dir = path.join(root, `m${k}`);
        await saveTfjsModel(m, dir);
        const got = await m.predict(Tensor.from(x, [B, T, 3]));
        const back = await tfLoadDir(dir);
        const y = back.predict(tf.tensor3d(x, [B, T, 3])) as tf.Tensor;
        largest = Math.max(largest, check(`rnnkit stack ${k} → tfjs`, (await y.data()) as Float32Array, y.shape, got.data as ArrayLike<number>, got.shape));
        const again = await (await loadTfjsModel(dir)).predict(Tensor.from(x, [B, T, 3]));
        check(`rnnkit stack ${k} → tfjs files → rnnkit`, again.data as ArrayLike<number>, again.shape, got.data as ArrayLike<number>, got.shape);
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('Keras 2 / Keras 3 descriptions: modelToKeras → modelFromKeras reproduces the model, with each flavour\'s defaults', async () => {
    const r = rng(31);
    const make = (gate: LSTMOptions['recurrentActivation']): Sequential => new Sequential([
      new Embedding({ inputDim: 7, outputDim: 3, maskZero: true }),
      new Bidirectional(new GRU({ units: 3, returnSequences: true }), { mergeMode: 'ave' }),
      new LSTM({ units: 4, numLayers: 2, returnSequences: true, recurrentActivation: gate, dropout: 0.25 }),
      new TimeDistributed(new Dense({ units: 2, activation: 'softmax' })),
    ], { inputShape: [T], seed: 8 });
    const x = Float32Array.from({ length: B * T }, (_, k) => (k % T < T - (k / T | 0) ? 1 + (k * 5) % 6 : 0));
    for (const [flavour, gate] of [['keras2', 'hardSigmoid'], ['keras3', { name: 'hardSigmoid', alpha: 1 / 6, beta: 0.5 }]] as const) {
      const m = make(gate);
      m.build();
      for (const t of Object.values(m.namedParameters())) (t.data as Float32Array).set(uniform32(r, t.data.length, -0.9, 0.9));
      m.markWeightsChanged();
      const { modelConfig, layers } = modelToKeras(m, flavour);
      const byName = new Map(layers.map((l) => [l.name, l.weights]));
      const cfgLayers = (modelConfig.config as { layers: { class_name: string; config: Record<string, unknown> }[] }).layers;
      assert.equal(cfgLayers[0].class_name, 'InputLayer', `${flavour}: an InputLayer first`);
      // The stack became two LSTM layers with a Dropout between them; GRU keeps reset_after.
      assert.deepEqual(cfgLayers.map((l) => l.class_name), ['InputLayer', 'Embedding', 'Bidirectional', 'LSTM', 'Dropout', 'LSTM', 'TimeDistributed']);
      assert.equal((cfgLayers[2].config.layer as { config: { reset_after: boolean } }).config.reset_after, true);
      assert.equal(cfgLayers[3].config.recurrent_activation, 'hard_sigmoid', `${flavour}: the flavour's hard_sigmoid`);
      if (flavour === 'keras3') {
        assert.deepEqual(layers.find((l) => l.className === 'LSTM')!.weights.map((w) => w.name), ['lstm/lstm_cell/kernel', 'lstm/lstm_cell/recurrent_kernel', 'lstm/lstm_cell/bias']);
        assert.deepEqual(layers.find((l) => l.className === 'Bidirectional')!.weights.map((w) => w.shape), [[3, 9], [3, 9], [2, 9], [3, 9], [3, 9], [2, 9]]);
      }
      const seen: number[] = [];
      const back = modelFromKeras(JSON.parse(JSON.stringify(modelConfig)), (name, index) => (seen.push(index), byName.get(name)!), { flavour, where: flavour });
      assert.deepEqual(seen, [0, 1, 2, 4, 5], `${flavour}: weightsOf is called with the Keras layer index (InputLayer not counted)`);
      const want = await m.predict(Tensor.from(x, [B, T]));
      const got = await back.predict(Tensor.from(x, [B, T]));
      assert.deepEqual(Array.from(got.data as ArrayLike<number>), Array.from(want.data as ArrayLike<number>), `${flavour}: round trip`);
      const lstm = back.layers[2] as LSTM;
      const g = lstm.features().gateActivation!;
      assert.equal(g.name, 'HardSigmoid');
      assert.ok(Math.abs(g.alpha - (flavour === 'keras3' ? 1 / 6 : 0.2)) < 1e-12, `${flavour}: hard_sigmoid slope ${g.alpha}`);
      assert.equal((back.layers[3] as Dropout).rate, 0.25, `${flavour}: the stack's dropout became a Dropout layer between its layers`);
    }
    // The same 'hard_sigmoid' name means different functions: Keras 3's relu6(x + 3)/6 is not tfjs's.
    const rnn = { class_name: 'Sequential', config: { name: 's', layers: [{ class_name: 'LSTM', config: { units: 2, batch_input_shape: [null, 3, 2], recurrent_activation: 'hard_sigmoid' } }] } };
    const zero = (): KerasWeight[] => [{ name: 'k', shape: [2, 8], data: new Float32Array(16) }, { name: 'r', shape: [2, 8], data: new Float32Array(16) }, { name: 'b', shape: [8], data: new Float32Array(8) }];
    const slope = (f: 'tfjs' | 'keras2' | 'keras3') => (modelFromKeras(rnn, zero, { flavour: f, where: f }).layers[0] as LSTM).features().gateActivation!.alpha;
    assert.equal(slope('tfjs'), 0.2);
    assert.equal(slope('keras2'), 0.2);
    assert.equal(slope('keras3'), 1 / 6);
    // Absent recurrent_activation: tfjs hardSigmoid, Keras sigmoid; absent reset_after: tfjs false, Keras true.
    const bare = { class_name: 'Sequential', config: { name: 's', layers: [{ class_name: 'GRU', config: { units: 2, batch_input_shape: [null, 3, 2], stateful: true } }] } };
    const gw = (reset: boolean) => (): KerasWeight[] => [{ name: 'k', shape: [2, 6], data: new Float32Array(12) }, { name: 'r', shape: [2, 6], data: new Float32Array(12) }, { name: 'b', shape: reset ? [2, 6] : [6], data: new Float32Array(reset ? 12 : 6) }];
    const t = modelFromKeras(bare, gw(false), { flavour: 'tfjs', where: 'tfjs' }).layers[0] as GRU;
    const k = modelFromKeras(bare, gw(true), { flavour: 'keras3', where: 'keras3' }).layers[0] as GRU;
    assert.equal(t.features().gateActivation!.name, 'HardSigmoid');
    assert.equal(t.features().linearBeforeReset, false);
    assert.equal(k.features().gateActivation!.name, 'Sigmoid');
    assert.equal(k.features().linearBeforeReset, true);
    assert.equal(t.stateful, true, 'stateful maps');
    // A config declaring a huge Embedding is refused against its weights' real size, before anything is allocated.
    const huge = { class_name: 'Sequential', config: { name: 's', layers: [{ class_name: 'Embedding', config: { name: 'embedding', input_dim: 1e12, output_dim: 4, batch_input_shape: [null, 3] } }] } };
    assert.throws(() => modelFromKeras(huge, () => [{ name: 'e', shape: [5, 4], data: new Float32Array(20) }], { flavour: 'keras3', where: 'huge.keras' }),
      /huge\.keras: layer embedding: weight e \(embeddings\): expected shape \[1000000000000, …\], got \[5, 4\]/);
    // tfjs's hard_sigmoid cannot be written as Keras 3's, and the reverse.
    const hs = new Sequential([new LSTM({ units: 2, recurrentActivation: 'hardSigmoid' })], { inputShape: [3, 2] });
    hs.build();
    assert.throws(() => modelToKeras(hs, 'keras3'), (e: unknown) => e instanceof UnsupportedFeatureError && /hardSigmoid with alpha 0.2/.test(e.message));
    const hs3 = new Sequential([new LSTM({ units: 2, recurrentActivation: { name: 'hardSigmoid', alpha: 1 / 6, beta: 0.5 } })], { inputShape: [3, 2] });
    hs3.build();
    assert.throws(() => modelToKeras(hs3, 'tfjs'), (e: unknown) => e instanceof UnsupportedFeatureError);
  });

  test('malformed tfjs files give clear errors (each in a child process)', async (t) => {
    await ensureCpuBackend();
    const root = mkdtempSync(path.join(tmpdir(), 'rnnkit-tfjs-bad-'));
    try {
      const good = path.join(root, 'good');
      const m = tf.sequential({ layers: [tf.layers.lstm({ units: 3, inputShape: [T, 2] }), tf.layers.dense({ units: 2 })] });
      randomize(m, rng(9));
      await saveTfjsDir(m, good);
      const goodJson = JSON.parse(readFileSync(path.join(good, 'model.json'), 'utf8'));
      /** A copy of the good model, with `edit` applied to its model.json (written back unless edit returns 'raw'). */
      const variant = (name: string, edit: (json: typeof goodJson, dir: string) => void | 'raw'): string => {
        const dir = path.join(root, name);
        cpSync(good, dir, { recursive: true });
        const json = JSON.parse(JSON.stringify(goodJson));
        if (edit(json, dir) !== 'raw') writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
        return dir;
      };
      const cases: [string, string, RegExp][] = [
        ['missing shard', variant('missing', (_j, d) => rmSync(path.join(d, 'weights.bin'))), /weights\.bin.*cannot be read.*ENOENT/],
        ['shard shorter than declared', variant('short', (_j, d) => writeFileSync(path.join(d, 'weights.bin'), readFileSync(path.join(d, 'weights.bin')).subarray(0, 40))), /declares \d+ bytes.*hold 40.*shorter than declared/],
        ['a declared size of terabytes', variant('huge', (j) => { j.weightsManifest[0].weights[0].shape = [1000000, 1000000]; }), /declares 4000000\d+ bytes/],
        ['unknown layer class', variant('class', (j) => { j.modelTopology.config.layers[1].class_name = 'Conv1D'; }), /unknown layer class "?'?Conv1D/],
        ['unknown dtype', variant('dtype', (j) => { j.weightsManifest[0].weights[0].dtype = 'complex64'; }), /dtype .*complex64.* not supported/],
        ['shape mismatch (kernel rows vs the input)', variant('shape', (j) => { j.weightsManifest[0].weights[0].shape = [3, 8]; }), /has 2 features, but layer lstm\w*'s kernel has 3 rows/],
        ['shape mismatch (recurrent_kernel)', variant('shape2', (j) => { j.weightsManifest[0].weights[1].shape = [4, 9]; }), /recurrent_kernel \(recurrent_kernel\): expected shape \[3, …\], got \[4, 9\]/],
        ['a config declaring a huge layer', variant('units', (j) => { j.modelTopology.config.layers[0].config.units = 100000000; }), /recurrent_kernel.*expected shape \[100000000, …\], got \[3, 12\]/],
        ['bad JSON', variant('json', (_j, d) => { writeFileSync(path.join(d, 'model.json'), '{"modelTopology": {'); return 'raw'; }), /model\.json: not valid JSON/],
        ['not a layers-model', variant('graph', (j) => { j.format = 'graph-model'; }), /graph-model.*not a tfjs LayersModel/],
        ['a shard path leaving the directory', variant('escape', (j) => { j.weightsManifest[0].paths = ['../good/weights.bin']; }), /must be relative to the model's directory/],
        ['Bidirectional merge_mode null', variant('merge', (j) => {
          j.modelTopology.config.layers[0] = { class_name: 'Bidirectional', config: { name: 'bi', merge_mode: null, layer: j.modelTopology.config.layers[0] } };
        }), /merge_mode null.*two outputs/],
        ['an option that changes the math', variant('option', (j) => { j.modelTopology.config.layers[0].config.time_major = true; }), /time_major/],
        ['an unknown option', variant('unknown', (j) => { j.modelTopology.config.layers[0].config.peephole_weights = true; }), /'peephole_weights' are not supported/],
        ['the manifest sizes do not add up', variant('sizes', (j) => { j.weightsManifest[0].weights = j.weightsManifest[0].weights.slice(3); }), /declares 32 bytes of weights but the shards \(weights\.bin: 320\) hold 320/],
        ['a layer without its weights', variant('noweights', (j, d) => {
          j.weightsManifest[0].weights = j.weightsManifest[0].weights.slice(0, 3);
          writeFileSync(path.join(d, 'weights.bin'), readFileSync(path.join(d, 'weights.bin')).subarray(0, 288));
        }), /layer dense\w* has weights but the manifest has none/],
      ];
      for (const [what, dir, re] of cases) {
        const line = assertChildOk(runNodeChild(thisFile, ['--tfjs-io-child', dir], { timeout: 60_000 }), what);
        t.diagnostic(`${what}: ${line}`);
        assert.match(line, re, `${what}: the error should name the problem`);
        assert.ok(line.includes(dir), `${what}: the error should name the file`);
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
}
