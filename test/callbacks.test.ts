/**
 * fit's callbacks: ModelCheckpoint (every epoch and saveBestOnly; the checkpoint loads), CSVLogger and
 * JSONLogger (one row/entry per epoch with the history's values), ReduceLROnPlateau (lowers the
 * optimizer's learning rate after `patience` epochs without improvement), hook order, option checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Adam, CSVLogger, Dense, EarlyStopping, GRU, JSONLogger, ModelCheckpoint, ReduceLROnPlateau, Sequential, Tensor, loadModel } from '../lib/index.js';

function data() {
  const n = 24, steps = 4;
  const x = Float32Array.from({ length: n * steps }, (_, i) => Math.sin(i * 1.7));
  const y = Float32Array.from({ length: n }, (_, s) => (x[s * steps] > 0 ? 1 : 0));
  return { x: Tensor.from(x, [n, steps, 1]), y: Tensor.from(y, [n]) };
}

function model(lr = 0.01) {
  const m = new Sequential([new GRU({ units: 4 }), new Dense({ units: 2 })], { seed: 5 });
  m.compile({ optimizer: new Adam({ learningRate: lr }), loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true }, metrics: ['accuracy'] });
  return m;
}

test('ModelCheckpoint, CSVLogger and JSONLogger write what fit logged; the checkpoint loads with the same predictions', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-callbacks-'));
  const { x, y } = data();
  const m = model();
  const calls: string[] = [];
  const h = await m.fit(x, y, {
    epochs: 3, batchSize: 8, seed: 1, verbose: 0, validationSplit: 0.25,
    callbacks: [
      new ModelCheckpoint({ dir: path.join(dir, 'epoch-{epoch}') }),
      new ModelCheckpoint({ dir: path.join(dir, 'best'), saveBestOnly: true }),
      new CSVLogger({ path: path.join(dir, 'log.csv') }),
      new JSONLogger({ path: path.join(dir, 'log.json') }),
      { onTrainBegin: () => { calls.push('train'); }, onEpochBegin: (e) => { calls.push(`begin ${e}`); }, onEpochEnd: (e) => { calls.push(`end ${e}`); }, onTrainEnd: () => { calls.push('done'); } },
    ],
  });
  assert.deepEqual(calls, ['train', 'begin 0', 'end 0', 'begin 1', 'end 1', 'begin 2', 'end 2', 'done']);
  for (const e of [1, 2, 3]) assert.ok(fs.existsSync(path.join(dir, `epoch-${e}`, 'model.safetensors')), `epoch-${e} saved`);
  const csv = fs.readFileSync(path.join(dir, 'log.csv'), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'epoch,loss,accuracy,val_loss,val_accuracy');
  assert.equal(csv.length, 4);
  assert.equal(Number(csv[3].split(',')[1]), h.history.loss[2]);
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'log.json'), 'utf8')) as Record<string, number[]>;
  assert.deepEqual(json.val_loss, h.history.val_loss);
  const last = await loadModel(path.join(dir, 'epoch-3'));
  assert.deepEqual([...(await last.predict(x)).data], [...(await m.predict(x)).data]);
  const best = await loadModel(path.join(dir, 'best'));
  const bestEpoch = h.history.val_loss.indexOf(Math.min(...h.history.val_loss));
  const atBest = await loadModel(path.join(dir, `epoch-${bestEpoch + 1}`));
  assert.deepEqual([...(await best.predict(x)).data], [...(await atBest.predict(x)).data], 'saveBestOnly kept the best epoch');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('ReduceLROnPlateau lowers the learning rate after patience epochs without improvement; option checks', async () => {
  const { x, y } = data();
  const m = model(0.01);
  const seen: number[] = [];
  await m.fit(x, y, {
    epochs: 4, batchSize: 8, seed: 1, verbose: 0,
    callbacks: [new ReduceLROnPlateau({ monitor: 'loss', minDelta: 100, patience: 2, factor: 0.5 }), { onEpochEnd: () => { seen.push(m.optimizer!.learningRate); } }],
  });
  // Epoch 0 sets the best; epochs 1 and 2 do not improve by 100 → halved after epoch 2; epoch 3 waits again.
  assert.deepEqual(seen, [0.01, 0.01, 0.005, 0.005]);
  assert.throws(() => new ReduceLROnPlateau({ factor: 2 }), RangeError);
  assert.throws(() => new EarlyStopping({ patience: -1 }), RangeError);
  assert.throws(() => new ModelCheckpoint({ dir: '' }), TypeError);
  assert.throws(() => new CSVLogger({ path: 'x.csv', sep: ';' } as never), /CSVLogger: options\.sep: unknown option/);
  await assert.rejects(m.fit(x, y, { epochs: 1, verbose: 0, callbacks: [new EarlyStopping()] }), /monitor 'val_loss' is not in the logs/);
});
