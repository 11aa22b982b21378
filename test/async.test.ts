/**
 * The Promise forms (forwardAsync, backwardAsync) against the sync ones, and concurrency:
 *  - sync and async give bit-identical results for inference forward, training forward and
 *    backward, for every cell family, both dtypes and a mix of options;
 *  - 32 concurrent forwardAsync calls (different layers, shapes, dtypes; some big enough for the
 *    native pool to split their GEMMs) equal sequential sync calls, bit for bit; the same for
 *    concurrent training forwardAsync + backwardAsync;
 *  - two worker_threads running layers concurrently (with the main thread busy too) produce the
 *    main thread's sync results, bit for bit;
 *  - the event loop keeps running while a long (~200 ms) LSTM forwardAsync is in flight.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import os from 'node:os';
import { assertChildOk, runNodeChild } from './helpers/child.js';

import { getMaxRunningCalls, getNumThreads, LSTM, setNumThreads, Tensor } from '../lib/index.js';
import { buildJob, mixedSpecs, resultOf, type Family, type Job, type JobResult, type JobSpec } from './helpers/async-jobs.js';
import { assertBitIdentical, uniform32, rng } from './helpers/compare.js';

const FAMILIES: Family[] = ['rnn_tanh', 'rnn_relu', 'lstm', 'gru_after', 'gru_before'];

function specName(s: JobSpec): string {
  return `${s.family} ${s.dtype} B=${s.B} T=${s.T} I=${s.I} H=${s.H} seq=${s.returnSequences} back=${s.goBackwards} init=${s.initialState} seed=${s.seed}`;
}

function assertSameResult(got: JobResult, want: JobResult, label: string): void {
  assertBitIdentical(got.output, want.output, `${label}: output`);
  assert.equal(got.states.length, want.states.length, `${label}: number of states`);
  got.states.forEach((s, i) => assertBitIdentical(s, want.states[i], `${label}: states[${i}]`));
}

function assertSameGradients(
  got: { input: Tensor; initialState: Tensor[]; params: Record<string, Tensor> },
  want: { input: Tensor; initialState: Tensor[]; params: Record<string, Tensor> },
  label: string,
): void {
  assertBitIdentical(got.input.data, want.input.data, `${label}: dL/dinput`, want.input.shape);
  assert.equal(got.initialState.length, want.initialState.length, `${label}: number of initial-state gradients`);
  got.initialState.forEach((g, i) => assertBitIdentical(g.data, want.initialState[i].data, `${label}: dL/dinitialState[${i}]`, g.shape));
  assert.deepEqual(Object.keys(got.params).sort(), Object.keys(want.params).sort(), `${label}: parameter names`);
  for (const k of Object.keys(want.params)) assertBitIdentical(got.params[k].data, want.params[k].data, `${label}: dL/d${k}`, want.params[k].shape);
}

const forwardSync = (j: Job) => j.layer.forward(j.x, { initialState: j.initialState });
const forwardAsync = (j: Job) => j.layer.forwardAsync(j.x, { initialState: j.initialState });

describe('sync and Promise forms are bit-identical', () => {
  let seed = 300;
  for (const family of FAMILIES) {
    for (const dtype of ['float32', 'float64'] as const) {
      const variants: Partial<JobSpec>[] = [
        { B: 3, T: 5, I: 4, H: 6, returnSequences: true, goBackwards: false, initialState: true },
        { B: 1, T: 1, I: 5, H: 7, returnSequences: false, goBackwards: true, initialState: false },
        { B: 16, T: 6, I: 20, H: 70, returnSequences: true, goBackwards: true, initialState: true }, // uses the pool
      ];
      for (const v of variants) {
        const spec = { family, dtype, seed: seed++, ...v } as JobSpec;
        test(specName(spec), async () => {
          const j = buildJob(spec);
          // Inference forward.
          assertSameResult(resultOf(await forwardAsync(j)), resultOf(forwardSync(j)), 'forward');
          // Training forward.
          const fs = j.layer.forward(j.x, { initialState: j.initialState, training: true });
          const fa = await j.layer.forwardAsync(j.x, { initialState: j.initialState, training: true });
          assertSameResult(resultOf(fa), resultOf(fs), 'training forward');
          assert.ok(fs.run && fa.run, 'training runs');
          // The training forward's outputs are those of the inference forward.
          assertSameResult(resultOf(fs), resultOf(forwardSync(j)), 'training vs inference forward');
          // Backward, each form on each run.
          const opts = { dStates: j.dStates };
          const bs = j.layer.backward(fs.run, j.dOutput, opts);
          assertSameGradients(await j.layer.backwardAsync(fa.run, j.dOutput, opts), bs, 'backwardAsync(async run)');
          assertSameGradients(await j.layer.backwardAsync(fs.run, j.dOutput, opts), bs, 'backwardAsync(sync run)');
          assertSameGradients(j.layer.backward(fa.run, j.dOutput, opts), bs, 'backward(async run)');
          // Repeating a sync call is deterministic too.
          assertSameGradients(j.layer.backward(fs.run, j.dOutput, opts), bs, 'backward repeated');
        });
      }
    }
  }
});

test('32 concurrent forwardAsync calls equal sequential sync calls', async () => {
  const specs = mixedSpecs(32, 41, true);
  const jobs = specs.map(buildJob);
  // Two of the calls share a layer with another call (weights are only read).
  const shared: Job[] = [{ ...jobs[1], x: buildJob({ ...specs[1], seed: specs[1].seed + 5000 }).x }, jobs[2]];
  const all = [...jobs, ...shared];
  const want = all.map((j) => resultOf(forwardSync(j)));
  const got = await Promise.all(all.map(forwardAsync));
  got.forEach((r, k) => assertSameResult(resultOf(r), want[k], `call ${k} (${specName(all[k].spec)})`));
  // And again while the calls overlap differently (interleaved starts).
  const staggered = await Promise.all(
    all.map(async (j, k) => {
      if (k % 3 === 0) await new Promise((res) => setImmediate(res));
      return forwardAsync(j);
    }),
  );
  staggered.forEach((r, k) => assertSameResult(resultOf(r), want[k], `staggered call ${k} (${specName(all[k].spec)})`));
});

test('concurrent training forwardAsync + backwardAsync equal sequential sync calls', async () => {
  const jobs = mixedSpecs(16, 77, true).map(buildJob);
  const want = jobs.map((j) => {
    const f = j.layer.forward(j.x, { initialState: j.initialState, training: true });
    return { f: resultOf(f), g: j.layer.backward(f.run!, j.dOutput, { dStates: j.dStates }) };
  });
  const got = await Promise.all(
    jobs.map(async (j) => {
      const f = await j.layer.forwardAsync(j.x, { initialState: j.initialState, training: true });
      return { f: resultOf(f), g: await j.layer.backwardAsync(f.run!, j.dOutput, { dStates: j.dStates }) };
    }),
  );
  got.forEach((r, k) => {
    const label = `job ${k} (${specName(jobs[k].spec)})`;
    assertSameResult(r.f, want[k].f, label);
    assertSameGradients(r.g, want[k].g, label);
  });
});

test('results do not depend on the number of native threads', async () => {
  const before = getNumThreads();
  const jobs = mixedSpecs(8, 99, true).map(buildJob);
  try {
    setNumThreads(1);
    assert.equal(getNumThreads(), 1);
    const one = jobs.map((j) => resultOf(forwardSync(j)));
    setNumThreads(Math.max(2, before));
    const many = await Promise.all(jobs.map(forwardAsync));
    many.forEach((r, k) => assertSameResult(resultOf(r), one[k], `job ${k} (${specName(jobs[k].spec)}), 1 vs ${getNumThreads()} threads`));
  } finally {
    setNumThreads(before);
  }
  assert.equal(getNumThreads(), before);
});

test('async calls at once: cores ÷ native threads by default, RNNKIT_MAX_RUNNING_CALLS when set', () => {
  const before = getNumThreads(), cores = os.cpus().length;
  try {
    setNumThreads(1);
    assert.equal(getMaxRunningCalls(), cores, 'one thread per call: a call per core');
    setNumThreads(cores);
    assert.equal(getMaxRunningCalls(), 1, 'every core per call: one at a time');
    setNumThreads(2 * cores);
    assert.equal(getMaxRunningCalls(), 1, 'more threads than cores: still one');
  } finally {
    setNumThreads(before);
  }
  const code = `import { getMaxRunningCalls, setNumThreads } from './lib/index.js'; setNumThreads(1); console.log('ok: calls', getMaxRunningCalls());`;
  const line = assertChildOk(runNodeChild('-e', [code], { nodeArgs: ['--input-type=module'], env: { RNNKIT_MAX_RUNNING_CALLS: '3' } }), 'RNNKIT_MAX_RUNNING_CALLS=3');
  assert.match(line, /calls 3\b/);
});

/**
 * Starts a worker running test/helpers/async-worker.ts. With Node 20 a worker does not inherit the
 * tsx loader reliably through execArgv ['--import', 'tsx'] (the entry .ts file is rejected with
 * ERR_UNKNOWN_FILE_EXTENSION), so the worker is a small eval'd bootstrap that loads the .ts module
 * with tsx's own API.
 */
function runWorker(specs: JobSpec[], rounds: number): Promise<{ asyncResults: JobResult[][]; syncResults: JobResult[][] }> {
  const entry = new URL('./helpers/async-worker.ts', import.meta.url).href;
  const bootstrap = `import('tsx/esm/api').then((api) => api.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(import.meta.url)}))`;
  const worker = new Worker(bootstrap, { eval: true, workerData: { specs, rounds } });
  return new Promise((resolve, reject) => {
    let settled = false;
    worker.once('message', (m) => {
      settled = true;
      if (m.error) reject(new Error(`worker failed: ${m.error}`));
      else resolve(m);
    });
    worker.once('error', (e) => {
      settled = true;
      reject(e);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`worker exited with code ${code} before reporting`));
    });
  });
}

test('two worker_threads running layers concurrently produce the main thread results', async () => {
  const rounds = 3;
  const specsA = mixedSpecs(10, 123, true);
  const specsB = mixedSpecs(10, 456, true);
  const mainJobs = mixedSpecs(10, 789, true).map(buildJob);
  const mainWant = mainJobs.map((j) => resultOf(forwardSync(j)));

  // Workers and the main thread all run at once.
  const [a, b, mainGot] = await Promise.all([
    runWorker(specsA, rounds),
    runWorker(specsB, rounds),
    (async () => {
      const out: JobResult[][] = [];
      for (let r = 0; r < rounds; r++) out.push((await Promise.all(mainJobs.map(forwardAsync))).map(resultOf));
      return out;
    })(),
  ]);

  for (const [name, specs, res] of [['worker A', specsA, a], ['worker B', specsB, b]] as const) {
    const want = specs.map((s) => resultOf(forwardSync(buildJob(s))));
    assert.equal(res.asyncResults.length, rounds, `${name}: rounds`);
    for (let r = 0; r < rounds; r++) {
      res.asyncResults[r].forEach((got, k) => assertSameResult(got, want[k], `${name} round ${r} forwardAsync job ${k} (${specName(specs[k])})`));
      res.syncResults[r].forEach((got, k) => assertSameResult(got, want[k], `${name} round ${r} forward job ${k} (${specName(specs[k])})`));
    }
  }
  mainGot.forEach((round, r) => round.forEach((got, k) => assertSameResult(got, mainWant[k], `main round ${r} job ${k}`)));
});

test('the event loop keeps running during a long LSTM forwardAsync', async () => {
  const B = 32, I = 64, H = 256;
  const layer = new LSTM({ inputSize: I, units: H, seed: 5 });
  const r = rng(5);
  let T = 100;
  // Aim for a call of ~200 ms; lengthen the sequence if this machine is much faster.
  for (let attempt = 0; ; attempt++) {
    const x = Tensor.from(uniform32(r, B * T * I), [B, T, I]);
    let ticks = 0;
    let pending = true;
    const timer = setInterval(() => {
      if (pending) ticks++;
    }, 5);
    const t0 = performance.now();
    let result;
    try {
      const p = layer.forwardAsync(x);
      assert.ok(p instanceof Promise, 'forwardAsync returns a Promise');
      result = await p;
    } finally {
      pending = false;
      clearInterval(timer);
    }
    const ms = performance.now() - t0;
    assert.deepEqual(result.output.shape, [B, H]);
    if (ms < 100 && attempt < 4) {
      T *= 2;
      continue;
    }
    assert.ok(ms >= 50, `the forwardAsync took only ${ms.toFixed(1)} ms, too short to judge responsiveness`);
    assert.ok(ticks >= 1, `a 5 ms setInterval never ran during a ${ms.toFixed(1)} ms forwardAsync (T=${T}): the event loop was blocked`);
    console.log(`# ${ticks} timer ticks during a ${ms.toFixed(1)} ms forwardAsync (T=${T})`);
    break;
  }
});
