// Side-by-side benchmark of rnnkit and its peers on the cases of DESIGN §7 (see bench/README.md).
//   node --import tsx bench/bench.ts [--quick] [--cases L1,G1] [--threads 2] [--no-tfjs] [--no-torch] [--no-torch-search] [--json out.json]
// Results go to stdout; one progress line per measurement goes to stderr.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { getNumThreads, LSTM, Random, setNumThreads, Tensor } from '../lib/index.js';
import { native, type PeakInfo } from '../lib/native.js';
import { CASES, describeCase, gemmFlops, type BenchCase } from './cases.js';
import {
  activateTfBackend, isStack, loadOnnxHelper, ortImpl, rnnkitComposedImpl, rnnkitDropoutImpl, rnnkitImpl, rnnkitLengthsImpl, tfjsImpl,
  wasmBackendInfo, positiveInt, type Impl,
} from './peers.js';
import { makeProblem } from './problem.js';
import { TORCH_SEARCH_CONFIGS, TorchPeer, torchConfigEnv, torchConfigKey, torchConfigLabel, type TorchConfig } from './torch-peer.js';
import { gitDescription } from './machine.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const HELP = `Usage: node --import tsx bench/bench.ts [options]   (npm run bench -- [options])

  --quick            tiny repetition counts, for smoke tests (numbers are not meaningful)
  --tiny             also shrink every case (B<=3, T<=5, I<=16, H<=8) to check all code paths in seconds; implies --quick
  --cases L1,G1      cases to run (default: all of ${CASES.map((c) => c.id).join(',')})
  --threads N        threads for rnnkit, onnxruntime and torch (default 2)
  --no-tfjs          skip tfjs (both the cpu and the wasm backend)
  --no-wasm          skip only tfjs's wasm backend
  --no-ort           skip onnxruntime-node
  --no-torch         skip PyTorch
  --no-torch-search  skip the search for PyTorch's best configuration (on by default: per case, each of
                     set_num_threads {1,2} × OPENBLAS/OMP_NUM_THREADS {1,2} × OPENBLAS_CORETYPE {unset,Haswell}
                     in its own python child, a few quick calls each; the fastest is then timed in the rounds)
  --torch-search-calls N  timed calls per configuration in the search, after 1 warm-up (default 3; quick 1)
  --torch-search-ms MS    stop timing a configuration after this much (default 1500; quick 200)
  --peak-ms MS       time spent on each of the five machine-limit figures (measurePeak; default 300; quick 20)
  --python PATH      python with torch (default /usr/bin/python3 when present, else python3)
  --json FILE        also write the results (with every sample) as JSON
  --rounds N         interleaved rounds per case (default 7; quick 2)
  --block-ms MS      target time of one block of calls of one implementation (default 250; quick 5)
  --budget S         timed seconds per implementation and case before it stops taking blocks (default 30; quick 2)
  --tfjs-reps N      timed calls of tfjs-cpu per case after its one warm-up call (default 2; quick 1)
  --help`;

// ---------------------------------------------------------------------------------------------
// Options

interface Settings {
  quick: boolean;
  tiny: boolean;
  cases: BenchCase[];
  threads: number;
  tfjs: boolean;
  wasm: boolean;
  ort: boolean;
  torch: boolean;
  torchSearch: boolean;
  torchSearchCalls: number;
  torchSearchMs: number;
  peakMs: number;
  python: string;
  json?: string;
  rounds: number;
  blockMs: number;
  budgetMs: number;
  tfjsReps: number;
  /** Warm-up: at least minWarmCalls calls and warmMs, at most maxWarmCalls. */
  minWarmCalls: number;
  maxWarmCalls: number;
  warmMs: number;
  maxBlockCalls: number;
  /** Pause before each block, so that threads still spinning after the previous implementation's block go idle. */
  settleMs: number;
}

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      tiny: { type: 'boolean' },
      cases: { type: 'string' },
      threads: { type: 'string' },
      'no-tfjs': { type: 'boolean' },
      'no-wasm': { type: 'boolean' },
      'no-ort': { type: 'boolean' },
      'no-torch': { type: 'boolean' },
      'no-torch-search': { type: 'boolean' },
      'torch-search-calls': { type: 'string' },
      'torch-search-ms': { type: 'string' },
      'peak-ms': { type: 'string' },
      python: { type: 'string' },
      json: { type: 'string' },
      rounds: { type: 'string' },
      'block-ms': { type: 'string' },
      budget: { type: 'string' },
      'tfjs-reps': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const tiny = values.tiny ?? false;
  const quick = (values.quick ?? false) || tiny;
  let cases = [...CASES];
  if (values.cases !== undefined) {
    const ids = values.cases.split(',').map((s) => s.trim()).filter(Boolean);
    cases = ids.map((id) => {
      const c = CASES.find((k) => k.id.toLowerCase() === id.toLowerCase());
      if (!c) throw new RangeError(`--cases: unknown case '${id}'; the cases are ${CASES.map((k) => k.id).join(', ')}`);
      return c;
    });
  }
  if (tiny) {
    cases = cases.map((c) => ({
      ...c,
      batch: Math.min(c.batch, 3),
      steps: Math.min(c.steps, 5),
      inputSize: Math.min(c.inputSize, 16),
      hiddenSize: Math.min(c.hiddenSize, 8),
      title: `${c.title} (--tiny)`,
    }));
  }
  const tfjs = !values['no-tfjs'];
  return {
    quick,
    tiny,
    cases,
    threads: positiveInt(values.threads, '--threads', 2),
    tfjs,
    wasm: tfjs && !values['no-wasm'],
    ort: !values['no-ort'],
    torch: !values['no-torch'],
    torchSearch: !values['no-torch'] && !values['no-torch-search'],
    torchSearchCalls: positiveInt(values['torch-search-calls'], '--torch-search-calls', quick ? 1 : 3),
    torchSearchMs: positiveInt(values['torch-search-ms'], '--torch-search-ms', quick ? 200 : 1500),
    peakMs: Math.min(60000, positiveInt(values['peak-ms'], '--peak-ms', quick ? 20 : 300)),
    python: values.python ?? (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'),
    json: values.json,
    rounds: positiveInt(values.rounds, '--rounds', quick ? 2 : 7),
    blockMs: positiveInt(values['block-ms'], '--block-ms', quick ? 5 : 250),
    budgetMs: 1000 * positiveInt(values.budget, '--budget', quick ? 2 : 30),
    tfjsReps: positiveInt(values['tfjs-reps'], '--tfjs-reps', quick ? 1 : 2),
    minWarmCalls: quick ? 1 : 3,
    maxWarmCalls: quick ? 1 : 200,
    warmMs: quick ? 0 : 300,
    maxBlockCalls: quick ? 3 : 200,
    settleMs: quick ? 0 : 20,
  };
}

// ---------------------------------------------------------------------------------------------
// Machine

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

function packageVersion(name: string): string | undefined {
  try {
    return (JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

interface Machine {
  date: string;
  cpu: string;
  logicalCpus: number;
  isaFlags: string[];
  memoryGiB: number;
  loadAverageStart: number[];
  loadAverageEnd?: number[];
  node: string;
  platform: string;
  env: Record<string, string>;
  threads: number;
  rnnkitThreads: number;
  commit?: string;
  versions: Record<string, string>;
  /** This machine's FMA peak and packed-GEMM rate (native measurePeak), GFLOP/s. */
  peak?: PeakInfo;
}

function describeMachine(threads: number): Machine {
  const cpuinfo = readOr('/proc/cpuinfo', '');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const flags = new Set((/^flags\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? '').split(/\s+/));
  const env: Record<string, string> = {};
  for (const k of ['OPENBLAS_CORETYPE', 'OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS']) env[k] = process.env[k] ?? '(unset)';
  const versions: Record<string, string> = {};
  for (const name of ['onnxruntime-node', '@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm']) {
    const v = packageVersion(name);
    if (v) versions[name] = v;
  }
  return {
    date: new Date().toISOString(),
    cpu: model,
    logicalCpus: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length,
    isaFlags: ['avx512f', 'avx512bw', 'avx512vl', 'avx2', 'fma', 'f16c'].filter((f) => flags.has(f)),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverageStart: os.loadavg().map((v) => Math.round(v * 100) / 100),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    env,
    threads,
    rnnkitThreads: getNumThreads(),
    commit: gitDescription(),
    versions,
  };
}

function printMachine(m: Machine): void {
  console.log(`rnnkit benchmark, ${m.date}${m.commit ? `, commit ${m.commit}` : ''}`);
  console.log(`cpu:      ${m.cpu}; ${m.logicalCpus} logical CPUs; ${m.isaFlags.join(' ') || 'no AVX flags'}; ${m.memoryGiB} GiB`);
  console.log(`load:     ${m.loadAverageStart.join(' ')} (1/5/15-min load average at start)`);
  console.log(`node:     ${m.node} (${m.platform}); ${Object.entries(m.env).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  console.log(`threads:  ${m.threads} (rnnkit getNumThreads() = ${m.rnnkitThreads})`);
  console.log(`peers:    ${Object.entries(m.versions).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
  if (m.peak) {
    const p = m.peak;
    console.log(
      `peak:     FMA (${p.isa}, float32) ${fmt3(p.fmaPeakGflops1)} GFLOP/s on 1 thread, ${fmt3(p.fmaPeakGflopsAll)} on ${p.threads}; ` +
        `packed GEMM (${p.gemmIsa}) M=64 N=1024 K=256 ${fmt3(p.gemmGflops1)} GFLOP/s on 1 thread, ${fmt3(p.gemmGflopsAll)} on ${p.threads}; ` +
        `L2 read (256 KiB, 1 thread) ${fmt3(p.l2ReadGBs1)} GB/s ` +
        `(measurePeak, best batch of ${p.ms} ms each; '% peak' = GFLOP/s / ${fmt3(p.fmaPeakGflopsAll)})`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics and formatting

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmtMs(v: number): string {
  if (!Number.isFinite(v)) return '—';
  if (v >= 1000) return v.toFixed(0);
  if (v >= 100) return v.toFixed(1);
  if (v >= 10) return v.toFixed(2);
  if (v >= 1) return v.toFixed(3);
  return v.toFixed(4);
}

function fmt3(v: number): string {
  if (!Number.isFinite(v)) return '—';
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

/** Plain padded columns; `align` is 'l' or 'r' per column. */
function table(header: string[], rows: string[][], align: string): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (align[i] === 'l' ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Measurement

interface Row {
  key: string;
  label: string;
  threads: number;
  baseline: string;
  warmupCalls: number;
  samplesMs: number[];
  medianMs: number;
  minMs: number;
  sequencesPerSecond: number;
  gflops: number;
  /** medianMs / the baseline rnnkit row's medianMs: > 1 means rnnkit is faster. */
  ratio: number;
  /** Share of the case's GEMM work a call needs (D2v: Σlengths / (B·T)); GFLOP/s counts only that. */
  workFraction?: number;
  /** The ratio expected when the work is all that costs (D2v: workFraction). */
  expectedRatio?: number;
  /** medianMs / the rnnkit row of the case named by relativeTo, when that case ran earlier in this run (not interleaved). */
  crossCaseRatio?: number;
  /** max |peer - baseline| over the whole output of one inference forward on the same input and weights. */
  maxAbsDiff?: number;
  /** gflops / the machine's all-thread FMA peak (measurePeak). */
  peakFraction?: number;
  error?: string;
}

/** One configuration of the PyTorch search of a case: quick timing (1 warm-up, then a few calls). */
interface TorchSearchEntry {
  key: string;
  config: TorchConfig;
  label: string;
  calls: number;
  medianMs: number;
  error?: string;
}

interface CaseResult {
  id: string;
  title: string;
  batch: number;
  steps: number;
  inputSize: number;
  hiddenSize: number;
  layers: number;
  bidirectional: boolean;
  work: string;
  threads: number;
  gflopPerCall: number;
  rows: Row[];
  notes: string[];
  /** The PyTorch search of this case (every configuration's quick median) and the winner's key. */
  torchSearch?: { entries: TorchSearchEntry[]; winner?: string };
}

const t0 = performance.now();
function progress(msg: string): void {
  process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
}

interface Peers {
  torch?: TorchPeer;
  torchLabel?: string;
  /** One python child per searched configuration (the environment is fixed when a child starts). */
  torchSearch?: { config: TorchConfig; peer: TorchPeer }[];
  /** The machine's limits, for each row's fraction of peak. */
  peak?: PeakInfo;
  skipped: string[];
}

/**
 * Quick timing of every PyTorch configuration on the case's problem, each in its own child; returns
 * the fastest as the 'torch-best' row (timed in the rounds like the others) and every figure.
 */
async function searchTorch(
  c: BenchCase, p: ReturnType<typeof makeProblem>, s: Settings, peers: Peers,
): Promise<{ impl?: Impl; entries: TorchSearchEntry[] }> {
  const entries: TorchSearchEntry[] = [];
  let best: { impl: Impl; entry: TorchSearchEntry } | undefined;
  for (const { config, peer } of peers.torchSearch ?? []) {
    const entry: TorchSearchEntry = { key: torchConfigKey(config), config, label: torchConfigLabel(config), calls: 0, medianMs: NaN };
    entries.push(entry);
    let impl: Impl | undefined;
    try {
      impl = await peer.impl(p, config.torchThreads, `torch best (${entry.label})`, 'torch-best');
      // The previous configuration's child may still spin its BLAS/OpenMP threads: a pause, then a warm-up call.
      if (s.settleMs > 0) await sleep(5 * s.settleMs);
      await impl.measure(1);
      const ms: number[] = [];
      let spent = 0;
      while (ms.length < s.torchSearchCalls && (ms.length === 0 || spent < s.torchSearchMs)) {
        const [t] = await impl.measure(1);
        ms.push(t);
        spent += t;
      }
      entry.calls = ms.length;
      entry.medianMs = median(ms);
      progress(`${c.id} torch search ${entry.key}: ${fmtMs(entry.medianMs)} ms (median of ${ms.length})`);
    } catch (err) {
      entry.error = err instanceof Error ? err.message : String(err);
      progress(`${c.id} torch search ${entry.key}: ${entry.error}`);
    }
    if (impl && Number.isFinite(entry.medianMs) && (!best || entry.medianMs < best.entry.medianMs)) {
      if (best) await best.impl.release().catch(() => {});
      best = { impl, entry };
    } else if (impl) await impl.release().catch(() => {});
  }
  return { impl: best?.impl, entries };
}

async function setUpImpls(
  c: BenchCase, s: Settings, peers: Peers, threads: number, notes: string[], search: { result?: CaseResult['torchSearch'] } = {},
): Promise<Impl[]> {
  progress(`${c.id}: setting up (rnnkit layers, weights, peers)`);
  const p = makeProblem(c);
  const impls: Impl[] = [rnnkitImpl(p, threads)];
  if (c.variants) {
    for (const v of c.variants) impls.push(rnnkitImpl(p, threads, true, v));
    notes.push('variant rows: ratio = variant ms / default LSTM ms (same weights; rnnkit only)');
    return impls;
  }
  if (c.lengths || c.dropout) {
    if (c.lengths) {
      impls[0].label = 'rnnkit (all T steps)';
      impls.push(rnnkitLengthsImpl(p, threads));
      const L = p.lengths!, sum = L.reduce((a, b) => a + b, 0);
      notes.push(
        `lengths: ${c.batch} sequences, uniform integers in [${Math.min(...L) === Math.max(...L) ? L[0] : `${Math.ceil(c.steps * c.lengths.minFraction)}, ${c.steps}`}] ` +
          `(Random(${c.lengths.seed})), drawn min ${Math.min(...L)} max ${Math.max(...L)}, Σ = ${sum} of B·T = ${c.batch * c.steps}; ` +
          `expected ratio Σlengths/(B·T) = ${(sum / (c.batch * c.steps)).toFixed(3)}; GFLOP/s of the lengths row counts the valid steps' work only`,
      );
    }
    if (c.dropout) {
      impls[0].label = 'rnnkit (no dropout)';
      impls.push(rnnkitDropoutImpl(p, threads));
    }
    notes.push(
      `${c.id} is rnnkit only: peers (onnxruntime, tfjs, torch) are not run for it; ratio = row ms / ms of the same native stack ` +
        `on the plain ${c.relativeTo ?? 'case'} problem (first row), timed interleaved in this case`,
    );
    return impls;
  }
  if (isStack(c)) impls.push(rnnkitComposedImpl(p, threads));
  const attempt = async (what: string, make: () => Impl | Promise<Impl>) => {
    try {
      impls.push(await make());
    } catch (err) {
      notes.push(`${what} left out: ${err instanceof Error ? err.message : String(err)}`);
      progress(`${c.id}: ${what} left out: ${String(err)}`);
    }
  };
  if (c.cell === 'gru' && (s.tfjs || s.wasm)) impls.push(rnnkitImpl(p, threads, false));
  if (s.ort && c.work === 'forward' && c.layers === 1 && !c.bidirectional) await attempt('onnxruntime-node', () => ortImpl(p, threads));
  if (s.tfjs) await attempt('tfjs-cpu', () => tfjsImpl(p, 'cpu'));
  if (s.wasm) await attempt('tfjs-wasm', () => tfjsImpl(p, 'wasm'));
  if (peers.torch) await attempt('torch', () => peers.torch!.impl(p, threads, peers.torchLabel ?? 'torch'));
  if (peers.torchSearch && peers.torchSearch.length > 0) {
    progress(`${c.id}: searching PyTorch's best configuration (${peers.torchSearch.length} configurations)`);
    const found = await searchTorch(c, p, s, peers);
    const winner = found.impl ? found.entries.reduce((a, b) => (b.medianMs < a.medianMs ? b : a)) : undefined;
    search.result = { entries: found.entries, winner: winner?.key };
    if (found.impl) impls.push(found.impl);
    notes.push(
      `torch search (own python child per configuration, 1 warm-up + up to ${s.torchSearchCalls} call(s) / ${s.torchSearchMs} ms each, median ms): ` +
        found.entries.map((e) => `${e.key} ${e.error ? `failed (${e.error})` : fmtMs(e.medianMs)}`).join(', ') +
        (winner ? `; best: ${winner.label}` : '; no configuration ran') +
        `; default row 'torch': set_num_threads(${threads}), this process's environment`,
    );
  }
  return impls;
}

interface Track {
  impl: Impl;
  row: Row;
  estimateMs: number;
  totalMs: number;
  dead: boolean;
}

async function runCase(c: BenchCase, s: Settings, peers: Peers): Promise<CaseResult> {
  const threads = c.threads ?? s.threads;
  const notes: string[] = [];
  const search: { result?: CaseResult['torchSearch'] } = {};
  const impls = await setUpImpls(c, s, peers, threads, notes, search);
  const flops = gemmFlops(c);
  const tracks: Track[] = impls.map((impl) => ({
    impl,
    row: {
      key: impl.key, label: impl.label, threads: impl.threads, baseline: impl.baseline,
      warmupCalls: 0, samplesMs: [], medianMs: NaN, minMs: NaN, sequencesPerSecond: NaN, gflops: NaN, ratio: NaN,
    },
    estimateMs: NaN,
    totalMs: 0,
    dead: false,
  }));
  const fail = (t: Track, err: unknown, when: string) => {
    t.dead = true;
    t.row.error = `${when}: ${err instanceof Error ? err.message : String(err)}`;
    progress(`${c.id} ${t.impl.key}: ${t.row.error}`);
  };

  // Check (same function?) and warm-up, one implementation after the other.
  const reference = new Map<string, Float32Array>();
  for (const t of tracks) {
    const { impl } = t;
    try {
      if (impl.check) {
        const y = await impl.check();
        if (impl.checkReference) {
          // Compared with its own reference (D2v), not with the baseline's output.
          const ref = await impl.checkReference();
          if (ref.length === y.length) t.row.maxAbsDiff = maxAbsDiff(y, ref);
          else notes.push(`${impl.key}: output has ${y.length} values, its reference has ${ref.length}`);
          if (impl.checkNote) notes.push(`${impl.label}: ${impl.checkNote}`);
        } else if (impl.baseline === impl.key) reference.set(impl.key, y);
        else {
          // Every other row is compared with the one output of its baseline row (for D2: the native stack).
          const ref = reference.get(impl.baseline);
          if (ref && ref.length === y.length) t.row.maxAbsDiff = maxAbsDiff(y, ref);
          else if (ref) notes.push(`${impl.key}: output has ${y.length} values, ${impl.baseline} has ${ref.length}`);
          else notes.push(`${impl.key}: no ${impl.baseline} output to compare with (its check failed)`);
        }
      }
      const warm: number[] = [];
      if (impl.slow) {
        if (!impl.check) warm.push(...(await impl.measure(1))); // for slow peers the check forward is the warm-up
      } else {
        let elapsed = 0;
        while ((warm.length < s.minWarmCalls || elapsed < s.warmMs) && warm.length < s.maxWarmCalls) {
          const [ms] = await impl.measure(1);
          warm.push(ms);
          elapsed += ms;
        }
      }
      t.row.warmupCalls = warm.length + (impl.check ? 1 : 0);
      t.estimateMs = warm.length > 1 ? median(warm.slice(1)) : (warm[0] ?? NaN);
      progress(`${c.id} ${impl.key}: warm-up ${t.row.warmupCalls} call(s)${warm.length ? `, ~${fmtMs(t.estimateMs)} ms/call` : ''}`);
    } catch (err) {
      fail(t, err, 'warm-up');
    }
  }

  // Interleaved rounds: every round gives each implementation one block, starting with a different one.
  const slowDone = (t: Track) => t.row.samplesMs.length >= s.tfjsReps || (t.row.samplesMs.length > 0 && t.totalMs >= s.budgetMs);
  const wants = (t: Track, round: number) => {
    if (t.dead) return false;
    if (t.impl.slow) return !slowDone(t);
    return round < s.rounds && (t.row.samplesMs.length === 0 || t.totalMs < s.budgetMs);
  };
  for (let round = 0; tracks.some((t) => wants(t, round)); round++) {
    const order = tracks.map((_, i) => tracks[(i + round) % tracks.length]);
    for (const t of order) {
      if (!wants(t, round)) continue;
      const calls = t.impl.slow ? 1 : Math.max(1, Math.min(s.maxBlockCalls, Math.round(s.blockMs / t.estimateMs) || 1));
      if (s.settleMs > 0) await new Promise((resolve) => setTimeout(resolve, s.settleMs));
      try {
        const ms = await t.impl.measure(calls);
        t.row.samplesMs.push(...ms);
        t.totalMs += ms.reduce((a, b) => a + b, 0);
        progress(`${c.id} round ${round + 1} ${t.impl.key}: ${calls} call(s), block median ${fmtMs(median(ms))} ms`);
      } catch (err) {
        fail(t, err, `round ${round + 1}`);
      }
    }
  }

  for (const t of tracks) {
    await t.impl.release().catch((err: unknown) => progress(`${c.id} ${t.impl.key}: release failed: ${String(err)}`));
    if (t.impl.note && !notes.includes(t.impl.note)) notes.push(t.impl.note);
    const r = t.row;
    if (t.impl.workFraction !== undefined) r.workFraction = r.expectedRatio = t.impl.workFraction;
    if (r.samplesMs.length === 0) continue;
    r.medianMs = median(r.samplesMs);
    r.minMs = Math.min(...r.samplesMs);
    r.sequencesPerSecond = c.batch / (r.medianMs / 1000);
    r.gflops = (flops * (r.workFraction ?? 1)) / (r.medianMs / 1000) / 1e9;
    if (peers.peak && peers.peak.fmaPeakGflopsAll > 0) r.peakFraction = r.gflops / peers.peak.fmaPeakGflopsAll;
  }
  for (const t of tracks) {
    const base = tracks.find((b) => b.impl.key === t.row.baseline)?.row;
    if (base && Number.isFinite(base.medianMs)) t.row.ratio = t.row.medianMs / base.medianMs;
  }
  return {
    id: c.id, title: c.title, batch: c.batch, steps: c.steps, inputSize: c.inputSize, hiddenSize: c.hiddenSize,
    layers: c.layers, bidirectional: c.bidirectional, work: c.work, threads, gflopPerCall: flops / 1e9,
    rows: tracks.map((t) => t.row), notes, ...(search.result ? { torchSearch: search.result } : {}),
  };
}

function maxAbsDiff(y: Float32Array, ref: Float32Array): number {
  let d = 0;
  for (let i = 0; i < y.length; i++) {
    const e = Math.abs(y[i] - ref[i]);
    if (Number.isNaN(e)) return Infinity; // a NaN on either side: flagged like any large difference
    if (e > d) d = e;
  }
  return d;
}

/**
 * A case with relativeTo (D2v, D2d): its extra row also against the rnnkit row of that case when
 * it ran earlier in this run. Not interleaved, so machine drift enters; the table's ratio is.
 */
function relateToEarlierCase(c: BenchCase, r: CaseResult, earlier: readonly CaseResult[]): void {
  if (!c.relativeTo) return;
  const other = earlier.find((e) => e.id === c.relativeTo)?.rows.find((row) => row.key === 'rnnkit');
  const base = r.rows.find((row) => row.key === 'rnnkit');
  if (!other || !Number.isFinite(other.medianMs)) {
    r.notes.push(`${c.relativeTo} did not run before ${c.id} in this run: ratio only against the interleaved first row`);
    return;
  }
  for (const row of r.rows) {
    if (row.key === 'rnnkit' || !Number.isFinite(row.medianMs)) continue;
    row.crossCaseRatio = row.medianMs / other.medianMs;
    r.notes.push(
      `${row.label} against the ${c.relativeTo} case's rnnkit row of this run (${fmtMs(other.medianMs)} ms, measured before, not interleaved): ` +
        `${fmt3(row.crossCaseRatio)}${row.expectedRatio !== undefined ? ` (expected ${row.expectedRatio.toFixed(2)})` : ''}; ` +
        `this case's own first row: ${base ? fmtMs(base.medianMs) : '—'} ms`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Event loop (EL): many concurrent forwardAsync calls on one layer. What a server sees: how long
// issuing them holds the JS thread, how late timers fire while they run, when all are done, and
// how much resident memory the calls in flight add (the prepared weights are shared, not copied).

interface EventLoopBlock {
  /** JS-thread time to issue all calls (sync row: the whole block). */
  issueMs: number;
  /** From the first call issued until the last result is there. */
  totalMs: number;
  /** monitorEventLoopDelay({ resolution: 1 }) over the block: p99 and max, ms; samples taken. */
  delayP99Ms: number;
  delayMaxMs: number;
  delaySamples: number;
  /** Peak VmRSS during the block minus VmRSS before the process's first block (weights prepared, after a GC), MB. */
  rssGrowthMB: number;
}

interface EventLoopRow {
  key: string;
  label: string;
  threads: number;
  calls: number;
  blocks: EventLoopBlock[];
  /** Medians over the blocks (worst*: the largest block value). */
  issueMs: number;
  delayP99Ms: number;
  delayMaxMs: number;
  worstDelayMaxMs: number;
  totalMs: number;
  minTotalMs: number;
  callsPerSecond: number;
  rssGrowthMB: number;
  worstRssGrowthMB: number;
  /** max |output − the sync forward's output| over all calls (async row). */
  maxAbsDiff?: number;
  error?: string;
}

interface EventLoopResult {
  id: string;
  title: string;
  batch: number;
  steps: number;
  inputSize: number;
  hiddenSize: number;
  calls: number;
  threads: number;
  uvThreadpoolSize: string;
  gflopPerCall: number;
  preparedWeightsMB: number;
  inputsMB: number;
  outputsMB: number;
  rows: EventLoopRow[];
  notes: string[];
}

const MB = 2 ** 20;

/** Resident memory now (VmRSS from /proc; elsewhere process.memoryUsage().rss). */
function rss(): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.memoryUsage().rss;
}

/** A full garbage collection before each block, so its RSS baseline holds no garbage of the previous one. */
let gcFunction: (() => void) | null | undefined;
function collectGarbage(): boolean {
  if (gcFunction === undefined) {
    gcFunction = (globalThis as { gc?: () => void }).gc ?? null;
    if (!gcFunction) {
      try {
        v8.setFlagsFromString('--expose-gc');
        gcFunction = vm.runInNewContext('gc') as () => void;
      } catch {
        gcFunction = null;
      }
    }
  }
  gcFunction?.();
  return gcFunction !== null;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * One block: every input once, either all issued at once with forwardAsync and awaited together
 * ('async'), or forward() one after the other on the JS thread ('sync', the contrast row).
 */
async function eventLoopBlock(
  mode: 'async' | 'sync',
  layer: LSTM,
  inputs: Tensor[],
  settleMs: number,
  baseline?: number,
): Promise<{ block: EventLoopBlock; outputs: Tensor[]; before: number }> {
  collectGarbage();
  if (settleMs > 0) await sleep(settleMs);
  collectGarbage();
  // The histogram records the time between two of its 1 ms ticks (an idle loop shows ~1 ms); its
  // first tick only starts the clock, so it is enabled a few ms before the first call: a stall of
  // the JS thread from the first call on (issuing included) is then recorded.
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  await sleep(3);
  const before = rss();
  let peak = before;
  const sampler = mode === 'async' ? setInterval(() => (peak = Math.max(peak, rss())), 2) : undefined;
  const t0 = performance.now();
  let issueMs: number, totalMs: number, outputs: Tensor[];
  if (mode === 'async') {
    const pending = inputs.map((x) => layer.forwardAsync(x));
    issueMs = performance.now() - t0;
    outputs = (await Promise.all(pending)).map((r) => r.output);
    totalMs = performance.now() - t0;
  } else {
    outputs = [];
    for (const x of inputs) {
      outputs.push(layer.forward(x).output);
      peak = Math.max(peak, rss()); // the 2 ms sampler cannot run while the JS thread computes
    }
    issueMs = totalMs = performance.now() - t0;
  }
  peak = Math.max(peak, rss());
  clearInterval(sampler);
  await sleep(2); // one more turn, so that a timer held back by a sync block is recorded
  delay.disable();
  const samples = delay.count;
  return {
    block: {
      issueMs,
      totalMs,
      delayP99Ms: samples > 0 ? delay.percentile(99) / 1e6 : NaN,
      delayMaxMs: samples > 0 ? delay.max / 1e6 : NaN,
      delaySamples: samples,
      rssGrowthMB: (peak - (baseline ?? before)) / MB,
    },
    outputs,
    before,
  };
}

/** What the parent asks one EL child for: two measured blocks of one kind (see runEventLoopCase). */
interface EventLoopRequest {
  mode: 'async' | 'sync';
  calls: number;
  batch: number;
  steps: number;
  inputSize: number;
  hiddenSize: number;
  threads: number;
  settleMs: number;
  /** Also compare every output of the second block with forward() on the same input (after the blocks). */
  check: boolean;
}

interface EventLoopAnswer {
  /** The process's first block, then the second (steady state). */
  blocks: [EventLoopBlock, EventLoopBlock];
  preparedBytes: number;
  gc: boolean;
  maxAbsDiff?: number;
}

const EL_CHILD_FLAG = '--el-block';

/** The EL layer and its inputs, the same in every child: LSTM seed 1, inputs from Random(12345). */
function eventLoopProblem(r: EventLoopRequest): { layer: LSTM; inputs: Tensor[] } {
  const { batch: B, steps: T, inputSize: I, hiddenSize: H } = r;
  const layer = new LSTM({ inputSize: I, units: H, returnSequences: true, seed: 1 });
  const rng = new Random(12345);
  const inputs = Array.from({ length: r.calls }, () => {
    const a = new Float32Array(B * T * I);
    for (let i = 0; i < a.length; i++) a[i] = rng.uniform(-1, 1);
    return Tensor.from(a, [B, T, I]);
  });
  return { layer, inputs };
}

/**
 * The child's side: one forwardAsync and one forward call (they prepare the weights, once, and
 * start the pools), then two measured blocks, both against the VmRSS before the first; prints
 * the answer as one JSON line.
 */
async function eventLoopChild(json: string): Promise<void> {
  const r = JSON.parse(json) as EventLoopRequest;
  setNumThreads(r.threads);
  const { layer, inputs } = eventLoopProblem(r);
  await layer.forwardAsync(inputs[0]);
  layer.forward(inputs[0]);
  const first = await eventLoopBlock(r.mode, layer, inputs, r.settleMs);
  first.outputs.length = 0;
  const { block, outputs } = await eventLoopBlock(r.mode, layer, inputs, r.settleMs, first.before);
  const answer: EventLoopAnswer = { blocks: [first.block, block], preparedBytes: layer.preparedBytes, gc: collectGarbage() };
  if (r.check) {
    let d = 0;
    inputs.forEach((x, k) => (d = Math.max(d, maxAbsDiff(outputs[k].data as Float32Array, layer.forward(x).output.data as Float32Array))));
    answer.maxAbsDiff = d;
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}

/**
 * Runs two blocks in a fresh node process (this script with --el-block): the first burst's RSS
 * growth is then not hidden by memory an earlier burst left resident for the allocator to reuse.
 */
function eventLoopBlockInChild(r: EventLoopRequest): Promise<EventLoopAnswer> {
  return new Promise((resolve, reject) => {
    const script = fileURLToPath(import.meta.url);
    const child = spawn(process.execPath, [...process.execArgv, '--expose-gc', script, EL_CHILD_FLAG, JSON.stringify(r)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '', err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) {
        try {
          resolve(JSON.parse(line) as EventLoopAnswer);
          return;
        } catch {
          // reported below
        }
      }
      reject(new Error(`EL child exited (${signal ?? `code ${code}`}): ${(err.trim() || out.trim()).slice(-500)}`));
    });
  });
}

async function runEventLoopCase(c: BenchCase, s: Settings): Promise<EventLoopResult> {
  const threads = c.threads ?? s.threads;
  const calls = c.concurrentCalls ?? 50;
  const { batch: B, steps: T, inputSize: I, hiddenSize: H } = c;
  const notes: string[] = [];
  progress(`${c.id}: LSTM(${I} → ${H}), ${calls} inputs [${B}, ${T}, ${I}], one fresh process per block`);
  const modes = [
    { mode: 'async' as const, key: 'rnnkit-async', label: `rnnkit forwardAsync ×${calls} at once` },
    { mode: 'sync' as const, key: 'rnnkit-sync', label: `rnnkit forward ×${calls} in a row (sync)` },
  ];
  // Per mode two rows: the second block of each process (steady state) and its first (a fresh process's first burst).
  const rowOf = (mode: number, first: boolean) => 2 * mode + (first ? 1 : 0);
  const rows: EventLoopRow[] = modes.flatMap((m) =>
    [false, true].map((first) => ({
      key: `${m.key}${first ? '-1st' : ''}`, label: `${m.label}${first ? ', 1st block' : ''}`, threads, calls, blocks: [],
      issueMs: NaN, delayP99Ms: NaN, delayMaxMs: NaN, worstDelayMaxMs: NaN, totalMs: NaN, minTotalMs: NaN, callsPerSecond: NaN,
      rssGrowthMB: NaN, worstRssGrowthMB: NaN,
    })),
  );
  const request = (mode: 'async' | 'sync', check: boolean): EventLoopRequest => ({
    mode, calls, batch: B, steps: T, inputSize: I, hiddenSize: H, threads, settleMs: s.settleMs, check,
  });

  // Interleaved rounds, starting with a different row each round; a pause before each block (and,
  // in the child, a full GC). The first async block also checks its outputs against forward().
  let preparedWeightsMB = NaN;
  let gcAvailable = true;
  const spent = [0, 0];
  for (let round = 0; round < s.rounds; round++) {
    for (let j = 0; j < modes.length; j++) {
      const i = (j + round) % modes.length;
      const steady = rows[rowOf(i, false)], first = rows[rowOf(i, true)];
      if (steady.error || (steady.blocks.length > 0 && spent[i] >= s.budgetMs)) continue;
      if (s.settleMs > 0) await sleep(s.settleMs);
      try {
        const check = modes[i].mode === 'async' && steady.maxAbsDiff === undefined;
        const a = await eventLoopBlockInChild(request(modes[i].mode, check));
        first.blocks.push(a.blocks[0]);
        steady.blocks.push(a.blocks[1]);
        if (a.maxAbsDiff !== undefined) steady.maxAbsDiff = a.maxAbsDiff;
        preparedWeightsMB = a.preparedBytes / MB;
        gcAvailable &&= a.gc;
        spent[i] += a.blocks[0].totalMs + a.blocks[1].totalMs;
        for (const [k, block] of a.blocks.entries()) {
          progress(
            `${c.id} round ${round + 1} ${modes[i].key} block ${k + 1}: issue ${fmtMs(block.issueMs)} ms, loop delay p99 ${fmtMs(block.delayP99Ms)} / max ` +
              `${fmtMs(block.delayMaxMs)} ms, all done ${fmtMs(block.totalMs)} ms, RSS +${block.rssGrowthMB.toFixed(1)} MB`,
          );
        }
      } catch (err) {
        steady.error = first.error = `round ${round + 1}: ${err instanceof Error ? err.message : String(err)}`;
        progress(`${c.id} ${modes[i].key}: ${steady.error}`);
      }
    }
  }
  for (const row of rows) {
    const b = row.blocks;
    if (b.length === 0) continue;
    row.issueMs = median(b.map((x) => x.issueMs));
    row.delayP99Ms = median(b.map((x) => x.delayP99Ms));
    row.delayMaxMs = median(b.map((x) => x.delayMaxMs));
    row.worstDelayMaxMs = Math.max(...b.map((x) => x.delayMaxMs));
    row.totalMs = median(b.map((x) => x.totalMs));
    row.minTotalMs = Math.min(...b.map((x) => x.totalMs));
    row.callsPerSecond = calls / (row.totalMs / 1000);
    row.rssGrowthMB = median(b.map((x) => x.rssGrowthMB));
    row.worstRssGrowthMB = Math.max(...b.map((x) => x.rssGrowthMB));
  }

  const inputsMB = (calls * B * T * I * 4) / MB, outputsMB = (calls * B * T * H * 4) / MB;
  const uv = process.env.UV_THREADPOOL_SIZE ?? '4 (default)';
  notes.push(
    `each round runs, per row kind, a fresh node process (this script, --el-block): one forwardAsync and one forward call, which ` +
      `prepare the weights (once: ${preparedWeightsMB.toFixed(1)} MB, shared by every later call) and start the pools, then two blocks of ` +
      `${calls} calls: the first (rows '1st block': a fresh process's first burst) and the second (steady state). RSS growth of both = ` +
      `peak during the block − VmRSS before the first block (a fresh process, because memory freed by an earlier burst stays resident ` +
      `for the allocator to reuse and would hide a burst's growth)`,
  );
  notes.push(
    `forwardAsync rows: the ${calls} calls are issued in one synchronous loop, then awaited with Promise.all; they run on the libuv pool ` +
      `(UV_THREADPOOL_SIZE=${uv}), rnnkit pool ${threads} thread(s); sync rows: the same inputs through forward() one after the other ` +
      `(the JS thread is held throughout: issue = all done)`,
  );
  notes.push(
    'loop delay: perf_hooks.monitorEventLoopDelay({ resolution: 1 }) from 3 ms before the first call until all resolved, issuing included ' +
      '(it records the time between its 1 ms ticks: an idle loop shows ~1 ms; a sync block, one sample of its whole length); ' +
      'RSS: /proc/self/status VmRSS every 2 ms during the block (sync rows: after each call), ' +
      `${gcAvailable ? 'a full GC before each block' : 'no GC available (the baseline may hold garbage)'}; values are medians over the blocks, worst = the largest block`,
  );
  notes.push(
    `the calls' own buffers: 4×Σinputs + 3×Σoutputs = ${(4 * inputsMB + 3 * outputsMB).toFixed(1)} MB (Σinputs ${inputsMB.toFixed(1)} MB, ` +
      `Σoutputs ${outputsMB.toFixed(1)} MB; test/serve-memory allows 64 MB more for the runtime); a weight set per call would add ` +
      `~${(calls * preparedWeightsMB).toFixed(0)} MB`,
  );
  if (rows[0].maxAbsDiff !== undefined) notes.push('max|Δ| out: every output of the first round\'s second forwardAsync block against forward() on the same input');
  return {
    id: c.id, title: c.title, batch: B, steps: T, inputSize: I, hiddenSize: H, calls, threads, uvThreadpoolSize: uv,
    gflopPerCall: gemmFlops(c) / 1e9, preparedWeightsMB, inputsMB, outputsMB, rows, notes,
  };
}

function printEventLoop(c: BenchCase, r: EventLoopResult): void {
  console.log(`\n${describeCase(c)}  [${r.threads} thread(s)]`);
  const rows = r.rows.map((row) => {
    if (row.blocks.length === 0) return [row.label, String(row.threads), '0', String(row.calls), 'failed', '', '', '', '', '', '', '', '', ''];
    const diff = row.maxAbsDiff === undefined ? '' : `${row.maxAbsDiff.toExponential(1)}${row.maxAbsDiff > DIFF_WARN ? ' !' : ''}`;
    return [
      row.label, String(row.threads), String(row.blocks.length), String(row.calls), fmtMs(row.issueMs), fmtMs(row.delayP99Ms),
      fmtMs(row.delayMaxMs), fmtMs(row.worstDelayMaxMs), fmtMs(row.totalMs), fmtMs(row.minTotalMs), fmt3(row.callsPerSecond),
      row.rssGrowthMB.toFixed(1), row.worstRssGrowthMB.toFixed(1), diff,
    ];
  });
  const header = [
    'implementation', 'thr', 'n', 'calls', 'issue ms', 'loop p99 ms', 'loop max ms', 'worst max ms', 'all done ms', 'min ms', 'calls/s',
    'RSS +MB', 'worst +MB', 'max|Δ| out',
  ];
  console.log(table(header, rows, 'l' + 'r'.repeat(header.length - 1)).split('\n').map((l) => `  ${l}`).join('\n'));
  for (const row of r.rows) if (row.error) console.log(`  ! ${row.label}: ${row.error}`);
  for (const n of r.notes) console.log(`  - ${n}`);
}

function printEventLoopSummary(results: EventLoopResult[]): void {
  for (const r of results) {
    const [a, a1, sync] = r.rows;
    if (!a || a.blocks.length === 0) continue;
    console.log(
      `${r.id}: ${r.calls} concurrent forwardAsync, LSTM(${r.inputSize} → ${r.hiddenSize}) B=${r.batch} T=${r.steps}, steady state: issued in ${fmtMs(a.issueMs)} ms, ` +
        `loop delay p99 ${fmtMs(a.delayP99Ms)} ms / max ${fmtMs(a.delayMaxMs)} ms, all resolved in ${fmtMs(a.totalMs)} ms, RSS +${a.rssGrowthMB.toFixed(1)} MB` +
        (a1 && a1.blocks.length > 0 ? `; 1st block of a process: issued in ${fmtMs(a1.issueMs)} ms, loop max ${fmtMs(a1.delayMaxMs)} ms, RSS +${a1.rssGrowthMB.toFixed(1)} MB` : '') +
        (sync && sync.blocks.length > 0 ? `; sync forward ×${r.calls}: ${fmtMs(sync.totalMs)} ms with the loop blocked` : ''),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Report

/** Outputs differing by more than this from the baseline's are flagged: the peer may compute something else. */
const DIFF_WARN = 1e-4;

function printCase(c: BenchCase, r: CaseResult): void {
  console.log(`\n${describeCase(c)}  [${r.threads} thread(s)]`);
  const expected = r.rows.some((row) => row.expectedRatio !== undefined);
  const rows = r.rows.map((row) => {
    const exp = row.expectedRatio === undefined ? '' : row.expectedRatio.toFixed(2);
    if (row.samplesMs.length === 0) return [row.label, String(row.threads), '0', 'failed', '', '', '', '', '', ...(expected ? [exp] : []), ''];
    const ratio = row.key === row.baseline ? '1.00' : `${fmt3(row.ratio)}${row.baseline !== 'rnnkit' ? ` (vs ${row.baseline})` : ''}`;
    const diff = row.maxAbsDiff === undefined ? '' : `${row.maxAbsDiff.toExponential(1)}${row.maxAbsDiff > DIFF_WARN ? ' !' : ''}`;
    return [
      row.label, String(row.threads), String(row.samplesMs.length), fmtMs(row.medianMs), fmtMs(row.minMs),
      fmt3(row.sequencesPerSecond), fmt3(row.gflops), fmtPeak(row.peakFraction), ratio, ...(expected ? [exp] : []), diff,
    ];
  });
  const header = [
    'implementation', 'thr', 'n', 'median ms', 'min ms', 'seq/s', 'GFLOP/s', '% peak', 'ms / rnnkit ms', ...(expected ? ['expected'] : []), 'max|Δ| out',
  ];
  console.log(table(header, rows, 'l' + 'r'.repeat(header.length - 1)).split('\n').map((l) => `  ${l}`).join('\n'));
  for (const row of r.rows) if (row.error) console.log(`  ! ${row.label}: ${row.error}`);
  for (const row of r.rows) {
    if (row.maxAbsDiff !== undefined && row.maxAbsDiff > DIFF_WARN) {
      console.log(`  ! ${row.label}: output differs from ${row.baseline}'s by ${row.maxAbsDiff.toExponential(2)}: not the same function?`);
    }
  }
  for (const n of r.notes) console.log(`  - ${n}`);
}

function fmtPeak(f: number | undefined): string {
  return f === undefined || !Number.isFinite(f) ? '' : `${(100 * f).toFixed(f >= 0.1 ? 0 : 1)}%`;
}

function printSummary(results: CaseResult[], peak?: PeakInfo): void {
  const order = ['rnnkit', 'rnnkit-rb', 'onnxruntime', 'tfjs-cpu', 'tfjs-wasm', 'torch', 'torch-best', 'rnnkit-js', 'rnnkit-len', 'rnnkit-drop'];
  const rank = (k: string) => (order.includes(k) ? order.indexOf(k) : order.length);
  const keys: string[] = [];
  for (const r of results) for (const row of r.rows) if (!keys.includes(row.key)) keys.push(row.key);
  keys.sort((a, b) => rank(a) - rank(b));
  const rows = results.map((r) => [
    r.id,
    ...(peak ? [fmtPeak(r.rows.find((x) => x.key === 'rnnkit')?.peakFraction)] : []),
    ...keys.map((k) => {
      const row = r.rows.find((x) => x.key === k);
      if (!row || row.samplesMs.length === 0) return '';
      if (row.key === row.baseline) return fmtMs(row.medianMs);
      return `${fmtMs(row.medianMs)} (${fmt3(row.ratio)}×${row.expectedRatio !== undefined ? `, exp ${row.expectedRatio.toFixed(2)}×` : ''})`;
    }),
  ]);
  console.log(
    '\nSummary: median ms per call (ratio = peer ms / rnnkit ms; GRU tfjs rows against rnnkit-rb; D2v/D2d against their own ' +
      'interleaved plain-D2 row, in the rnnkit column' +
      (peak ? `; rnnkit % peak = its GFLOP/s / the ${fmt3(peak.fmaPeakGflopsAll)} GFLOP/s FMA peak on ${peak.threads} thread(s)` : '') +
      (keys.includes('torch-best') ? "; torch = set_num_threads(--threads) in this environment, torch-best = the searched configuration below" : '') +
      ')',
  );
  const header = ['case', ...(peak ? ['rnnkit % peak'] : []), ...keys];
  console.log(table(header, rows, 'l' + 'r'.repeat(header.length - 1)));
  const searched = results.filter((r) => r.torchSearch);
  if (searched.length > 0) {
    console.log('PyTorch best configuration per case (quick search; the torch-best column times the winner in the rounds):');
    for (const r of searched) {
      const w = r.torchSearch!.entries.find((e) => e.key === r.torchSearch!.winner);
      const def = r.rows.find((x) => x.key === 'torch'), best = r.rows.find((x) => x.key === 'torch-best');
      console.log(
        `  ${r.id}: ${w ? w.label : 'none ran'}` +
          (best && Number.isFinite(best.medianMs) ? `: ${fmtMs(best.medianMs)} ms` : '') +
          (def && Number.isFinite(def.medianMs) ? ` (default set_num_threads(${def.threads}): ${fmtMs(def.medianMs)} ms)` : ''),
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (process.argv[2] === EL_CHILD_FLAG) {
    await eventLoopChild(process.argv[3]);
    return;
  }
  let s: Settings;
  try {
    s = parseSettings(process.argv.slice(2));
  } catch (err) {
    console.error(`bench: ${err instanceof Error ? err.message : String(err)} (see --help)`);
    process.exit(2);
  }
  setNumThreads(s.threads);
  const machine = describeMachine(s.threads);
  const peers: Peers = { skipped: [] };
  progress(`measuring the machine's FMA peak and packed-GEMM rate (${s.peakMs} ms per figure)`);
  machine.peak = native.measurePeak({ ms: s.peakMs, threads: s.threads });
  peers.peak = machine.peak;

  if (s.ort) {
    try {
      await loadOnnxHelper();
    } catch (err) {
      s.ort = false;
      peers.skipped.push(`onnxruntime-node: cannot be loaded (${String(err)})`);
    }
  }
  if (s.tfjs) {
    try {
      await activateTfBackend('cpu');
    } catch (err) {
      s.tfjs = s.wasm = false;
      peers.skipped.push(`tfjs: cannot be loaded (${String(err)})`);
    }
  }
  if (s.wasm) {
    try {
      const w = await wasmBackendInfo();
      machine.versions['tfjs-wasm backend'] = `${w.threads} thread(s), SIMD ${w.simd ? 'on' : 'off'}, multithreading ${w.multithread ? 'available' : 'not available'}`;
    } catch (err) {
      s.wasm = false;
      peers.skipped.push(`tfjs-wasm: backend cannot be initialised (${String(err)})`);
    }
  }
  if (s.torch) {
    try {
      progress(`starting ${s.python} bench/torch_bench.py`);
      const { peer, info } = await TorchPeer.start(s.python);
      peers.torch = peer;
      peers.torchLabel = `torch ${info.torch}`;
      machine.versions.torch = `${info.torch} (python ${info.python})`;
    } catch (err) {
      peers.skipped.push(`PyTorch: not measured (${err instanceof Error ? err.message : String(err)})`);
    }
    if (peers.torch && s.torchSearch) {
      peers.torchSearch = [];
      for (const config of TORCH_SEARCH_CONFIGS) {
        try {
          progress(`starting a python child for ${torchConfigLabel(config)}`);
          const { peer } = await TorchPeer.start(s.python, undefined, torchConfigEnv(config));
          peers.torchSearch.push({ config, peer });
        } catch (err) {
          peers.skipped.push(`PyTorch configuration ${torchConfigLabel(config)}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    } else if (peers.torch) peers.skipped.push("PyTorch's best configuration: --no-torch-search");
  } else peers.skipped.push('PyTorch: --no-torch');
  if (!s.ort) peers.skipped.push('onnxruntime-node: not measured');
  if (!s.tfjs) peers.skipped.push('tfjs: not measured');
  else if (!s.wasm) peers.skipped.push('tfjs-wasm: not measured');

  printMachine(machine);
  if (s.tiny) console.log('mode:     --tiny (shrunken shapes and tiny repetition counts: a code-path check, not a measurement)');
  else if (s.quick) console.log('mode:     --quick (tiny repetition counts: a smoke test, not a measurement)');
  console.log(
    `method:   per case, implementations interleaved in ${s.rounds} rounds (blocks of ~${s.blockMs} ms, ` +
      `budget ${s.budgetMs / 1000} s each; tfjs-cpu ${s.tfjsReps} timed call(s) after 1 warm-up); median per call`,
  );
  if (peers.torchSearch && peers.torchSearch.length > 0) {
    console.log(
      `torch:    row 'torch' = set_num_threads(${s.threads}) in this environment; row 'torch-best' = per case the fastest of ` +
        `${peers.torchSearch.length} configurations (set_num_threads {1,2} × OPENBLAS/OMP_NUM_THREADS {1,2} × OPENBLAS_CORETYPE ` +
        `{unset,Haswell}, each in its own python child; 1 warm-up + up to ${s.torchSearchCalls} quick call(s)), then timed in the rounds`,
    );
  }
  for (const k of peers.skipped) console.log(`skipped:  ${k}`);

  const results: CaseResult[] = [];
  const eventLoop: EventLoopResult[] = [];
  try {
    for (const c of s.cases) {
      if (c.kind === 'eventLoop') {
        const r = await runEventLoopCase(c, s);
        eventLoop.push(r);
        printEventLoop(c, r);
        continue;
      }
      const r = await runCase(c, s, peers);
      relateToEarlierCase(c, r, results);
      results.push(r);
      printCase(c, r);
    }
  } finally {
    await peers.torch?.close();
    for (const { peer } of peers.torchSearch ?? []) await peer.close();
  }
  machine.loadAverageEnd = os.loadavg().map((v) => Math.round(v * 100) / 100);
  if (results.length > 0) printSummary(results, machine.peak);
  if (eventLoop.length > 0) {
    console.log('\nEvent loop (medians over the blocks):');
    printEventLoopSummary(eventLoop);
  }
  console.log(`\nload average at end: ${machine.loadAverageEnd.join(' ')}; total ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  if (s.json) {
    const { cases: _cases, ...settings } = s;
    const rounded = results.map((r) => ({
      ...r,
      rows: r.rows.map((row) => ({ ...row, samplesMs: row.samplesMs.map((v) => Math.round(v * 1e4) / 1e4) })),
    }));
    const out = { machine, settings: { ...settings, cases: s.cases.map((c) => c.id) }, skipped: peers.skipped, results: rounded, eventLoop };
    fs.writeFileSync(s.json, `${JSON.stringify(out, null, 1)}\n`);
    console.log(`results written to ${s.json}`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
