/**
 * Soak body: forward (sync and async) and training steps (forward training:true + backward + Adam)
 * on a few float32 layers, for a fixed count, checking that memory stops growing after a warm-up.
 * test/soak.test.ts runs a short version in a child process; `npm run soak` (scripts/soak.mjs) a
 * long one.
 *
 *   node --expose-gc --import tsx test/helpers/soak-body.ts --iterations N [--seconds S]
 *        [--warmup W] [--samples K] [--table]
 *
 * One iteration: for every layer — the layers concurrently, each layer's chain in order — a sync
 * inference forward, an inference forwardAsync, then a training step: forward(training) + backward
 * on even iterations, forwardAsync(training) + backwardAsync on odd ones, then Adam.step. After the
 * warm-up, process.memoryUsage() is sampled K times at even spacing, with gc() forced (twice, and
 * the event loop turned so that buffer finalizers run) before each sample.
 *
 * --seconds S: the warm-up is timed, and the measured part is sized to fill the remaining budget
 * (at least 1000 iterations); with --iterations too, N is then a cap.
 *
 * The check, for rss, heapUsed, external and arrayBuffers: growth = max(last quarter of the post-warm-up
 * samples) − max(first quarter) must stay within a bound (below). A steady leak of L bytes per
 * iteration makes growth ≳ L × (3/4) × P, P the post-warm-up iterations (max(first quarter) is about
 * the value at the end of that quarter, max(last quarter) at least the final value).
 *  - external, arrayBuffers: 8 MB. After gc() they count only live typed arrays — here the parameters,
 *    Adam's moments live in the JS heap — so they are flat to within a few hundred KB; 8 MB is far
 *    above that noise, and a leaked JS buffer of the smallest training workspace (SimpleRNN, 64 KiB)
 *    per iteration passes it within ~170 post-warm-up iterations.
 *  - heapUsed: 16 MB. After gc() the JS heap holds the layers, Adam's state and this loop's few
 *    live objects (~6 MB, flat to ±0.3 MB); 16 MB catches retained per-call objects (runs, results,
 *    promises) of ≥ ~10 KB per iteration in the short run, smaller ones in the long one.
 *  - rss: 32 MB. rss also moves with the V8 heap, glibc's per-thread malloc arenas (libuv and pool
 *    threads) and page reuse; after the warm-up it wanders by a few MB. A native leak of one
 *    workspace-sized buffer (≥ 64 KiB) per iteration passes 32 MB within ~670 post-warm-up iterations,
 *    so the short run (2500 measured iterations) would show it more than three times over.
 * A leak much smaller than a workspace (bytes per call, a handle) is below these bounds in a short
 * run; the long `npm run soak` (100k iterations: a 1 KiB-per-iteration leak adds ~75 MB) covers it.
 *
 * Prints the figures and `ok: …`, or throws (exit 1) naming the quantity that grew.
 */
import { Adam, GRU, LSTM, SimpleRNN, Tensor, mseLoss, type Recurrent } from '../../lib/index.js';
import { rng, uniform32 } from './compare.js';

// ---------------------------------------------------------------------------------------------
// Arguments

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
function numArg(name: string, min: number): number | undefined {
  const v = arg(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new RangeError(`--${name}: expected a number >= ${min}, got ${v}`);
  return n;
}

const gcFn = (globalThis as { gc?: () => void }).gc;
if (!gcFn) throw new Error('soak-body: run node with --expose-gc (gc() is forced before every sample)');
const gc: () => void = gcFn;

const seconds = numArg('seconds', 1);
const iterationsArg = numArg('iterations', 100);
if (iterationsArg === undefined && seconds === undefined) throw new Error('soak-body: give --iterations N or --seconds S');
const warmup = Math.floor(numArg('warmup', 10) ?? Math.min(1000, Math.max(200, Math.floor((iterationsArg ?? 6000) * 0.15))));
const sampleCount = Math.floor(numArg('samples', 8) ?? 40);
const printTable = process.argv.includes('--table');

const MB = 1 << 20;
const BOUND_MB = { rss: 32, heapUsed: 16, external: 8, arrayBuffers: 8 } as const;

// ---------------------------------------------------------------------------------------------
// Layers and data

const B = 8, T = 16, I = 16, H = 64;
interface Entry {
  name: string;
  layer: Recurrent;
  x: Tensor;
  target: Tensor;
  opt: Adam;
  workspaceBytes: number;
  loss: number;
}

function entry(name: string, layer: Recurrent, seed: number): Entry {
  const r = rng(seed);
  const x = Tensor.from(uniform32(r, B * T * I), [B, T, I]);
  const outShape = layer.returnSequences ? [B, T, layer.outputSize] : [B, layer.outputSize];
  const target = Tensor.from(uniform32(r, outShape.reduce((a, b) => a * b, 1)), outShape);
  const ws = layer.forward(x, { training: true }).run!.bytes;
  return { name, layer, x, target, opt: new Adam({ lr: 1e-3 }), workspaceBytes: ws, loss: NaN };
}

const entries: Entry[] = [
  entry('LSTMP', new LSTM({ inputSize: I, units: H, projSize: 32, returnSequences: true, seed: 11 }), 1),
  entry('LSTM', new LSTM({ inputSize: I, units: H, seed: 12 }), 2),
  entry('GRU', new GRU({ inputSize: I, units: H, seed: 13 }), 3),
  entry('SimpleRNN', new SimpleRNN({ inputSize: I, units: H, seed: 14 }), 4),
];

async function step(e: Entry, it: number): Promise<void> {
  const { layer, x } = e;
  layer.forward(x);
  await layer.forwardAsync(x);
  let params;
  if (it % 2 === 0) {
    const f = layer.forward(x, { training: true });
    const { loss, grad } = mseLoss(f.output, e.target);
    e.loss = loss;
    params = layer.backward(f.run!, grad).params;
  } else {
    const f = await layer.forwardAsync(x, { training: true });
    const { loss, grad } = mseLoss(f.output, e.target);
    e.loss = loss;
    params = (await layer.backwardAsync(f.run!, grad)).params;
  }
  e.opt.step(layer.stateDict(), params);
}

const iteration = (it: number) => Promise.all(entries.map((e) => step(e, it)));

// ---------------------------------------------------------------------------------------------
// Sampling

interface Sample {
  it: number;
  ms: number;
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

const turn = () => new Promise<void>((r) => setImmediate(r));
const t0 = performance.now();

async function sample(it: number): Promise<Sample> {
  gc();
  await turn();
  gc();
  await turn();
  const m = process.memoryUsage();
  return { it, ms: performance.now() - t0, rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

const start = await sample(0);
for (let it = 0; it < warmup; it++) await iteration(it);
const afterWarmup = await sample(warmup);
const warmupMs = afterWarmup.ms - start.ms;

// The measured part: fixed, or sized to the --seconds budget from the warm-up's pace.
const byIterations = iterationsArg !== undefined ? Math.max(sampleCount, iterationsArg - warmup) : Infinity;
const bySeconds = seconds !== undefined ? Math.max(1000, Math.floor(((seconds * 1000 - warmupMs) / warmupMs) * warmup)) : Infinity;
const post = Math.min(byIterations, bySeconds);
const total = warmup + post;
const samples: Sample[] = [afterWarmup];
let next = 1;
for (let it = warmup; it < total; it++) {
  await iteration(it);
  const done = it + 1 - warmup;
  if (done >= Math.round((next * post) / sampleCount)) {
    samples.push(await sample(it + 1));
    next++;
  }
  for (const e of entries) if (!Number.isFinite(e.loss)) throw new Error(`${e.name}: loss ${e.loss} at iteration ${it}`);
}
const end = samples[samples.length - 1];

// ---------------------------------------------------------------------------------------------
// Verdict

type Key = keyof typeof BOUND_MB;
const keys: Key[] = ['rss', 'heapUsed', 'external', 'arrayBuffers'];
const q = Math.max(1, Math.floor(samples.length / 4));
const maxOf = (s: Sample[], k: Key) => Math.max(...s.map((x) => x[k]));
const growth = Object.fromEntries(keys.map((k) => [k, (maxOf(samples.slice(-q), k) - maxOf(samples.slice(0, q), k)) / MB])) as Record<Key, number>;
/** Least-squares slope over the post-warm-up samples, in MB per 1000 iterations. */
function slope(k: Key): number {
  const n = samples.length;
  const mx = samples.reduce((a, s) => a + s.it, 0) / n, my = samples.reduce((a, s) => a + s[k], 0) / n;
  let sxy = 0, sxx = 0;
  for (const s of samples) {
    sxy += (s.it - mx) * (s[k] - my);
    sxx += (s.it - mx) ** 2;
  }
  return sxx > 0 ? ((sxy / sxx) * 1000) / MB : 0;
}

const mb = (b: number) => (b / MB).toFixed(1);
const signed = (x: number, d = 1) => `${x >= 0 ? '+' : ''}${x.toFixed(d)}`;
const elapsed = (end.ms - start.ms) / 1000;
console.log(
  `soak: ${entries.map((e) => e.name).join(', ')} (float32, batch ${B}, steps ${T}, input ${I}, units ${H}; training workspaces ` +
    `${entries.map((e) => `${(e.workspaceBytes / 1024).toFixed(0)}`).join('/')} KiB)`,
);
console.log(`  iterations: ${total} (${warmup} warm-up, ${post} measured, ${samples.length} samples) in ${elapsed.toFixed(1)} s, ${((elapsed * 1000) / total).toFixed(2)} ms each`);
for (const k of keys) {
  console.log(
    `  ${k.padEnd(12)} start ${mb(start[k]).padStart(7)} MB, after warm-up ${mb(afterWarmup[k]).padStart(7)} MB, end ${mb(end[k]).padStart(7)} MB; ` +
      `growth (last-quarter max − first-quarter max) ${signed(growth[k])} MB (bound ${BOUND_MB[k]}); slope ${signed(slope(k), 3)} MB/1000 it`,
  );
}
console.log(`  losses: ${entries.map((e) => `${e.name} ${e.loss.toPrecision(4)}`).join(', ')}`);
if (printTable) {
  console.log('\n  iteration   seconds   rss MB   heapUsed MB   external MB   arrayBuffers MB');
  for (const s of [start, ...samples]) {
    console.log(
      `  ${String(s.it).padStart(9)} ${(s.ms / 1000).toFixed(1).padStart(9)} ${mb(s.rss).padStart(8)} ${mb(s.heapUsed).padStart(13)} ` +
        `${mb(s.external).padStart(13)} ${mb(s.arrayBuffers).padStart(17)}`,
    );
  }
}

const over = keys.filter((k) => growth[k] > BOUND_MB[k]);
if (over.length) {
  throw new Error(
    `memory kept growing after the warm-up: ${over.map((k) => `${k} ${signed(growth[k])} MB > ${BOUND_MB[k]} MB (slope ${signed(slope(k), 3)} MB/1000 it)`).join('; ')}`,
  );
}
console.log(
  `ok: ${total} iterations (${warmup} warm-up); rss ${mb(start.rss)} → ${mb(afterWarmup.rss)} → ${mb(end.rss)} MB ` +
    `(${signed(growth.rss)} MB after warm-up, ${signed(slope('rss'), 3)} MB/1000 it); external ${mb(afterWarmup.external)} → ${mb(end.external)} MB ` +
    `(${signed(growth.external, 2)}); arrayBuffers ${mb(afterWarmup.arrayBuffers)} → ${mb(end.arrayBuffers)} MB (${signed(growth.arrayBuffers, 2)}); ` +
    `heapUsed ${signed(growth.heapUsed, 2)} MB; bounds rss ${BOUND_MB.rss}, heapUsed ${BOUND_MB.heapUsed}, external ${BOUND_MB.external}, ` +
    `arrayBuffers ${BOUND_MB.arrayBuffers} MB; ${elapsed.toFixed(1)} s`,
);
