// How rnnkit's LSTM forward scales (npm run bench:scale): time against the sequence length T and the
// batch B, and the peak resident memory of inference at T = 50, 500 and 5000 (each in a fresh
// process). Writes bench/scale-T.svg and bench/scale-B.svg (vega-lite, rendered in Node) and the
// figures to bench/SCALE.md.
//   node --import tsx bench/scale.ts [--quick] [--threads 2] [--rounds 5] [--block-ms 250] [--out DIR]
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import type { TopLevelSpec } from 'vega-lite';
import { LSTM, Random, setNumThreads, Tensor } from '../lib/index.js';
import { renderSvg } from '../lib/lab/charts.js';
import { gitDescription } from './machine.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const SCRIPT = fileURLToPath(import.meta.url);
const RSS_CHILD = '--rss-child';

const I = 128, H = 256;
const T_SERIES = [50, 100, 200, 400, 800, 1600];
const T_SERIES_BATCH = 64;
const B_SERIES = [1, 4, 16, 64, 256];
const B_SERIES_STEPS = 100;
const RSS_STEPS = [50, 500, 5000];
const RSS_BATCH = 64;
const MB = 2 ** 20;

function makeLayer(returnSequences: boolean): LSTM {
  return new LSTM({ inputSize: I, units: H, returnSequences, seed: 1 });
}

function randomInput(B: number, T: number, seed: number): Tensor {
  const rng = new Random(seed);
  const a = new Float32Array(B * T * I);
  for (let i = 0; i < a.length; i++) a[i] = rng.uniform(-1, 1);
  return Tensor.from(a, [B, T, I]);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmt(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return '—';
  if (Math.abs(v) >= 100) return v.toFixed(1);
  if (Math.abs(v) >= 10) return v.toFixed(2);
  return v.toPrecision(digits);
}

// ---- Timing -----------------------------------------------------------------------------------

interface Point {
  series: 'T' | 'B';
  B: number;
  T: number;
  x: Tensor;
  samplesMs: number[];
  estimateMs: number;
  medianMs: number;
  minMs: number;
}

function timeSeries(threads: number, rounds: number, blockMs: number, progress: (m: string) => void): Point[] {
  setNumThreads(threads);
  const layer = makeLayer(true);
  const points: Point[] = [
    ...T_SERIES.map((T) => ({ series: 'T' as const, B: T_SERIES_BATCH, T })),
    ...B_SERIES.map((B) => ({ series: 'B' as const, B, T: B_SERIES_STEPS })),
  ].map((p, i) => ({ ...p, x: randomInput(p.B, p.T, 100 + i), samplesMs: [], estimateMs: NaN, medianMs: NaN, minMs: NaN }));
  const call = (p: Point) => {
    const t0 = performance.now();
    layer.forward(p.x);
    return performance.now() - t0;
  };
  for (const p of points) {
    call(p);
    p.estimateMs = call(p);
    progress(`warm-up ${p.series}-series B=${p.B} T=${p.T}: ~${fmt(p.estimateMs)} ms`);
  }
  // Interleaved rounds (each starting at a different point), so that machine drift spreads over all points.
  for (let round = 0; round < rounds; round++) {
    for (let j = 0; j < points.length; j++) {
      const p = points[(j + round) % points.length];
      const calls = Math.max(1, Math.min(100, Math.round(blockMs / p.estimateMs)));
      for (let k = 0; k < calls; k++) p.samplesMs.push(call(p));
    }
    progress(`round ${round + 1}/${rounds} done`);
  }
  for (const p of points) {
    p.medianMs = median(p.samplesMs);
    p.minMs = Math.min(...p.samplesMs);
  }
  return points;
}

/** Least squares y = a + b·x, with R². */
function linearFit(xs: number[], ys: number[]): { a: number; b: number; r2: number } {
  const n = xs.length;
  const mx = xs.reduce((s, v) => s + v, 0) / n, my = ys.reduce((s, v) => s + v, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  const b = sxy / sxx, a = my - b * mx;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += (ys[i] - (a + b * xs[i])) ** 2;
  return { a, b, r2: syy > 0 ? 1 - sse / syy : 1 };
}

// ---- Memory (one fresh process per figure) ----------------------------------------------------

interface RssFigure {
  T: number;
  B: number;
  returnSequences: boolean;
  inputMB: number;
  outputMB: number;
  /** RSS with the layer prepared (one short forward) and the input allocated, before the measured forward. */
  rssBeforeMB: number;
  /** Peak RSS of the process (resourceUsage().maxRSS) before and after the forward (the process's lifetime peak). */
  maxRssBeforeMB: number;
  maxRssMB: number;
  /** Peak RSS during the forward alone: VmHWM after resetting it just before (/proc/self/clear_refs); NaN where unsupported. */
  forwardPeakMB: number;
  rssAfterMB: number;
  forwardMs: number;
}

function rssChild(arg: string): void {
  const { T, B, returnSequences, threads } = JSON.parse(arg) as { T: number; B: number; returnSequences: boolean; threads: number };
  setNumThreads(threads);
  const layer = makeLayer(returnSequences);
  layer.forward(randomInput(B, 2, 7)); // prepares the native weights and starts the pool
  const x = randomInput(B, T, 8);
  (globalThis as { gc?: () => void }).gc?.();
  const maxRssBefore = process.resourceUsage().maxRSS * 1024;
  // Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
  let hwmReset = false;
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    hwmReset = true;
  } catch {
    // not Linux, or not allowed: only maxRSS
  }
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const { output } = layer.forward(x);
  const forwardMs = performance.now() - t0;
  const hwm = /^VmHWM:\s*(\d+) kB$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  const forwardPeakMB = hwmReset && hwm ? (Number(hwm[1]) * 1024) / MB : NaN;
  const fig: RssFigure = {
    T, B, returnSequences,
    inputMB: x.data.byteLength / MB,
    outputMB: output.data.byteLength / MB,
    rssBeforeMB: rssBefore / MB,
    maxRssBeforeMB: maxRssBefore / MB,
    forwardPeakMB,
    maxRssMB: (process.resourceUsage().maxRSS * 1024) / MB,
    rssAfterMB: process.memoryUsage().rss / MB,
    forwardMs,
  };
  console.log(`ok: ${JSON.stringify(fig)}`);
}

function measureRss(threads: number, progress: (m: string) => void): RssFigure[] {
  const figures: RssFigure[] = [];
  for (const returnSequences of [false, true]) {
    for (const T of RSS_STEPS) {
      const arg = JSON.stringify({ T, B: RSS_BATCH, returnSequences, threads });
      const res = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', SCRIPT, RSS_CHILD, arg], {
        cwd: ROOT, encoding: 'utf8', timeout: 300_000, maxBuffer: 16 << 20,
      });
      const line = (res.stdout ?? '').split('\n').find((l) => l.startsWith('ok: '));
      if (res.status !== 0 || !line) {
        throw new Error(`memory child T=${T} returnSequences=${returnSequences} failed (${res.signal ?? `exit ${res.status}`}): ${res.stderr.slice(-2000)}`);
      }
      const fig = JSON.parse(line.slice(4)) as RssFigure;
      figures.push(fig);
      progress(`RSS T=${T} returnSequences=${returnSequences}: before ${fig.rssBeforeMB.toFixed(1)} MB, peak during forward ${fig.forwardPeakMB.toFixed(1)} MB, maxRSS ${fig.maxRssMB.toFixed(1)} MB`);
    }
  }
  return figures;
}

// ---- Charts -----------------------------------------------------------------------------------

function chartSpec(title: string, xTitle: string, xField: string, points: Point[], fit: { a: number; b: number }): TopLevelSpec {
  const measured = points.map((p) => ({ [xField]: xField === 'T' ? p.T : p.B, ms: p.medianMs, min: p.minMs, kind: 'measured (median)' }));
  const xs = measured.map((m) => m[xField] as number);
  const lo = Math.min(...xs), hi = Math.max(...xs);
  const fitted = [lo, hi].map((v) => ({ [xField]: v, ms: fit.a + fit.b * v, kind: 'least-squares line' }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: 520,
    height: 320,
    background: 'white',
    layer: [
      {
        data: { values: fitted },
        mark: { type: 'line', strokeDash: [6, 4] },
        encoding: {
          x: { field: xField, type: 'quantitative', title: xTitle },
          y: { field: 'ms', type: 'quantitative', title: 'ms per forward call' },
          color: { field: 'kind', type: 'nominal', title: null },
        },
      },
      {
        data: { values: measured },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: xField, type: 'quantitative', title: xTitle },
          y: { field: 'ms', type: 'quantitative' },
          color: { field: 'kind', type: 'nominal', title: null },
        },
      },
    ],
  } as TopLevelSpec;
}

// ---- Report -----------------------------------------------------------------------------------

function cpuModel(): string {
  try {
    const out = execFileSync('lscpu', [], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
    const m = /^Model name:\s*(.+)$/m.exec(out);
    if (m) return m[1].trim();
  } catch {
    // no lscpu: fall back to /proc/cpuinfo
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

function fitText(f: { a: number; b: number; r2: number }, v: string): string {
  return `ms = ${fmt(f.a)} + ${fmt(f.b)}·${v}, R² = ${f.r2.toFixed(5)}`;
}

function mdTable(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

async function main(): Promise<void> {
  if (process.argv[2] === RSS_CHILD) {
    rssChild(process.argv[3]);
    return;
  }
  const program = new Command('bench/scale.ts')
    .description("rnnkit LSTM forward: time against T and B, inference peak RSS against T; SVG charts and SCALE.md")
    .option('--quick', 'one round of short blocks (a smoke test, not a measurement)', false)
    .option('--threads <n>', 'rnnkit threads', positiveInt, 2)
    .option('--rounds <n>', 'interleaved rounds over all points', positiveInt, 9)
    .option('--block-ms <ms>', 'target time of one block of calls of one point', positiveInt, 150)
    .option('--out <dir>', 'where scale-T.svg, scale-B.svg and SCALE.md go', HERE)
    .option('--no-memory', 'skip the peak-RSS children')
    .parse();
  const o = program.opts<{ quick: boolean; threads: number; rounds: number; blockMs: number; out: string; memory: boolean }>();
  const rounds = o.quick ? 1 : o.rounds, blockMs = o.quick ? 1 : o.blockMs;
  const t0 = performance.now();
  const progress = (m: string) => process.stderr.write(`[scale ${((performance.now() - t0) / 1000).toFixed(1)}s] ${m}\n`);

  const started = new Date().toISOString();
  const load = os.loadavg().map((v) => v.toFixed(2)).join(' ');
  const points = timeSeries(o.threads, rounds, blockMs, progress);
  const memory = o.memory ? measureRss(o.threads, progress) : [];

  const tPoints = points.filter((p) => p.series === 'T'), bPoints = points.filter((p) => p.series === 'B');
  const tFit = linearFit(tPoints.map((p) => p.T), tPoints.map((p) => p.medianMs));
  const bFit = linearFit(bPoints.map((p) => p.B), bPoints.map((p) => p.medianMs));
  fs.mkdirSync(o.out, { recursive: true });
  const svgT = await renderSvg(chartSpec(`rnnkit LSTM forward, I=${I} H=${H} B=${T_SERIES_BATCH}, ${o.threads} threads: time vs T`, 'T (steps)', 'T', tPoints, tFit));
  const svgB = await renderSvg(chartSpec(`rnnkit LSTM forward, I=${I} H=${H} T=${B_SERIES_STEPS}, ${o.threads} threads: time vs B`, 'B (batch)', 'B', bPoints, bFit));
  fs.writeFileSync(path.join(o.out, 'scale-T.svg'), svgT);
  fs.writeFileSync(path.join(o.out, 'scale-B.svg'), svgB);

  const perStep = (p: Point) => p.medianMs / p.T;
  const perSeq = (p: Point) => p.medianMs / p.B;
  const fitCol = (fit: { a: number; b: number }, v: number, ms: number) => `${(((ms - (fit.a + fit.b * v)) / (fit.a + fit.b * v)) * 100).toFixed(1)}%`;
  const lines: string[] = [];
  lines.push('# rnnkit LSTM forward: scaling in T and B, inference memory');
  lines.push('');
  lines.push(
    `Made by \`npm run bench:scale\` (bench/scale.ts) on ${started}, commit ${gitDescription() ?? 'unknown'}${o.quick ? ' — **--quick: a smoke test, not a measurement**' : ''}.`,
  );
  lines.push('');
  lines.push(
    `Machine: ${cpuModel()} (lscpu model name), ${os.availableParallelism()} logical CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
      `Node.js ${process.version}; load average at start ${load}.`,
  );
  lines.push('');
  lines.push(
    `Layer: \`new LSTM({ inputSize: ${I}, units: ${H}, returnSequences: true })\`, float32, \`forward(x)\` (inference), ${o.threads} rnnkit threads. ` +
      `All ${points.length} points are timed interleaved in ${rounds} round(s) (blocks of ~${blockMs} ms per point) after 2 warm-up calls each; ` +
      'figures are medians per call. The fit is least squares over the medians; "off the line" is (median − fit) / fit.',
  );
  lines.push('');
  lines.push(`## Time against T (B = ${T_SERIES_BATCH})`);
  lines.push('');
  lines.push('![time vs T](scale-T.svg)');
  lines.push('');
  lines.push(
    mdTable(
      ['T', 'calls', 'median ms', 'min ms', 'ms per step', 'off the line'],
      tPoints.map((p) => [String(p.T), String(p.samplesMs.length), fmt(p.medianMs), fmt(p.minMs), fmt(perStep(p)), fitCol(tFit, p.T, p.medianMs)]),
    ),
  );
  lines.push('');
  lines.push(
    `Fit: ms = ${fmt(tFit.a)} + ${fmt(tFit.b)}·T, R² = ${tFit.r2.toFixed(5)}; ms per step from T = ${tPoints[0].T} to ${tPoints.at(-1)!.T}: ` +
      `${fmt(perStep(tPoints[0]))} → ${fmt(perStep(tPoints.at(-1)!))}. On the min ms (the machine's quiet phases): ` +
      `${fitText(linearFit(tPoints.map((p) => p.T), tPoints.map((p) => p.minMs)), 'T')}.`,
  );
  lines.push('');
  lines.push(`## Time against B (T = ${B_SERIES_STEPS})`);
  lines.push('');
  lines.push('![time vs B](scale-B.svg)');
  lines.push('');
  lines.push(
    mdTable(
      ['B', 'calls', 'median ms', 'min ms', 'ms per sequence', 'off the line'],
      bPoints.map((p) => [String(p.B), String(p.samplesMs.length), fmt(p.medianMs), fmt(p.minMs), fmt(perSeq(p)), fitCol(bFit, p.B, p.medianMs)]),
    ),
  );
  lines.push('');
  lines.push(
    `Fit: ms = ${fmt(bFit.a)} + ${fmt(bFit.b)}·B, R² = ${bFit.r2.toFixed(5)}; on the min ms: ` +
      `${fitText(linearFit(bPoints.map((p) => p.B), bPoints.map((p) => p.minMs)), 'B')}. The intercept is the part of a call that does ` +
      'not grow with the batch (per-step hand-offs, the latency of small products); "ms per sequence" shows where batching stops paying.',
  );
  lines.push('');
  if (memory.length > 0) {
    lines.push(`## Inference peak memory against T (B = ${RSS_BATCH})`);
    lines.push('');
    lines.push(
      'Each row is a fresh `node --expose-gc` process: it builds the layer, runs one 2-step forward (prepares the weights, starts the ' +
        'pool), allocates the input, runs a full GC, resets the kernel\'s peak-RSS mark (`/proc/self/clear_refs` ← 5), reads ' +
        '`process.memoryUsage().rss` ("before"), runs the measured `forward(x)`, then reads the peak since the reset (VmHWM, "peak during ' +
        'forward") and `process.resourceUsage().maxRSS` (the peak of the whole process, start-up included, before and after). ' +
        '"growth − output" is what the forward holds at its peak beyond the output array it returns: memory independent of T would ' +
        'keep it flat.',
    );
    lines.push('');
    lines.push(
      mdTable(
        ['T', 'returnSequences', 'input MB', 'output MB', 'RSS before MB', 'peak during forward MB', 'growth MB', 'growth − output MB', 'maxRSS before → after MB', 'forward ms'],
        memory.map((m) => [
          String(m.T), String(m.returnSequences), m.inputMB.toFixed(1), m.outputMB.toFixed(2), m.rssBeforeMB.toFixed(1), m.forwardPeakMB.toFixed(1),
          (m.forwardPeakMB - m.rssBeforeMB).toFixed(1), (m.forwardPeakMB - m.rssBeforeMB - m.outputMB).toFixed(1),
          `${m.maxRssBeforeMB.toFixed(1)} → ${m.maxRssMB.toFixed(1)}`, fmt(m.forwardMs),
        ]),
      ),
    );
    lines.push('');
  }
  lines.push(`Total ${((performance.now() - t0) / 1000).toFixed(1)} s; load average at end ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}.`);
  lines.push('');
  fs.writeFileSync(path.join(o.out, 'SCALE.md'), lines.join('\n'));
  console.log(lines.join('\n'));
  progress(`wrote ${path.join(o.out, 'scale-T.svg')}, scale-B.svg and SCALE.md`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
