/**
 * ModelPool (piscina workers) in a child process (see test/serve-pool.test.ts): two saved models,
 * 2 workers, 24 concurrent predictions; each result bit-identical to model.predict on the main
 * thread with the same input, and every worker loaded each model once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Dense, Embedding, GRU, LSTM, ModelPool, Sequential, Tensor } from '../../lib/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-pool-'));
try {
  const a = new Sequential([new LSTM({ units: 32, returnSequences: true }), new Dense({ units: 4 })], { seed: 1, inputShape: [null, 6] });
  const b = new Sequential([new Embedding({ inputDim: 20, outputDim: 8 }), new GRU({ units: 16 }), new Dense({ units: 3, activation: 'softmax' })], { seed: 2, inputShape: [null] });
  a.build();
  b.build();
  await a.save(path.join(dir, 'a'));
  await b.save(path.join(dir, 'b'));
  const pool = new ModelPool({ models: { a: path.join(dir, 'a'), b: path.join(dir, 'b') }, threads: 2 });
  assert.throws(() => new ModelPool({ models: { a: dir }, thread: 2 } as never), /options\.thread: unknown option/);
  await assert.rejects(pool.predict('c', Tensor.zeros([1, 2, 6])), /no model "c"/);
  const inputs = Array.from({ length: 24 }, (_, i) => i % 2
    ? Tensor.from(Float32Array.from({ length: 3 * 7 }, (_, k) => (k * 7 + i) % 20), [3, 7])
    : Tensor.from(Float32Array.from({ length: 2 * 5 * 6 }, (_, k) => Math.sin(k + i)), [2, 5, 6]));
  const results = await Promise.all(inputs.map((x, i) => pool.predict(i % 2 ? 'b' : 'a', x)));
  const threads = new Set<number>();
  for (let i = 0; i < inputs.length; i++) {
    const want = await (i % 2 ? b : a).predict(inputs[i]);
    const got = results[i].output;
    assert.deepEqual(got.shape, want.shape);
    for (let k = 0; k < want.size; k++) if (!Object.is(got.data[k], want.data[k])) assert.fail(`task ${i}: entry ${k} ${got.data[k]} vs ${want.data[k]}`);
    assert.equal(results[i].worker.loads, 1, 'a worker loaded a model twice');
    threads.add(results[i].worker.threadId);
  }
  await pool.close();
  console.log(`ok: 24 predictions on ${threads.size} workers bit-identical to the main thread; each worker loaded each model once`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
