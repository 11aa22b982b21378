/**
 * Trains and saves the models examples/server/server.ts serves:
 *   <out>/lm          a character-level language model of the King James Bible (Embedding → LSTM →
 *                     TimeDistributed(Dense) logits), with vocab.json (its characters)
 *   <out>/classifier  "more odd than even digits?" over digit strings (Embedding → GRU → Dense softmax),
 *                     with vocab.json (the digits) and labels.json
 *   <out>/lstm256     LSTM(64 → 256), returnSequences, seeded weights (the load test's model)
 *
 *   node --import tsx examples/server/make-models.ts [--out examples/out/server] [--quick]
 *
 * --quick trains on less (a few seconds; what the tests use).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

import { Adam, Dense, Embedding, GRU, LSTM, Random, Sequential, TimeDistributed } from '../../lib/index.js';
import { loadCorpus, windows } from '../char-lm.js';
import { makeData } from '../seq-classification.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export async function makeModels(out: string, quick: boolean): Promise<void> {
  fs.mkdirSync(out, { recursive: true });
  // Character language model.
  const text = loadCorpus().slice(0, quick ? 20_000 : 300_000);
  const chars = [...new Set(text)].sort();
  const index = new Map(chars.map((c, i) => [c, i]));
  const ids = Int32Array.from(text, (c) => index.get(c)!);
  const lm = new Sequential([
    new Embedding({ inputDim: chars.length, outputDim: 16 }),
    new LSTM({ units: quick ? 64 : 128, returnSequences: true }),
    new TimeDistributed(new Dense({ units: chars.length })),
  ], { seed: 1, name: 'char-lm', inputShape: [null] });
  lm.compile({ optimizer: new Adam({ learningRate: 0.01 }), loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true } });
  const w = windows(ids, 32);
  await lm.fit(w.x, w.y, { epochs: quick ? 1 : 3, batchSize: 32, seed: 1, verbose: 0 });
  await lm.save(path.join(out, 'lm'), { includeOptimizer: false });
  fs.writeFileSync(path.join(out, 'lm', 'vocab.json'), JSON.stringify(chars));

  // Sequence classification.
  const rng = new Random(2);
  const data = makeData(quick ? 400 : 2000, 9, rng);
  const cls = new Sequential([
    new Embedding({ inputDim: 10, outputDim: 8 }),
    new GRU({ units: 32 }),
    new Dense({ units: 2, activation: 'softmax' }),
  ], { seed: 2, name: 'odd-digits', inputShape: [null] });
  cls.compile({ optimizer: new Adam({ learningRate: 0.01 }), loss: 'sparseCategoricalCrossentropy' });
  await cls.fit(data.x, data.y, { epochs: quick ? 2 : 8, batchSize: 32, seed: 2, verbose: 0 });
  await cls.save(path.join(out, 'classifier'), { includeOptimizer: false });
  fs.writeFileSync(path.join(out, 'classifier', 'vocab.json'), JSON.stringify([...'0123456789']));
  fs.writeFileSync(path.join(out, 'classifier', 'labels.json'), JSON.stringify(['more even digits', 'more odd digits']));

  // The load test's LSTM(64 → 256).
  const big = new Sequential([new LSTM({ units: 256, returnSequences: true })], { seed: 3, name: 'lstm256', inputShape: [null, 64] });
  big.build();
  await big.save(path.join(out, 'lstm256'));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, quick: { type: 'boolean' } } });
  const out = path.resolve(values.out ?? path.join(here, '..', 'out', 'server'));
  await makeModels(out, values.quick ?? false);
  console.log(`saved lm, classifier and lstm256 under ${out}`);
}
