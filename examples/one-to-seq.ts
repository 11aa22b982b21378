/**
 * One → sequence: from the one-hot vector of a start digit d and a stride s (one-hot too), generate
 * d, d+s, d+2s, ... (mod 10). Dense → RepeatVector(T) → LSTM(returnSequences) → TimeDistributed(Dense(10)).
 *
 *   node --import tsx examples/one-to-seq.ts
 *
 * Exit code 0 when the per-step accuracy on held-out inputs is above 0.9.
 */
import { pathToFileURL } from 'node:url';

import { Adam, Dense, LSTM, Random, RepeatVector, Sequential, Tensor, TimeDistributed } from '../lib/index.js';

export interface OneToSeqConfig {
  train: number; test: number; steps: number; strides: number; units: number;
  epochs: number; batch: number; lr: number; seed: number; verbose: 0 | 1;
}

export const DEFAULTS: OneToSeqConfig = {
  train: 2000, test: 500, steps: 8, strides: 3, units: 48, epochs: 40, batch: 32, lr: 0.01, seed: 1, verbose: 1,
};

/** Inputs [n, 10 + strides] (one-hot d, one-hot s-1), targets [n, steps] = d + t·s mod 10. */
export function makeData(n: number, c: OneToSeqConfig, rng: Random): { x: Tensor; y: Tensor } {
  const w = 10 + c.strides;
  const x = new Float32Array(n * w), y = new Float32Array(n * c.steps);
  for (let i = 0; i < n; i++) {
    const d = rng.int(10), s = 1 + rng.int(c.strides);
    x[i * w + d] = 1;
    x[i * w + 10 + s - 1] = 1;
    for (let t = 0; t < c.steps; t++) y[i * c.steps + t] = (d + t * s) % 10;
  }
  return { x: Tensor.from(x, [n, w]), y: Tensor.from(y, [n, c.steps]) };
}

export async function run(config: Partial<OneToSeqConfig> = {}): Promise<{ accuracy: number; loss: number }> {
  const c = { ...DEFAULTS, ...config };
  const log = (s: string) => c.verbose > 0 && console.log(s);
  const rng = new Random(c.seed);
  const train = makeData(c.train, c, rng), test = makeData(c.test, c, rng);
  const model = new Sequential([
    new Dense({ units: c.units, activation: 'tanh' }),
    new RepeatVector({ n: c.steps }),
    new LSTM({ units: c.units, returnSequences: true }),
    new TimeDistributed(new Dense({ units: 10 })),
  ], { seed: c.seed });
  model.compile({ optimizer: new Adam({ learningRate: c.lr }), loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true }, metrics: ['accuracy'] });
  await model.fit(train.x, train.y, { epochs: c.epochs, batchSize: c.batch, seed: c.seed, verbose: c.verbose });
  const ev = await model.evaluate(test.x, test.y);
  const logits = await model.predict(test.x);
  const w = 10 + c.strides;
  for (let i = 0; i < 5; i++) {
    const d = test.x.data.slice(i * w, i * w + 10).indexOf(1), s = test.x.data.slice(i * w + 10, (i + 1) * w).indexOf(1) + 1;
    const out: number[] = [];
    for (let t = 0; t < c.steps; t++) {
      const row = logits.data.slice((i * c.steps + t) * 10, (i * c.steps + t + 1) * 10);
      out.push(row.indexOf(Math.max(...row)));
    }
    log(`start ${d}, stride ${s} → ${out.join(' ')}`);
  }
  log(`per-step test accuracy ${(ev.accuracy * 100).toFixed(1)}% (loss ${ev.loss.toFixed(4)})`);
  return { accuracy: ev.accuracy, loss: ev.loss };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().then((r) => { process.exitCode = r.accuracy > 0.9 ? 0 : 1; }, (err) => { console.error(err); process.exit(1); });
}
