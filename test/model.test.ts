/**
 * Sequential models: finite-difference gradients (float64) through whole models (Embedding with
 * maskZero → Bidirectional LSTM with dropout masks fixed by a seed → TimeDistributed Dense → masked
 * cross-entropy; Masking → LSTM → RepeatVector → GRU → Activation → Dropout → softmax Dense with a
 * fused categorical cross-entropy), fit's learning and its documented behaviours (seeded histories,
 * validation split, early stopping, abort after the current batch, callbacks, truncated BPTT), the
 * double-softmax warning, getConfig/fromConfig and summary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  Activation, Adam, Bidirectional, Dense, Dropout, EarlyStopping, Embedding, GRU, LSTM, Masking, Random, RepeatVector, SGD, Sequential,
  Tensor, TimeDistributed,
} from '../lib/index.js';

/** Central differences on a few entries of every parameter; prints the worst relative error. */
async function gradcheck(model: Sequential, x: Tensor, y: Tensor, label: string, perParam = 6): Promise<void> {
  const { grads } = await model.computeGradients(x, y, { seed: 11 });
  const params = model.namedParameters();
  const rng = new Random(5);
  let worst = 0, where = '';
  for (const [name, p] of Object.entries(params)) {
    for (let j = 0; j < perParam; j++) {
      const k = rng.int(p.size);
      const old = p.data[k];
      const h = 1e-6;
      p.data[k] = old + h;
      model.markWeightsChanged();
      const up = (await model.computeGradients(x, y, { seed: 11 })).loss;
      p.data[k] = old - h;
      model.markWeightsChanged();
      const down = (await model.computeGradients(x, y, { seed: 11 })).loss;
      p.data[k] = old;
      model.markWeightsChanged();
      const fd = (up - down) / (2 * h);
      const an = grads[name].data[k];
      const err = Math.abs(fd - an) / Math.max(1e-4, Math.abs(fd) + Math.abs(an));
      if (err > worst) [worst, where] = [err, `${name}[${k}] analytic ${an} finite-difference ${fd}`];
    }
  }
  console.log(`${label}: worst relative error ${worst.toExponential(2)} at ${where}`);
  assert.ok(worst < 1e-5, `${label}: worst relative error ${worst} at ${where}`);
}

function ids(rng: Random, batch: number, steps: number, vocab: number, lengths?: number[]): Tensor {
  const d = new Float64Array(batch * steps);
  for (let b = 0; b < batch; b++) for (let t = 0; t < steps; t++) d[b * steps + t] = lengths && t >= lengths[b] ? 0 : 1 + rng.int(vocab - 1);
  return Tensor.from(d, [batch, steps]);
}

test('gradients of a whole model: Embedding(maskZero) → Bidirectional LSTM with dropout → TimeDistributed Dense → masked cross-entropy (float64)', async () => {
  const dtype = 'float64';
  const model = new Sequential([
    new Embedding({ inputDim: 9, outputDim: 4, maskZero: true, dtype }),
    new Bidirectional(new LSTM({ units: 5, returnSequences: true, dropout: 0.3, recurrentDropout: 0.2, dtype })),
    new TimeDistributed(new Dense({ units: 9, dtype })),
  ], { seed: 3 });
  model.compile({ optimizer: new SGD({ learningRate: 0.1 }), loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true } });
  const rng = new Random(1);
  const lengths = [6, 3, 5];
  const x = ids(rng, 3, 6, 9, lengths);
  const y = ids(rng, 3, 6, 9);
  await gradcheck(model, x, y, 'embedding-bilstm-td');
  // The padding is never computed: changing the targets there changes nothing.
  const y2 = Tensor.from(y.data.slice(), y.shape);
  y2.data[1 * 6 + 4] = (y2.data[1 * 6 + 4] + 1) % 9;
  const a = await model.computeGradients(x, y, { seed: 11 }), b = await model.computeGradients(x, y2, { seed: 11 });
  assert.equal(a.loss, b.loss);
  // Dropout is on in training: another seed gives another loss.
  const c = await model.computeGradients(x, y, { seed: 12 });
  assert.notEqual(a.loss, c.loss);
});

test('gradients of a whole model: Masking → LSTM → RepeatVector → GRU → Activation → Dropout → softmax Dense, fused categorical cross-entropy (float64)', async () => {
  const dtype = 'float64';
  const model = new Sequential([
    new Masking({ maskValue: 0 }),
    new LSTM({ units: 4, dtype }),
    new RepeatVector({ n: 3 }),
    new GRU({ units: 5, returnSequences: true, dtype }),
    new Activation({ activation: 'tanh' }),
    new Dropout({ rate: 0.25 }),
    new Dense({ units: 3, activation: 'softmax', dtype }),
  ], { seed: 4 });
  model.compile({ optimizer: new SGD({ learningRate: 0.1 }), loss: 'categoricalCrossentropy' });
  const rng = new Random(2);
  const x = Tensor.from(Float64Array.from({ length: 2 * 4 * 3 }, (_, i) => (i >= 9 && i < 12 ? 0 : rng.uniform(-1, 1))), [2, 4, 3]);
  const y = Tensor.from(Float64Array.from({ length: 2 * 3 * 3 }, (_, i) => (i % 3 === Math.floor(i / 3) % 3 ? 1 : 0)), [2, 3, 3]);
  await gradcheck(model, x, y, 'masking-lstm-repeat-gru');
  // predict applies the softmax (rows sum to 1); training used the logits.
  const p = await model.predict(x);
  for (let r = 0; r < p.size / 3; r++) assert.ok(Math.abs(p.data[3 * r] + p.data[3 * r + 1] + p.data[3 * r + 2] - 1) < 1e-12);
});

/** Sequence → one: is the sum of the sequence positive? */
function signProblem(n: number, steps: number, seed: number) {
  const rng = new Random(seed);
  const x = new Float32Array(n * steps), y = new Float32Array(n);
  for (let s = 0; s < n; s++) {
    let sum = 0;
    for (let t = 0; t < steps; t++) sum += x[s * steps + t] = rng.uniform(-1, 1);
    y[s] = sum > 0 ? 1 : 0;
  }
  return { x: Tensor.from(x, [n, steps, 1]), y: Tensor.from(y, [n]) };
}

function signModel() {
  const m = new Sequential([new LSTM({ units: 12 }), new Dense({ units: 2 })], { seed: 7 });
  m.compile({ optimizer: new Adam({ learningRate: 0.02 }), loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true }, metrics: ['accuracy'] });
  return m;
}

test('fit learns sequence classification; the same seed gives the same history; validationSplit adds val_ logs', async () => {
  const { x, y } = signProblem(256, 8, 1);
  const a = signModel(), b = signModel();
  const ha = await a.fit(x, y, { epochs: 6, batchSize: 32, seed: 9, validationSplit: 0.25, verbose: 0 });
  const hb = await b.fit(x, y, { epochs: 6, batchSize: 32, seed: 9, validationSplit: 0.25, verbose: 0 });
  assert.deepEqual(ha.history, hb.history);
  assert.deepEqual(Object.keys(ha.history).sort(), ['accuracy', 'loss', 'val_accuracy', 'val_loss']);
  console.log('sign problem: loss', ha.history.loss.map((v) => v.toFixed(3)).join(' '), 'val_accuracy', ha.history.val_accuracy.at(-1));
  assert.ok(ha.history.loss.at(-1)! < 0.35, `final loss ${ha.history.loss.at(-1)} should be below 0.35 (chance: 0.69)`);
  assert.ok(ha.history.val_accuracy.at(-1)! > 0.85);
  // Validation is the last 25% (64 samples): evaluate on them reproduces the logged value.
  const val = { x: Tensor.from(x.data.slice(192 * 8), [64, 8, 1]), y: Tensor.from(y.data.slice(192), [64]) };
  const e = await a.evaluate(val.x, val.y);
  assert.ok(Math.abs(e.loss - ha.history.val_loss.at(-1)!) < 1e-6);
});

test('EarlyStopping stops when the monitor stops improving; an AbortSignal stops after the current batch', async () => {
  const { x, y } = signProblem(64, 5, 2);
  const m = signModel();
  const stop = new EarlyStopping({ monitor: 'loss', minDelta: 100, patience: 1 });
  const h = await m.fit(x, y, { epochs: 10, batchSize: 16, verbose: 0, seed: 1, callbacks: [stop] });
  assert.equal(h.epoch.length, 3, 'epoch 0 sets the best, epochs 1 and 2 do not improve by 100, patience 1 → stop after epoch 2');
  assert.equal(stop.stoppedEpoch, 2);

  const m2 = signModel();
  const controller = new AbortController();
  const seen: number[] = [];
  const h2 = await m2.fit(x, y, {
    epochs: 5, batchSize: 8, verbose: 0, signal: controller.signal,
    callbacks: [{ onBatchEnd: (batch) => { seen.push(batch); if (batch === 2) controller.abort(); } }],
  });
  assert.equal(h2.aborted, true);
  assert.deepEqual(seen, [0, 1, 2]);
  assert.equal(m2.optimizer!.iterations, 3, 'three optimizer steps, none after the abort');
});

test('truncated BPTT trains per-step outputs in windows with carried states; stateful layers carry across calls', async () => {
  const rng = new Random(4);
  const n = 32, steps = 24;
  // Target: the input delayed by one step (needs the state carried across window edges).
  const x = new Float32Array(n * steps), y = new Float32Array(n * steps);
  for (let s = 0; s < n; s++) for (let t = 0; t < steps; t++) {
    x[s * steps + t] = rng.int(2);
    y[s * steps + t] = t === 0 ? 0 : x[s * steps + t - 1];
  }
  const m = new Sequential([new LSTM({ units: 8, returnSequences: true }), new TimeDistributed(new Dense({ units: 2 }))], { seed: 2 });
  m.compile({ optimizer: new Adam({ learningRate: 0.05 }), loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true }, metrics: ['accuracy'] });
  const h = await m.fit(Tensor.from(x, [n, steps, 1]), Tensor.from(y, [n, steps]), { epochs: 25, batchSize: 16, truncatedBptt: 6, verbose: 0, seed: 3 });
  assert.equal(m.optimizer!.iterations, 25 * 2 * 4, 'one step per window: 2 batches × 4 windows per epoch');
  console.log('delay task with truncatedBptt 6: accuracy', h.history.accuracy.at(-1));
  assert.ok(h.history.accuracy.at(-1)! > 0.95);

  const s = new LSTM({ inputSize: 1, units: 3, stateful: true, seed: 1 });
  const whole = new LSTM({ inputSize: 1, units: 3, seed: 1 });
  const seq = Tensor.from(Float32Array.from({ length: 6 }, (_, i) => i / 6), [1, 6, 1]);
  const first = Tensor.from(seq.data.slice(0, 3), [1, 3, 1]), second = Tensor.from(seq.data.slice(3), [1, 3, 1]);
  s.forward(first);
  const carried = s.forward(second).output.data;
  assert.deepEqual([...carried], [...whole.forward(seq).output.data]);
  s.resetStates();
  assert.notDeepEqual([...s.forward(second).output.data], [...carried]);
});

test('a softmax last layer with a loss expecting logits warns (no silent double softmax); getConfig/fromConfig and summary', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  const m = new Sequential([new Embedding({ inputDim: 5, outputDim: 3 }), new GRU({ units: 4 }), new Dense({ units: 5, activation: 'softmax' })], { seed: 1 });
  m.compile({ optimizer: new Adam(), loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true } });
  await new Promise((r) => setImmediate(r));
  process.off('warning', onWarning);
  assert.ok(warnings.some((w) => /softmax would be applied twice/.test(w)), `warnings: ${warnings.join('; ')}`);

  const x = Tensor.from([1, 2, 3, 4, 2, 1], [2, 3]);
  const before = await m.predict(x);
  const copy = Sequential.fromConfig(JSON.parse(JSON.stringify(m.getConfig())));
  assert.deepEqual([...(await copy.predict(x)).data], [...before.data], 'the same seeds give the same weights');
  const text = m.summary(false);
  assert.match(text, /0 Embedding\s+\(None, None, 3\)\s+15/);
  assert.match(text, /Total params: /);
  assert.throws(() => m.compile({ optimizer: new Adam(), loss: 'nope' as never }), TypeError);
  await assert.rejects(m.fit(x, Tensor.from([1, 2], [2]), { epoch: 3 } as never), /options\.epoch: unknown option/);
  await assert.rejects(m.predict(Tensor.zeros([2, 3, 4])), /x must have shape \[samples, steps\]/);
});

test('predict with lengths after an Embedding: each sequence as if it were alone (and with maskZero, the shorter of the two)', async () => {
  for (const maskZero of [false, true]) {
    const model = new Sequential([new Embedding({ inputDim: 7, outputDim: 3, maskZero }), new LSTM({ units: 4 })], { seed: 9 });
    const rng = new Random(5);
    const x = ids(rng, 2, 5, 7);
    const lengths = [4, 2];
    const got = await model.predict(x, { lengths });
    for (let b = 0; b < 2; b++) {
      const alone = Tensor.from(Float32Array.from(x.data.slice(b * 5, b * 5 + lengths[b])), [1, lengths[b]]);
      const want = await model.predict(alone);
      const g = Array.from(got.data.slice(b * 4, (b + 1) * 4)), w = Array.from(want.data);
      assert.ok(g.every((v, k) => Math.abs(v - w[k]) <= 1e-6), `maskZero ${maskZero}, sequence ${b}: ${g} vs ${w}`);
    }
    const full = await model.predict(x);
    assert.ok(Array.from(full.data.slice(4, 8)).some((v, k) => Math.abs(v - got.data[4 + k]) > 1e-4), 'lengths change the short sequence');
  }
});
