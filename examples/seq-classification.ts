/**
 * Sequence → one: classify random digit strings by whether they hold more odd than even digits.
 * Embedding → LSTM → Dense(2), trained with Adam; held-out test accuracy is printed.
 *
 *   node --import tsx examples/seq-classification.ts
 *
 * Exit code 0 when the test accuracy is above 0.9.
 */
import { pathToFileURL } from 'node:url';

import { Adam, Dense, Embedding, LSTM, Random, Sequential, Tensor } from '../lib/index.js';

export interface SeqClassificationConfig {
  train: number; test: number; steps: number; units: number; embed: number;
  epochs: number; batch: number; lr: number; seed: number; verbose: 0 | 1;
}

export const DEFAULTS: SeqClassificationConfig = {
  train: 4000, test: 1000, steps: 9, units: 32, embed: 8, epochs: 12, batch: 32, lr: 0.01, seed: 1, verbose: 1,
};

/** n strings of `steps` digits (odd length: no ties); label 1 when odd digits outnumber even ones. */
export function makeData(n: number, steps: number, rng: Random): { x: Tensor; y: Tensor; digits: number[][] } {
  const x = new Float32Array(n * steps), y = new Float32Array(n);
  const digits: number[][] = [];
  for (let i = 0; i < n; i++) {
    let odd = 0;
    const row: number[] = [];
    for (let t = 0; t < steps; t++) {
      const d = rng.int(10);
      row.push(d);
      x[i * steps + t] = d;
      odd += d % 2;
    }
    digits.push(row);
    y[i] = odd * 2 > steps ? 1 : 0;
  }
  return { x: Tensor.from(x, [n, steps]), y: Tensor.from(y, [n]), digits };
}

export async function run(config: Partial<SeqClassificationConfig> = {}): Promise<{ accuracy: number; loss: number; trainAccuracy: number }> {
  const c = { ...DEFAULTS, ...config };
  const log = (s: string) => c.verbose > 0 && console.log(s);
  const rng = new Random(c.seed);
  const train = makeData(c.train, c.steps, rng), test = makeData(c.test, c.steps, rng);
  const model = new Sequential([
    new Embedding({ inputDim: 10, outputDim: c.embed }),
    new LSTM({ units: c.units }),
    new Dense({ units: 2 }),
  ], { seed: c.seed });
  model.compile({ optimizer: new Adam({ learningRate: c.lr }), loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true }, metrics: ['accuracy'] });
  const fit = await model.fit(train.x, train.y, { epochs: c.epochs, batchSize: c.batch, seed: c.seed, verbose: c.verbose });
  const ev = await model.evaluate(test.x, test.y);
  const logits = await model.predict(test.x);
  for (let i = 0; i < 5; i++) {
    const pred = logits.data[2 * i + 1] > logits.data[2 * i] ? 1 : 0;
    log(`${test.digits[i].join('')}  more odd: ${test.y.data[i] ? 'yes' : 'no '}  predicted: ${pred ? 'yes' : 'no'}`);
  }
  log(`test accuracy ${(ev.accuracy * 100).toFixed(1)}% (loss ${ev.loss.toFixed(4)})`);
  const acc = fit.history.accuracy ?? [];
  return { accuracy: ev.accuracy, loss: ev.loss, trainAccuracy: acc[acc.length - 1] ?? NaN };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().then((r) => { process.exitCode = r.accuracy > 0.9 ? 0 : 1; }, (err) => { console.error(err); process.exit(1); });
}
