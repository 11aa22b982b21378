/**
 * Synchronous sequence → sequence (tagging): tag each digit of a random string 1 when it equals the
 * previous digit, else 0. Digits come from a small alphabet so repeats are common.
 * Embedding → Bidirectional(LSTM, returnSequences) → TimeDistributed(Dense(2)).
 *
 *   node --import tsx examples/seq-tagging.ts
 *
 * Exit code 0 when the per-step accuracy on held-out strings is above 0.95.
 */
import { pathToFileURL } from 'node:url';

import { Adam, Bidirectional, Dense, Embedding, LSTM, Random, Sequential, Tensor, TimeDistributed } from '../lib/index.js';

export interface SeqTaggingConfig {
  train: number; test: number; steps: number; alphabet: number; units: number; embed: number;
  epochs: number; batch: number; lr: number; seed: number; verbose: 0 | 1;
}

export const DEFAULTS: SeqTaggingConfig = {
  train: 2000, test: 500, steps: 12, alphabet: 4, units: 24, embed: 8, epochs: 15, batch: 32, lr: 0.01, seed: 1, verbose: 1,
};

export function makeData(n: number, c: SeqTaggingConfig, rng: Random): { x: Tensor; y: Tensor } {
  const x = new Float32Array(n * c.steps), y = new Float32Array(n * c.steps);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < c.steps; t++) {
      const d = rng.int(c.alphabet);
      x[i * c.steps + t] = d;
      y[i * c.steps + t] = t > 0 && x[i * c.steps + t - 1] === d ? 1 : 0;
    }
  }
  return { x: Tensor.from(x, [n, c.steps]), y: Tensor.from(y, [n, c.steps]) };
}

export async function run(config: Partial<SeqTaggingConfig> = {}): Promise<{ accuracy: number; loss: number; baseline: number }> {
  const c = { ...DEFAULTS, ...config };
  const log = (s: string) => c.verbose > 0 && console.log(s);
  const rng = new Random(c.seed);
  const train = makeData(c.train, c, rng), test = makeData(c.test, c, rng);
  const model = new Sequential([
    new Embedding({ inputDim: c.alphabet, outputDim: c.embed }),
    new Bidirectional(new LSTM({ units: c.units, returnSequences: true })),
    new TimeDistributed(new Dense({ units: 2 })),
  ], { seed: c.seed });
  model.compile({ optimizer: new Adam({ learningRate: c.lr }), loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true }, metrics: ['accuracy'] });
  await model.fit(train.x, train.y, { epochs: c.epochs, batchSize: c.batch, seed: c.seed, verbose: c.verbose });
  const ev = await model.evaluate(test.x, test.y);
  let ones = 0;
  for (const v of test.y.data) ones += v;
  const baseline = Math.max(ones, test.y.data.length - ones) / test.y.data.length;
  const logits = await model.predict(test.x);
  for (let i = 0; i < 3; i++) {
    const xs: number[] = [], ts: number[] = [], ps: number[] = [];
    for (let t = 0; t < c.steps; t++) {
      const k = i * c.steps + t;
      xs.push(test.x.data[k]); ts.push(test.y.data[k]);
      ps.push(logits.data[2 * k + 1] > logits.data[2 * k] ? 1 : 0);
    }
    log(`digits ${xs.join('')}\ntarget ${ts.join('')}\noutput ${ps.join('')}\n`);
  }
  log(`per-step test accuracy ${(ev.accuracy * 100).toFixed(1)}% (majority-class baseline ${(baseline * 100).toFixed(1)}%, loss ${ev.loss.toFixed(4)})`);
  return { accuracy: ev.accuracy, loss: ev.loss, baseline };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().then((r) => { process.exitCode = r.accuracy > 0.95 ? 0 : 1; }, (err) => { console.error(err); process.exit(1); });
}
