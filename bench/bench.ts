// Side-by-side benchmark of rnnkit and its peers on the cases of DESIGN §7 (see bench/README.md).
//   node --import tsx bench/bench.ts [--quick] [--cases L1,G1] [--threads 2] [--no-tfjs] [--no-torch] [--json out.json]
// Results go to stdout; one progress line per measurement goes to stderr.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getNumThreads, setNumThreads } from '../lib/index.js';
import { CASES, describeCase, gemmFlops, type BenchCase } from './cases.js';
import { activateTfBackend, loadOnnxHelper, ortImpl, rnnkitImpl, tfjsImpl, wasmBackendInfo, type Impl } from './peers.js';
import { makeProblem } from './problem.js';
import { TorchPeer } from './torch-peer.js';

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

function positiveInt(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name}: expected a positive integer, got '${v}'`);
  return n;
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

function gitDescription(): string | undefined {
  try {
    const opts = { cwd: ROOT, encoding: 'utf8' as const, stdio: ['ignore', 'pipe', 'ignore'] as ['ignore', 'pipe', 'ignore'] };
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], opts).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], opts).trim() !== '';
    return dirty ? `${head} (with uncommitted changes)` : head;
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
  /** max |peer - baseline| over the whole output of one inference forward on the same input and weights. */
  maxAbsDiff?: number;
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
}

const t0 = performance.now();
function progress(msg: string): void {
  process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
}

interface Peers {
  torch?: TorchPeer;
  torchLabel?: string;
  skipped: string[];
}

async function setUpImpls(c: BenchCase, s: Settings, peers: Peers, threads: number, notes: string[]): Promise<Impl[]> {
  progress(`${c.id}: setting up (rnnkit layers, weights, peers)`);
  const p = makeProblem(c);
  const impls: Impl[] = [rnnkitImpl(p, threads)];
  if (c.variants) {
    for (const v of c.variants) impls.push(rnnkitImpl(p, threads, true, v));
    notes.push('variant rows: ratio = variant ms / default LSTM ms (same weights; rnnkit only)');
    return impls;
  }
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
  const impls = await setUpImpls(c, s, peers, threads, notes);
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
        if (impl.baseline === impl.key) reference.set(impl.key, y);
        else {
          const ref = reference.get(impl.baseline);
          if (ref && ref.length === y.length) {
            let d = 0;
            for (let i = 0; i < y.length; i++) {
              const e = Math.abs(y[i] - ref[i]);
              if (Number.isNaN(e)) {
                d = Infinity; // a NaN on either side: flagged like any large difference
                break;
              }
              if (e > d) d = e;
            }
            t.row.maxAbsDiff = d;
          } else if (ref) notes.push(`${impl.key}: output has ${y.length} values, ${impl.baseline} has ${ref.length}`);
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
    if (r.samplesMs.length === 0) continue;
    r.medianMs = median(r.samplesMs);
    r.minMs = Math.min(...r.samplesMs);
    r.sequencesPerSecond = c.batch / (r.medianMs / 1000);
    r.gflops = flops / (r.medianMs / 1000) / 1e9;
  }
  for (const t of tracks) {
    const base = tracks.find((b) => b.impl.key === t.row.baseline)?.row;
    if (base && Number.isFinite(base.medianMs)) t.row.ratio = t.row.medianMs / base.medianMs;
  }
  return {
    id: c.id, title: c.title, batch: c.batch, steps: c.steps, inputSize: c.inputSize, hiddenSize: c.hiddenSize,
    layers: c.layers, bidirectional: c.bidirectional, work: c.work, threads, gflopPerCall: flops / 1e9,
    rows: tracks.map((t) => t.row), notes,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

/** Outputs differing by more than this from the baseline's are flagged: the peer may compute something else. */
const DIFF_WARN = 1e-4;

function printCase(c: BenchCase, r: CaseResult): void {
  console.log(`\n${describeCase(c)}  [${r.threads} thread(s)]`);
  const rows = r.rows.map((row) => {
    if (row.samplesMs.length === 0) return [row.label, String(row.threads), '0', 'failed', '', '', '', '', ''];
    const ratio = row.key === row.baseline ? '1.00' : `${fmt3(row.ratio)}${row.baseline !== 'rnnkit' ? ` (vs ${row.baseline})` : ''}`;
    const diff = row.maxAbsDiff === undefined ? '' : `${row.maxAbsDiff.toExponential(1)}${row.maxAbsDiff > DIFF_WARN ? ' !' : ''}`;
    return [
      row.label, String(row.threads), String(row.samplesMs.length), fmtMs(row.medianMs), fmtMs(row.minMs),
      fmt3(row.sequencesPerSecond), fmt3(row.gflops), ratio, diff,
    ];
  });
  console.log(
    table(['implementation', 'thr', 'n', 'median ms', 'min ms', 'seq/s', 'GFLOP/s', 'ms / rnnkit ms', 'max|Δ| out'], rows, 'lrrrrrrrr')
      .split('\n').map((l) => `  ${l}`).join('\n'),
  );
  for (const row of r.rows) if (row.error) console.log(`  ! ${row.label}: ${row.error}`);
  for (const row of r.rows) {
    if (row.maxAbsDiff !== undefined && row.maxAbsDiff > DIFF_WARN) {
      console.log(`  ! ${row.label}: output differs from ${row.baseline}'s by ${row.maxAbsDiff.toExponential(2)}: not the same function?`);
    }
  }
  for (const n of r.notes) console.log(`  - ${n}`);
}

function printSummary(results: CaseResult[]): void {
  const order = ['rnnkit', 'rnnkit-rb', 'onnxruntime', 'tfjs-cpu', 'tfjs-wasm', 'torch'];
  const rank = (k: string) => (order.includes(k) ? order.indexOf(k) : order.length);
  const keys: string[] = [];
  for (const r of results) for (const row of r.rows) if (!keys.includes(row.key)) keys.push(row.key);
  keys.sort((a, b) => rank(a) - rank(b));
  const rows = results.map((r) => [
    r.id,
    ...keys.map((k) => {
      const row = r.rows.find((x) => x.key === k);
      if (!row || row.samplesMs.length === 0) return '';
      return row.key === row.baseline ? fmtMs(row.medianMs) : `${fmtMs(row.medianMs)} (${fmt3(row.ratio)}×)`;
    }),
  ]);
  console.log('\nSummary: median ms per call (ratio = peer ms / rnnkit ms; GRU tfjs rows against rnnkit-rb)');
  console.log(table(['case', ...keys], rows, 'l' + 'r'.repeat(keys.length)));
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
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
  for (const k of peers.skipped) console.log(`skipped:  ${k}`);

  const results: CaseResult[] = [];
  try {
    for (const c of s.cases) {
      const r = await runCase(c, s, peers);
      results.push(r);
      printCase(c, r);
    }
  } finally {
    await peers.torch?.close();
  }
  machine.loadAverageEnd = os.loadavg().map((v) => Math.round(v * 100) / 100);
  printSummary(results);
  console.log(`\nload average at end: ${machine.loadAverageEnd.join(' ')}; total ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  if (s.json) {
    const { cases: _cases, ...settings } = s;
    const rounded = results.map((r) => ({
      ...r,
      rows: r.rows.map((row) => ({ ...row, samplesMs: row.samplesMs.map((v) => Math.round(v * 1e4) / 1e4) })),
    }));
    const out = { machine, settings: { ...settings, cases: s.cases.map((c) => c.id) }, skipped: peers.skipped, results: rounded };
    fs.writeFileSync(s.json, `${JSON.stringify(out, null, 1)}\n`);
    console.log(`results written to ${s.json}`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
