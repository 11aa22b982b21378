/**
 * Child-process bodies for test/concurrency.test.ts: stress scenarios for the native thread pool and
 * the Promise forms (forwardAsync / backwardAsync on the libuv pool). Every result is compared bit
 * for bit with the same job run sequentially, synchronously, with one pool thread, first. A scenario
 * prints `ok: <figures>` and exits 0 (by itself: the event loop drains); anything else is a failure.
 *
 *   node --import tsx test/helpers/concurrency-body.ts <scenario>
 *
 * Scenarios:
 *   many-calls      thousands of concurrent forwardAsync / backwardAsync calls (families, dtypes,
 *                   shapes mixed; every fourth job large enough for the pool to split it), with
 *                   more pool threads than cores;
 *   resize-inflight setNumThreads changed over and over while async work is in flight; prints the
 *                   longest setNumThreads call and the event-loop delay (p99, max) — not asserted;
 *   workers         several worker_threads each running many async and sync calls at once (the
 *                   main thread too); their results are posted back and compared;
 *   workers-ending  workers that process.exit() or are terminate()d while their calls are in flight,
 *                   round after round, while the main thread runs its own async calls; results that
 *                   made it back from a dying worker are checked too.
 *
 * Environment: RNNKIT_CONCURRENCY_SCALE (default 1) scales the counts (calls, rounds, jobs) — e.g.
 * 0.1 for the ThreadSanitizer build; RNNKIT_ADDON (lib/native.ts) selects the build.
 *
 * The same file is the worker_threads body (when !isMainThread): see workerMain below.
 */
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import { getNumThreads, setNumThreads, type Gradients } from '../../lib/index.js';
import { buildJob, mixedSpecs, resultOf, type Job, type JobResult, type JobSpec } from './async-jobs.js';
import { assertBitIdentical, type FloatArray } from './compare.js';

// ---------------------------------------------------------------------------------------------
// Jobs and their results

const SCALE = (() => {
  const s = Number(process.env.RNNKIT_CONCURRENCY_SCALE ?? 1);
  if (!Number.isFinite(s) || s <= 0) throw new Error(`RNNKIT_CONCURRENCY_SCALE must be a positive number, got ${process.env.RNNKIT_CONCURRENCY_SCALE}`);
  return s;
})();
const scaled = (n: number, min = 1) => Math.max(min, Math.round(n * SCALE));

const CORES = os.availableParallelism();
/** More pool threads than cores (4 and 8 on a 2-core machine). */
const OVERSUBSCRIBED = [Math.max(4, 2 * CORES), Math.max(8, 4 * CORES)].map((n) => Math.min(n, 256));

/** Plain-array gradients (structured-clonable). */
interface GradResult {
  input: FloatArray;
  initialState: FloatArray[];
  params: Record<string, FloatArray>;
}

/** An inference forward, or a training forward plus backward (two native calls). */
interface Outcome {
  forward: JobResult;
  grads?: GradResult;
}

type Mode = 'infer' | 'train';
const callsOf = (mode: Mode) => (mode === 'train' ? 2 : 1);

function gradOf(g: Gradients): GradResult {
  return {
    input: g.input.data,
    initialState: g.initialState.map((t) => t.data),
    params: Object.fromEntries(Object.entries(g.params).map(([k, t]) => [k, t.data])),
  };
}

function runSync(j: Job, mode: Mode): Outcome {
  if (mode === 'infer') return { forward: resultOf(j.layer.forward(j.x, { initialState: j.initialState })) };
  const f = j.layer.forward(j.x, { initialState: j.initialState, training: true });
  return { forward: resultOf(f), grads: gradOf(j.layer.backward(f.run!, j.dOutput, { dStates: j.dStates })) };
}

async function runAsync(j: Job, mode: Mode): Promise<Outcome> {
  if (mode === 'infer') return { forward: resultOf(await j.layer.forwardAsync(j.x, { initialState: j.initialState })) };
  const f = await j.layer.forwardAsync(j.x, { initialState: j.initialState, training: true });
  return { forward: resultOf(f), grads: gradOf(await j.layer.backwardAsync(f.run!, j.dOutput, { dStates: j.dStates })) };
}

function specName(s: JobSpec): string {
  return `${s.family} ${s.dtype} B=${s.B} T=${s.T} I=${s.I} H=${s.H} seq=${s.returnSequences} back=${s.goBackwards} init=${s.initialState} seed=${s.seed}`;
}

/** Throws (an AssertionError naming the first differing element) unless got equals want bit for bit. */
function assertSameOutcome(got: Outcome, want: Outcome, label: string): void {
  assertBitIdentical(got.forward.output, want.forward.output, `${label}: output`);
  if (got.forward.states.length !== want.forward.states.length) throw new Error(`${label}: ${got.forward.states.length} states, want ${want.forward.states.length}`);
  got.forward.states.forEach((s, i) => assertBitIdentical(s, want.forward.states[i], `${label}: states[${i}]`));
  if (!want.grads) return;
  if (!got.grads) throw new Error(`${label}: no gradients`);
  const g = got.grads, w = want.grads;
  assertBitIdentical(g.input, w.input, `${label}: dL/dinput`);
  if (g.initialState.length !== w.initialState.length) throw new Error(`${label}: ${g.initialState.length} initial-state gradients, want ${w.initialState.length}`);
  g.initialState.forEach((d, i) => assertBitIdentical(d, w.initialState[i], `${label}: dL/dinitialState[${i}]`));
  const gk = Object.keys(g.params).sort().join(','), wk = Object.keys(w.params).sort().join(',');
  if (gk !== wk) throw new Error(`${label}: gradient keys ${gk}, want ${wk}`);
  for (const k of Object.keys(w.params)) assertBitIdentical(g.params[k], w.params[k], `${label}: dL/d${k}`);
}

/**
 * Collects mismatches instead of stopping at the first, so a failing scenario still runs to the end
 * and reports how many results differed, in which quantities, and its figures.
 */
class Checker {
  checked = 0;
  readonly failures: string[] = [];

  same(got: Outcome, want: Outcome, label: string): void {
    this.checked++;
    try {
      assertSameOutcome(got, want, label);
    } catch (e) {
      this.failures.push(e instanceof Error ? e.message : String(e));
    }
  }

  /** Throws a summary (count, the quantities that differed, the first few messages) if anything differed. */
  done(figures: string): string {
    if (this.failures.length === 0) return figures;
    const tally = new Map<string, number>();
    for (const f of this.failures) {
      const what = /: (output|states\[\d\]|dL\/d[\w[\]]+|\d+ states|no gradients|gradient keys)[:,]/.exec(f)?.[1] ?? 'other';
      tally.set(what, (tally.get(what) ?? 0) + 1);
    }
    throw new Error(
      `${this.failures.length} of ${this.checked} results are not bit-identical to the 1-thread sequential reference ` +
        `(first difference in: ${[...tally].map(([k, v]) => `${k} ×${v}`).join(', ')})\n` +
        this.failures.slice(0, 6).map((f) => `  - ${f.split('\n')[0]}`).join('\n') +
        `\nfigures: ${figures}`,
    );
  }
}

/** Reference outcomes: every job, both modes, sequential sync calls with one pool thread. */
interface Reference {
  infer: Outcome;
  train: Outcome;
}

function references(specs: JobSpec[]): Reference[] {
  const before = getNumThreads();
  setNumThreads(1);
  try {
    return specs.map((s) => {
      const j = buildJob(s);
      return { infer: runSync(j, 'infer'), train: runSync(j, 'train') };
    });
  } finally {
    setNumThreads(before);
  }
}

/** A few LSTM / GRU jobs long enough (~5–30 ms) to hold the pool while other calls come and go. */
function longSpecs(seed: number, count = 3): JobSpec[] {
  const families = ['lstm', 'gru_after', 'lstm', 'gru_before'] as const;
  return Array.from({ length: count }, (_, k) => ({
    family: families[k % families.length],
    B: 16,
    T: 40 + 10 * k,
    I: 32,
    H: 128,
    dtype: 'float32' as const,
    returnSequences: k % 2 === 0,
    goBackwards: k % 3 === 1,
    initialState: k % 2 === 1,
    seed: seed * 1000 + 900 + k,
  }));
}

const large = (s: JobSpec) => s.B * s.H >= 16 * 72;
const tick = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Rejects with `what` when p has not settled within ms (so a hang names itself). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms (hang?)`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// Workers: this same file, loaded with tsx's API from a small eval'd bootstrap (Node 20 workers do
// not inherit `--import tsx` reliably; see test/async.test.ts).

type WorkerTask =
  | { kind: 'run'; specs: JobSpec[]; rounds: number; flipThreads: number[] }
  | { kind: 'die'; specs: JobSpec[]; how: 'exit' | 'terminate'; exitDelay: number };

/** Per round, per job: the async and the sync outcome of both modes. */
interface RunReport {
  rounds: { asyncInfer: Outcome; asyncTrain: Outcome; syncInfer: Outcome; syncTrain: Outcome }[][];
  calls: number;
}

type WorkerMessage =
  | { type: 'started'; expected: number }
  | { type: 'result'; job: number; mode: Mode; outcome: Outcome }
  | { type: 'report'; report: RunReport }
  | { type: 'error'; error: string };

function startWorker(task: WorkerTask): Worker {
  const entry = import.meta.url;
  const bootstrap = `import('tsx/esm/api').then((api) => api.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)}))`;
  return new Worker(bootstrap, { eval: true, workerData: task });
}

async function workerMain(task: WorkerTask): Promise<void> {
  const post = (m: WorkerMessage) => parentPort!.postMessage(m);
  try {
    const jobs = task.specs.map(buildJob);
    if (task.kind === 'run') {
      const rounds: RunReport['rounds'] = [];
      let calls = 0;
      for (let r = 0; r < task.rounds; r++) {
        if (task.flipThreads.length) setNumThreads(task.flipThreads[r % task.flipThreads.length]);
        // All async calls at once; the sync ones run on this thread while those are in flight.
        const pending = jobs.map((j) => Promise.all([runAsync(j, 'infer'), runAsync(j, 'train')]));
        const sync = jobs.map((j) => [runSync(j, 'infer'), runSync(j, 'train')] as const);
        const done = await Promise.all(pending);
        rounds.push(jobs.map((_, k) => ({ asyncInfer: done[k][0], asyncTrain: done[k][1], syncInfer: sync[k][0], syncTrain: sync[k][1] })));
        calls += jobs.length * 6;
      }
      post({ type: 'report', report: { rounds, calls } });
    } else {
      // Every job in both modes, all in flight at once; each result is posted as it arrives.
      let first = true;
      const launch = (k: number, mode: Mode) =>
        runAsync(jobs[k], mode).then((outcome) => {
          post({ type: 'result', job: k, mode, outcome });
          if (first && task.how === 'exit' && task.exitDelay < 0) process.exit(0); // exit from a continuation
          first = false;
        });
      for (let k = 0; k < jobs.length; k++) {
        void launch(k, 'train');
        void launch(k, 'infer');
      }
      post({ type: 'started', expected: 2 * jobs.length });
      if (task.how === 'exit') {
        if (task.exitDelay === 0) process.exit(0); // right after launching
        else if (task.exitDelay > 0) setTimeout(() => process.exit(0), task.exitDelay);
      }
    }
  } catch (e) {
    post({ type: 'error', error: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e) });
  }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

type Scenario = () => Promise<string>;

/** Calls the ops (job index, mode) all at once; checks every outcome. Returns the native calls made. */
async function concurrentCheck(check: Checker, jobs: Job[], refs: Reference[], ops: [number, Mode][], label: string): Promise<number> {
  const outcomes = await Promise.all(ops.map(([k, mode]) => runAsync(jobs[k], mode)));
  outcomes.forEach((o, i) => {
    const [k, mode] = ops[i];
    check.same(o, refs[k][mode], `${label}, call ${i}: ${mode} ${specName(jobs[k].spec)}`);
  });
  return ops.reduce((n, [, mode]) => n + callsOf(mode), 0);
}

const libuvPool = () => process.env.UV_THREADPOOL_SIZE ?? '4';

const scenarios: Record<string, Scenario> = {
  'many-calls': async () => {
    const check = new Checker();
    const target = scaled(2000, 20);
    const specs = mixedSpecs(scaled(400, 10), 2024, true);
    const refs = references(specs);
    const jobs = specs.map(buildJob);
    // The op list: job i % S; every third op a training forward + backward (two calls).
    const ops: [number, Mode][] = [];
    for (let n = 0, i = 0; n < target; i++) {
      const mode: Mode = i % 3 === 2 ? 'train' : 'infer';
      ops.push([i % specs.length, mode]);
      n += callsOf(mode);
    }
    let calls = 0;
    const t0 = performance.now();
    for (const threads of OVERSUBSCRIBED) {
      setNumThreads(threads);
      if (getNumThreads() !== threads) throw new Error(`getNumThreads() = ${getNumThreads()} after setNumThreads(${threads})`);
      calls += await within(concurrentCheck(check, jobs, refs, ops, `${threads} pool threads`), 120_000, `${threads} pool threads`);
    }
    const ms = performance.now() - t0;
    return check.done(
      `many-calls: ${calls} calls (${ops.length} concurrent ops per setting, ${OVERSUBSCRIBED.join(' and ')} pool threads on ` +
        `${CORES} cores, libuv pool ${libuvPool()}) over ${specs.length} jobs (${specs.filter(large).length} large, ` +
        `${specs.filter((s) => s.dtype === 'float64').length} float64): ${check.checked} results checked bit for bit against sequential ` +
        `1-thread sync calls; ${ms.toFixed(0)} ms`,
    );
  },

  'resize-inflight': async () => {
    const check = new Checker();
    const cycle = [1, 2, 3, 4, 8, 1, 6, 2, 16, 5, 3, 12, 1, 7, 4];
    const counts = [...new Set(cycle)].sort((a, b) => a - b);
    const specs = [...mixedSpecs(scaled(120, 10), 77, true), ...longSpecs(77, 3)];
    const refs = references(specs);
    const jobs = specs.map(buildJob);
    // First, with nothing in flight: each thread count of the cycle, sync, gives the 1-thread result
    // (deterministic; a failure here is a split-dependence, not a race).
    for (const n of counts) {
      setNumThreads(n);
      jobs.forEach((j, k) => {
        if (k % 7 === 0 || k >= jobs.length - 3) check.same(runSync(j, 'train'), refs[k].train, `sync at ${n} threads, nothing in flight: train ${specName(specs[k])}`);
      });
    }
    const waves = scaled(8, 2);
    let pending = 0;
    let sets = 0, setsInFlight = 0, maxSetMs = 0, c = 0;
    const setNext = () => {
      const n = cycle[c++ % cycle.length];
      const t = performance.now();
      setNumThreads(n);
      const dt = performance.now() - t;
      if (getNumThreads() !== n) throw new Error(`getNumThreads() = ${getNumThreads()} right after setNumThreads(${n}) (the requested count)`);
      maxSetMs = Math.max(maxSetMs, dt);
      sets++;
      if (pending > 0) setsInFlight++;
    };
    const eld = monitorEventLoopDelay({ resolution: 1 });
    eld.enable();
    let done = false;
    // A changer between event-loop turns, independent of the launches below.
    const changer = (async () => {
      while (!done) {
        setNext();
        await sleep(c % 4 === 0 ? 1 : 0);
      }
    })();
    let calls = 0, syncCalls = 0;
    const t0 = performance.now();
    for (let w = 0; w < waves; w++) {
      const launched: Promise<void>[] = [];
      for (let k = 0; k < jobs.length; k++) {
        const mode: Mode = (k + w) % 2 === 0 ? 'infer' : 'train';
        pending++;
        launched.push(
          runAsync(jobs[k], mode).then((o) => {
            pending--;
            check.same(o, refs[k][mode], `wave ${w}, in flight: ${mode} ${specName(specs[k])}`);
          }),
        );
        calls += callsOf(mode);
        // Changes in the middle of the launches too, and now and then a sync call on this thread
        // (which takes the pool when it is free, applying a deferred change).
        if (k % 5 === 0) setNext();
        if (k % 17 === 0) {
          check.same(runSync(jobs[k], 'infer'), refs[k].infer, `wave ${w}, in flight: sync infer ${specName(specs[k])}`);
          syncCalls++;
        }
        if (k % 10 === 9) await tick();
      }
      await within(Promise.all(launched), 120_000, `wave ${w}`);
    }
    done = true;
    await changer;
    eld.disable();
    const ms = performance.now() - t0;
    // Afterwards the pool takes a change at once and still computes the same.
    for (const n of [1, OVERSUBSCRIBED[0]]) {
      setNumThreads(n);
      calls += await concurrentCheck(check, jobs, refs, jobs.map((_, k) => [k, 'train'] as [number, Mode]), `after, ${n} threads`);
    }
    const p99 = eld.percentile(99) / 1e6, max = eld.max / 1e6;
    return check.done(
      `resize-inflight: ${calls} async calls + ${syncCalls} sync calls in ${waves} waves over ${specs.length} jobs ` +
        `(${specs.filter(large).length} large), ${sets} setNumThreads calls (${setsInFlight} with work in flight, n in ` +
        `${counts.join(',')}) on ${CORES} cores: ${check.checked} results checked bit for bit; ` +
        `longest setNumThreads ${maxSetMs.toFixed(3)} ms; event-loop delay p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms; ${ms.toFixed(0)} ms`,
    );
  },

  workers: async () => {
    const check = new Checker();
    const nWorkers = 4;
    const rounds = scaled(3, 1);
    const perWorker = scaled(40, 6);
    const workerSpecs = Array.from({ length: nWorkers }, (_, w) => [...mixedSpecs(perWorker, 500 + w, true), ...longSpecs(500 + w, 1)]);
    const mainSpecs = mixedSpecs(perWorker, 499, true);
    const workerRefs = workerSpecs.map(references);
    const mainRefs = references(mainSpecs);
    const mainJobs = mainSpecs.map(buildJob);
    setNumThreads(OVERSUBSCRIBED[0]);
    const flips = [3, 1, 8, 2];
    const t0 = performance.now();
    const reports = workerSpecs.map((specs, w) => {
      // Worker 0 also changes the (process-wide) pool size between its rounds.
      const worker = startWorker({ kind: 'run', specs, rounds, flipThreads: w === 0 ? flips : [] });
      return within(
        new Promise<RunReport>((resolve, reject) => {
          let settled = false;
          worker.on('message', (m: WorkerMessage) => {
            if (m.type === 'error') reject(new Error(`worker ${w}: ${m.error}`));
            else if (m.type === 'report') resolve(m.report);
            else return;
            settled = true;
          });
          worker.on('error', (e: unknown) => reject(new Error(`worker ${w}: ${e instanceof Error ? e.stack : String(e)}`)));
          worker.on('exit', (code) => {
            if (!settled) reject(new Error(`worker ${w} exited with ${code} before reporting`));
          });
        }),
        120_000,
        `worker ${w}`,
      );
    });
    // The main thread keeps calling (async and sync) until every worker has reported.
    let mainCalls = 0, mainRounds = 0, finished = 0;
    reports.forEach((p) => void p.then(() => finished++, () => finished++));
    while (finished < nWorkers) {
      const ops = mainJobs.map((_, k) => [k, (k + mainRounds) % 2 === 0 ? 'infer' : 'train'] as [number, Mode]);
      const running = concurrentCheck(check, mainJobs, mainRefs, ops, `main round ${mainRounds}`);
      for (let k = 0; k < mainJobs.length; k += 4) check.same(runSync(mainJobs[k], 'train'), mainRefs[k].train, `main round ${mainRounds}, sync train ${specName(mainSpecs[k])}`);
      mainCalls += (await running) + 2 * Math.ceil(mainJobs.length / 4);
      mainRounds++;
    }
    let workerCalls = 0;
    const all = await Promise.all(reports);
    all.forEach((rep, w) => {
      if (rep.rounds.length !== rounds) throw new Error(`worker ${w}: ${rep.rounds.length} rounds, want ${rounds}`);
      rep.rounds.forEach((round, r) =>
        round.forEach((o, k) => {
          const ref = workerRefs[w][k], label = `worker ${w} round ${r} ${specName(workerSpecs[w][k])}`;
          check.same(o.asyncInfer, ref.infer, `${label}: forwardAsync`);
          check.same(o.asyncTrain, ref.train, `${label}: forwardAsync + backwardAsync`);
          check.same(o.syncInfer, ref.infer, `${label}: forward`);
          check.same(o.syncTrain, ref.train, `${label}: forward + backward`);
        }),
      );
      workerCalls += rep.calls;
    });
    const ms = performance.now() - t0;
    return check.done(
      `workers: ${nWorkers} workers × ${rounds} rounds × ${perWorker + 1} jobs: ${workerCalls} calls (async ones in flight ` +
        `while sync ones run), main thread meanwhile ${mainCalls} calls in ${mainRounds} rounds; ${check.checked} results checked ` +
        `bit for bit against the main thread's 1-thread reference; pool ${OVERSUBSCRIBED[0]} threads (worker 0 setting ` +
        `${flips.join('/')}) on ${CORES} cores; ${ms.toFixed(0)} ms`,
    );
  },

  'workers-ending': async () => {
    const check = new Checker();
    const rounds = scaled(20, 2);
    const delays = [0, 1, 3, 8, 15, 30, -1]; // ms after 'started'; -1: exit in the first result's continuation
    const dieSpecs = [...mixedSpecs(scaled(16, 4), 4242, true), ...longSpecs(4242, 2)];
    const mainSpecs = mixedSpecs(scaled(30, 6), 4343, true);
    const dieRefs = references(dieSpecs);
    const mainRefs = references(mainSpecs);
    const mainJobs = mainSpecs.map(buildJob);
    setNumThreads(OVERSUBSCRIBED[0]);

    let done = false;
    let mainCalls = 0;
    const mainLoop = (async () => {
      for (let r = 0; !done; r++) {
        const ops = mainJobs.map((_, k) => [k, (k + r) % 3 === 0 ? 'train' : 'infer'] as [number, Mode]);
        mainCalls += await concurrentCheck(check, mainJobs, mainRefs, ops, `main loop ${r}`);
      }
    })();

    const stats = { workers: 0, midCall: 0, received: 0, expected: 0, codes: new Map<string, number>() };
    const runOne = (how: 'exit' | 'terminate', delay: number, label: string) =>
      within(
        new Promise<void>((resolve, reject) => {
          const worker = startWorker({ kind: 'die', specs: dieSpecs, how, exitDelay: how === 'exit' ? delay : Infinity });
          let expected = 0, received = 0;
          stats.workers++;
          worker.on('message', (m: WorkerMessage) => {
            if (m.type === 'error') reject(new Error(`${label}: ${m.error}`));
            else if (m.type === 'started') {
              expected = m.expected;
              if (how === 'terminate') {
                if (delay <= 0) void worker.terminate();
                else setTimeout(() => void worker.terminate(), delay);
              }
            } else if (m.type === 'result') {
              received++;
              check.same(m.outcome, dieRefs[m.job][m.mode], `${label}: posted by the dying worker, ${m.mode} ${specName(dieSpecs[m.job])}`);
            }
          });
          worker.on('error', (e: unknown) => reject(new Error(`${label}: worker error ${e instanceof Error ? e.stack : String(e)}`)));
          worker.on('exit', (code) => {
            const key = `${how} ${code}`;
            stats.codes.set(key, (stats.codes.get(key) ?? 0) + 1);
            if (expected === 0 || received < expected) stats.midCall++;
            stats.received += received;
            stats.expected += expected;
            resolve();
          });
        }),
        60_000,
        label,
      );
    const t0 = performance.now();
    for (let r = 0; r < rounds; r++) {
      const d = delays[r % delays.length];
      await Promise.all([runOne('exit', d, `round ${r} exit(delay ${d})`), runOne('terminate', Math.max(0, d), `round ${r} terminate(delay ${Math.max(0, d)})`)]);
    }
    done = true;
    await within(mainLoop, 60_000, 'main loop');
    // Afterwards: the main thread's results are still right, async and sync, at any thread count.
    let after = 0;
    for (const n of [1, 3, OVERSUBSCRIBED[1]]) {
      setNumThreads(n);
      after += await concurrentCheck(check, mainJobs, mainRefs, mainJobs.flatMap((_, k) => [[k, 'infer'], [k, 'train']] as [number, Mode][]), `after, ${n} threads`);
      mainJobs.forEach((j, k) => check.same(runSync(j, 'train'), mainRefs[k].train, `after, ${n} threads, sync train ${specName(mainSpecs[k])}`));
      after += 2 * mainJobs.length;
    }
    const ms = performance.now() - t0;
    const codes = [...stats.codes].sort().map(([k, v]) => `${k} ×${v}`).join(', ');
    return check.done(
      `workers-ending: ${rounds} rounds, ${stats.workers} workers ended (exit codes: ${codes}), ${stats.midCall} with calls ` +
        `in flight; ${stats.received} of ${stats.expected} of their results made it back; main thread ${mainCalls} async ` +
        `calls meanwhile and ${after} calls afterwards at 1, 3, ${OVERSUBSCRIBED[1]} threads; ${check.checked} results checked ` +
        `bit for bit; ${CORES} cores; ${ms.toFixed(0)} ms`,
    );
  },
};

if (!isMainThread) {
  await workerMain(workerData as WorkerTask);
} else {
  const name = process.argv[2];
  const run = scenarios[name];
  if (!run) {
    console.error(`unknown scenario '${name}'; scenarios: ${Object.keys(scenarios).join(', ')}`);
    process.exit(2);
  }
  console.log(`ok: ${await run()} (scale ${SCALE})`);
}
