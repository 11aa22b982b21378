/**
 * Child process for test/model-persistence.test.ts.
 *   model-save-child.ts <dir> continue <dataJson>   load <dir>, print predictions (float bits),
 *                                                  fit 1 epoch (seed 5), print loss history and a
 *                                                  checksum of the final weights' bits.
 *   model-save-child.ts <dir> save-big <seed>       build the large model with <seed>, save it to <dir>,
 *                                                  print its predictions' bits.
 *   model-save-child.ts <dir> kill-during-save <seed> <delayMs>
 *                                                  build the large model, start saving to <dir> and
 *                                                  SIGKILL itself after <delayMs> ms; prints
 *                                                  "completed" if the save finished first.
 * Shared pieces (models, data, bit dumps) are exported for the parent.
 */
import { createHash } from 'node:crypto';
import { Adam, Dense, Embedding, LSTM, Sequential, Tensor, loadModel } from '../../lib/index.js';

export const FIT_CONTINUE = { epochs: 1, batchSize: 4, seed: 5, verbose: 0 } as const;

/** The float bits of a tensor (as hex of its bytes), so comparisons are exact. */
export function bitsHex(t: Tensor): string {
  const d = t.data as Float32Array | Float64Array;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('hex');
}

export function weightsChecksum(model: Sequential): string {
  const h = createHash('sha256');
  for (const [name, t] of Object.entries(model.namedParameters())) {
    const d = t.data as Float32Array | Float64Array;
    h.update(name);
    h.update(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
  }
  return h.digest('hex');
}

export function ids(n: number, steps: number, vocab: number, salt: number): Tensor {
  const a = new Float32Array(n * steps);
  for (let i = 0; i < a.length; i++) a[i] = (i * 7 + salt * 3 + ((i * i) % 5)) % vocab;
  return Tensor.from(a, [n, steps]);
}

export function bigModel(seed: number): Sequential {
  const m = new Sequential([new Embedding({ inputDim: 50, outputDim: 64 }), new LSTM({ units: 512, returnSequences: true }), new Dense({ units: 50 })], { seed });
  m.compile({ optimizer: new Adam({ learningRate: 0.01 }), loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true }, metrics: ['accuracy'] });
  return m;
}

export const BIG_X = ids(2, 3, 50, 1);

async function main(): Promise<void> {
  const [dir, mode, ...rest] = process.argv.slice(2);
  if (mode === 'continue') {
    const data = JSON.parse(rest[0]) as { x: number[]; y: number[]; shape: number[] };
    const x = Tensor.from(Float32Array.from(data.x), data.shape);
    const y = Tensor.from(Float32Array.from(data.y), data.shape);
    const model = await loadModel(dir);
    const pred = bitsHex(await model.predict(x));
    const h = await model.fit(x, y, FIT_CONTINUE);
    const after = bitsHex(await model.predict(x));
    process.stdout.write(`${JSON.stringify({ pred, loss: h.history.loss, checksum: weightsChecksum(model), after })}\n`);
  } else if (mode === 'save-big') {
    const model = bigModel(Number(rest[0]));
    const pred = bitsHex(await model.predict(BIG_X));
    await model.save(dir);
    process.stdout.write(`${JSON.stringify({ pred })}\n`);
  } else if (mode === 'kill-during-save') {
    const model = bigModel(Number(rest[0]));
    await model.predict(BIG_X);
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), Number(rest[1]));
    await model.save(dir);
    process.stdout.write('completed\n');
    process.exit(0);
  } else {
    throw new Error(`model-save-child: unknown mode ${mode}`);
  }
}

if (process.argv[1] && /model-save-child\.ts$/.test(process.argv[1])) {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
}
