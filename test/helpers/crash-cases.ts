/**
 * Child-process bodies for test/crashes.test.ts: each case is one way the process could be crashed
 * (a native bug found by probing, a hostile argument, a thread or shutdown hazard). It runs here, in
 * its own process, so that a regression shows as one failed test with the signal instead of a dead
 * test runner. A case prints `ok: <what it saw>` and exits 0; anything else is a failure.
 *
 *   node --import tsx test/helpers/crash-cases.ts <case>
 *
 * Set RNNKIT_ADDON to run the cases against another build (scripts/sanitize.mjs does, for ASan and
 * TSan); RNNKIT_RACE_ITERATIONS scales the pool-race case and RNNKIT_CONCURRENCY_SCALE (default 1)
 * the long calls of the others.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import { GRU, LSTM, SimpleRNN, Tensor, setNumThreads, type Recurrent } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { rng, uniform32 } from './compare.js';

type Case = () => Promise<string> | string;

const ok = (what: string) => what;
// Below 1 under the sanitizers (scripts/sanitize.mjs), which make every call several times slower.
const scale = Number(process.env.RNNKIT_CONCURRENCY_SCALE ?? 1);

function input(B: number, T: number, I: number, seed = 1): Tensor {
  return Tensor.from(uniform32(rng(seed), B * T * I), [B, T, I]);
}

/** One training forward and backward of one step; returns the largest |gradient| (finite). */
function trainOneStep(layer: Recurrent, B: number, I: number): number {
  const out = layer.forward(input(B, 1, I), { training: true });
  const dOut = Tensor.from(new Float32Array(out.output.size).fill(1), out.output.shape);
  const g = layer.backward(out.run!, dOut);
  let worst = 0;
  for (const t of Object.values(g.params)) for (const v of t.data) worst = Math.max(worst, Math.abs(v));
  if (!Number.isFinite(worst)) throw new Error(`non-finite gradient ${worst}`);
  return worst;
}

function sameBits(a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

/** An ArrayBuffer that JavaScript can shrink (Node 20: resizable ArrayBuffers). */
function resizable(bytes: number): ArrayBuffer & { resize(n: number): void } {
  const Ctor = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void };
  return new Ctor(bytes, { maxByteLength: bytes });
}

/** The raw native surface: a float LSTM forward's buffers (x backed by `xBuffer` when given). */
function rawLstm(xBuffer?: ArrayBuffer) {
  const T = 20, B = 8, I = 16, H = 64;
  const cfg = { cell: 'lstm', steps: T, batch: B, inputSize: I, hiddenSize: H } as const;
  const x = xBuffer ? new Float32Array(xBuffer) : new Float32Array(T * B * I);
  x.fill(0.25);
  return { cfg, x, weightIh: new Float32Array(4 * H * I).fill(0.01), weightHh: new Float32Array(4 * H * H).fill(0.01), y: new Float32Array(T * B * H) };
}

function expectError(fn: () => unknown, kinds: (new (...a: never[]) => Error)[], pattern: RegExp): string {
  try {
    fn();
  } catch (e) {
    if (!kinds.some((k) => e instanceof k) || !pattern.test((e as Error).message)) {
      throw new Error(`wrong error: ${(e as Error)?.name}: ${(e as Error)?.message}`);
    }
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
  throw new Error('no error was thrown');
}

/** The addon file lib/native.ts loads (for plain-JavaScript worker bodies). */
function addonPath(): string {
  if (process.env.RNNKIT_ADDON) return path.resolve(process.env.RNNKIT_ADDON);
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  return (createRequire(import.meta.url)('node-gyp-build') as { resolve(dir: string): string }).resolve(root);
}

/** Runs a worker that starts a long forwardAsync and then ends (exit) or is ended (terminate). */
async function workerEndsMidCall(how: 'exit' | 'terminate'): Promise<string> {
  const body = `
    const { parentPort } = require('node:worker_threads');
    const native = require(${JSON.stringify(addonPath())});
    const T = ${Math.max(20, Math.round(400 * scale))}, B = 64, I = 64, H = 256;
    const cfg = { cell: 'lstm', steps: T, batch: B, inputSize: I, hiddenSize: H };
    const bufs = { x: new Float32Array(T * B * I).fill(0.1), weightIh: new Float32Array(4 * H * I).fill(0.01),
                   weightHh: new Float32Array(4 * H * H).fill(0.01), y: new Float32Array(T * B * H) };
    const pending = [native.forwardAsync(cfg, bufs), native.forwardAsync(cfg, { ...bufs, y: new Float32Array(T * B * H) })];
    parentPort.postMessage('started');
    if (${JSON.stringify(how)} === 'exit') setTimeout(() => process.exit(0), 5);
  `;
  let ended = 0;
  for (let round = 0; round < 4; round++) {
    const w = new Worker(body, { eval: true });
    await new Promise<void>((resolve, reject) => {
      w.on('message', () => {
        if (how === 'terminate') setTimeout(() => void w.terminate(), 5 + round * 10);
      });
      w.on('error', reject);
      w.on('exit', () => resolve());
    });
    ended++;
  }
  // Give the thread-pool work that outlived its environment time to finish, then prove the process
  // (and the native pool) still works.
  await new Promise((r) => setTimeout(r, 400));
  const layer = new LSTM({ inputSize: 4, units: 8, seed: 1 });
  const y = await layer.forwardAsync(input(2, 3, 4));
  return ok(`${ended} workers ended mid-call (${how}); the process runs on (output ${y.output.shape.join('x')})`);
}

const cases: Record<string, Case> = {
  // Finding 1: backward built GRU's R_n block for every cell, reading past the end of W_hh.
  'backward-oob-simple-rnn': () => {
    const layer = new SimpleRNN({ inputSize: 1, units: 8192, recurrentInitializer: 'zeros', seed: 1 });
    return ok(`SimpleRNN(8192) backward, max |grad| ${trainOneStep(layer, 1, 1)}`);
  },
  'backward-oob-lstm-projection': () => {
    const layer = new LSTM({ inputSize: 1, units: 2048, projSize: 1, seed: 1 });
    return ok(`LSTM(2048, projSize 1) backward, max |grad| ${trainOneStep(layer, 1, 1)}`);
  },
  // The same at small sizes: silent in a plain build, an ASan report in the sanitizer build.
  'backward-oob-small': () => {
    let n = 0;
    for (const units of [3, 8, 33, 64]) {
      trainOneStep(new SimpleRNN({ inputSize: 2, units, seed: units }), 2, 2);
      trainOneStep(new LSTM({ inputSize: 2, units, projSize: 1, seed: units }), 2, 2);
      trainOneStep(new LSTM({ inputSize: 2, units, projSize: Math.max(1, units >> 1), seed: units }), 2, 2);
      trainOneStep(new GRU({ inputSize: 2, units, resetAfter: false, seed: units }), 2, 2);
      n += 4;
    }
    return ok(`${n} small layers trained one step`);
  },

  // Finding 2: more pool threads than cores; a late worker took a part of the next job.
  'pool-race': () => {
    const iterations = Number(process.env.RNNKIT_RACE_ITERATIONS ?? 3000);
    const layer = new LSTM({ inputSize: 32, units: 256, projSize: 64, returnSequences: true, seed: 3 });
    const x = input(8, 50, 32, 5);
    setNumThreads(1);
    const reference = layer.forward(x).output.data.slice();
    let checked = 0;
    for (const threads of [4, 3, 8]) {
      setNumThreads(threads);
      for (let k = 0; k < iterations / 3; k++) {
        const y = layer.forward(x).output.data;
        const at = sameBits(y, reference);
        if (at >= 0) throw new Error(`threads=${threads}, iteration ${k}: output differs at ${at}: ${y[at]} vs ${reference[at]}`);
        checked++;
      }
    }
    return ok(`${checked} forwards with 3–8 pool threads on ${os.availableParallelism()} cores, all bit-identical to 1 thread`);
  },

  // Finding 3: a worker_thread ending during an async call aborted the process in OnOK.
  'worker-exit-mid-call': () => workerEndsMidCall('exit'),
  'worker-terminate-mid-call': () => workerEndsMidCall('terminate'),

  // Finding 4: thread creation failure (run under a thread limit by the test) aborted the process.
  'thread-limit': () => {
    // The default pool is created lazily here (orthogonal initialisation runs on it).
    const layer = new LSTM({ inputSize: 8, units: 64, seed: 1 });
    const before = layer.forward(input(4, 10, 8)).output.data.slice();
    const message = expectError(() => setNumThreads(512), [Error], /refused to start more threads; the pool keeps running with \d+/);
    const after = layer.forward(input(4, 10, 8)).output.data;
    if (sameBits(after, before) >= 0) throw new Error('outputs changed after the failed setNumThreads');
    return ok(message);
  },

  // Finding 7: setNumThreads waited for the running call's pool work (blocking the event loop).
  'set-num-threads-never-waits': async () => {
    // One input projection of ~34 GFLOP: a single parallel_for that holds the pool for a long time.
    const B = 4096, I = 1024, H = 1024;
    const cfg = { cell: 'lstm', steps: 1, batch: B, inputSize: I, hiddenSize: H } as const;
    const bufs = { x: new Float32Array(B * I).fill(0.01), weightIh: new Float32Array(4 * H * I).fill(0.001), weightHh: new Float32Array(4 * H * H), y: new Float32Array(B * H) };
    native.setNumThreads(2);
    const reference = new Float32Array(B * H);
    native.forward(cfg, { ...bufs, y: reference });
    let settled = false;
    const call = native.forwardAsync(cfg, bufs).then(() => { settled = true; });
    const answers: string[] = [];
    let longest = 0;
    for (let k = 0; !settled; k++) {
      const t0 = performance.now();
      // Never 1: with one thread the call would run inline and not hold the pool at all. Until the
      // call holds the pool, ask for the count it already has (an applied change restarts the
      // threads, and a call reaching the pool during that restart runs inline instead); then
      // alternate, so that real changes are deferred too.
      const deferredYet = answers.includes('deferred');
      answers.push(native.setNumThreads(deferredYet && k % 2 === 1 ? 3 : 2));
      longest = Math.max(longest, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 2));
    }
    await call;
    const deferred = answers.filter((a) => a === 'deferred').length;
    if (deferred === 0) throw new Error(`setNumThreads never deferred in ${answers.length} calls during the async call: ${answers.join(',')}`);
    if (sameBits(bufs.y, reference) >= 0) throw new Error('the async result changed');
    // The deferred count is applied by the next call that takes the pool.
    native.setNumThreads(2);
    native.forward(cfg, { ...bufs, y: new Float32Array(B * H) });
    if (native.getNumThreads() !== 2) throw new Error(`getNumThreads() = ${native.getNumThreads()}, expected 2`);
    return ok(`${deferred} of ${answers.length} setNumThreads calls during a long forwardAsync were deferred; longest call ${longest.toFixed(2)} ms`);
  },

  // Found by the concurrency suite: the pool's threads outlived an addon that only a worker had
  // loaded (unmapped when the worker ended: SIGSEGV in the pool).
  'worker-only-loads-addon': async () => {
    for (let round = 0; round < 3; round++) {
      const w = new Worker(`require(${JSON.stringify(addonPath())}).setNumThreads(${2 + round})`, { eval: true });
      await new Promise<void>((resolve, reject) => { w.on('error', reject); w.on('exit', () => resolve()); });
      await new Promise((r) => setTimeout(r, 100));
    }
    return ok('3 workers loaded the addon, started its pool and ended; the process runs on');
  },
  // Found by the concurrency suite: weight gradients changed in the last bits with the pool size
  // (BLAS was given one row block per thread).
  'gradients-independent-of-threads': () => {
    const layers = [
      new SimpleRNN({ inputSize: 64, units: 32, seed: 1 }),
      new LSTM({ inputSize: 24, units: 72, seed: 2 }),
      new GRU({ inputSize: 24, units: 40, resetAfter: false, seed: 3, dtype: 'float64' }),
    ];
    let compared = 0;
    for (const layer of layers) {
      const f64 = layer.dtype === 'float64';
      const x = Tensor.from(f64 ? Float64Array.from({ length: 16 * 30 * layer.inputSize }, (_, k) => Math.sin(k)) : Float32Array.from({ length: 16 * 30 * layer.inputSize }, (_, k) => Math.sin(k)), [16, 30, layer.inputSize]);
      const run = layer.forward(x, { training: true }).run!;
      const n = 16 * layer.units;
      const dy = Tensor.from(f64 ? Float64Array.from({ length: n }, (_, k) => Math.cos(k)) : Float32Array.from({ length: n }, (_, k) => Math.cos(k)), [16, layer.units]);
      setNumThreads(1);
      const reference = layer.backward(run, dy);
      for (const threads of [2, 3, 8]) {
        setNumThreads(threads);
        const g = layer.backward(run, dy);
        for (const [name, t] of Object.entries(g.params)) {
          const at = sameBits(t.data, reference.params[name].data);
          if (at >= 0) throw new Error(`${layer.className} ${name}: ${threads} threads differ from 1 at ${at}`);
          compared++;
        }
        if (sameBits(g.input.data, reference.input.data) >= 0) throw new Error(`${layer.className} dx: ${threads} threads differ`);
      }
    }
    return ok(`${compared} gradients bit-identical with 1, 2, 3 and 8 threads`);
  },

  // Finding 5: a getter on a later key shrank or transferred an already-checked buffer.
  'getter-resizes-checked-buffer': async () => {
    const msgs: string[] = [];
    for (const sync of [true, false]) {
      const ab = resizable(20 * 8 * 16 * 4);
      const b = rawLstm(ab);
      const buffers = {
        x: b.x,
        get weightIh() {
          ab.resize(0);
          return b.weightIh;
        },
        weightHh: b.weightHh,
        y: b.y,
      };
      if (sync) {
        msgs.push(expectError(() => native.forward(b.cfg, buffers), [RangeError, TypeError], /^x: /));
      } else {
        const e = await native.forwardAsync(b.cfg, buffers).then(() => null, (err: Error) => err);
        if (!(e instanceof RangeError || e instanceof TypeError) || !/^x: /.test(e.message)) throw new Error(`async: ${String(e)}`);
        msgs.push(`async ${e.name}: ${e.message}`);
      }
    }
    return ok(msgs.join('; '));
  },
  'getter-transfers-checked-buffer': () => {
    const b = rawLstm();
    const buffers = {
      x: b.x,
      weightIh: b.weightIh,
      get weightHh() {
        structuredClone(b.x.buffer, { transfer: [b.x.buffer] });
        return b.weightHh;
      },
      y: b.y,
    };
    const gc = (globalThis as { gc?: () => void }).gc;
    const message = expectError(() => native.forward(b.cfg, buffers), [TypeError, RangeError], /^x: /);
    gc?.();
    return ok(message);
  },

  // Finding 7: NaN propagates through ReLU and through fast exp (UBSan: shift of a negative value).
  'nan-propagates': () => {
    const x = Tensor.from(new Float32Array([NaN, 0.5, 0.25, -1]), [1, 2, 2]);
    const relu = new SimpleRNN({ inputSize: 2, units: 3, activation: 'relu', returnSequences: true, seed: 1 });
    const lstm = new LSTM({ inputSize: 2, units: 3, returnSequences: true, seed: 1 });
    const gru = new GRU({ inputSize: 2, units: 3, returnSequences: true, seed: 1 });
    for (const [name, layer] of [['SimpleRNN relu', relu], ['LSTM', lstm], ['GRU', gru]] as const) {
      const y = layer.forward(x).output.data;
      if (!Array.from(y).every(Number.isNaN)) throw new Error(`${name}: NaN input gave ${Array.from(y).join(', ')}`);
    }
    return ok('NaN in → NaN out for relu SimpleRNN, LSTM and GRU');
  },
  // Finding 7: training memory is checked before allocating (was: OOM-killed without a message).
  'training-memory-limit': () => {
    const layer = new LSTM({ inputSize: 1, units: 512, seed: 1 });
    const x = Tensor.from(new Float32Array(1_000_000), [1, 1_000_000, 1]);
    const message = expectError(() => layer.forward(x, { training: true }), [RangeError], /needs .*GiB.*setMaxTrainingBytes/);
    // Inference keeps O(batch·units) state: steps·batch·4·units ≥ 2^31 is no longer refused (the
    // call below gets as far as checking x, then runs a shorter sequence).
    const steps = 1_100_000;
    const cfg = { cell: 'lstm', steps, batch: 1, inputSize: 1, hiddenSize: 512 } as const;
    const w = { weightIh: new Float32Array(4 * 512), weightHh: new Float32Array(4 * 512 * 512) };
    const longMessage = expectError(() => native.forward(cfg, { x: new Float32Array(1), ...w }), [RangeError], /^x: expected 1100000 elements/);
    const shorter = Math.max(200, Math.round(20_000 * scale));
    const y = layer.forward(Tensor.from(new Float32Array(shorter), [1, shorter, 1]));
    return ok(`${message} | inference with steps = ${steps}: ${longMessage} | inference output ${y.output.shape.join('x')}`);
  },
};


const name = process.argv[2];
const run = cases[name];
if (!run) {
  console.error(`unknown case '${name}'; cases: ${Object.keys(cases).join(', ')}`);
  process.exit(2);
}
console.log(`ok: ${await run()}`);
