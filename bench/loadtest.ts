/**
 * The serving load test (`npm run loadtest`): examples/server/server.ts serving an LSTM(64 → 256)
 * (returnSequences; seeded weights), loaded by autocannon against 127.0.0.1 only, in bounded runs:
 * every connection is one stream posting one step after another (POST /v1/models/big/streams/cN/step,
 * 64 features, the 4 largest outputs back). Two servers are compared at 1, 16, 64 and 256
 * connections: the batcher (--mode batcher) and one call per request (--mode direct: stream.stepAsync),
 * beside the same server running no model (--mode floor: zeros through the same HTTP, routing and
 * JSON code), which measures the most either can serve on this machine, and the least node:http
 * server there is (bare, bench/bare-server.ts: a fixed answer to every POST), which measures what
 * node:http and autocannon cost per request together on these cores. Each configuration gets a
 * fresh server process; reported: requests/s, latency p50/p99, the server's event-loop delay
 * p99/max over the run (perf_hooks.monitorEventLoopDelay), its peak RSS, and the CPU the server
 * and autocannon used during the run, in cores.
 *
 * The per-request server is measured twice: with the library's defaults ('direct'), and in its best
 * configuration on this machine ('direct*'), found first by a search at the largest connection
 * count over the async calls allowed to run at once (RNNKIT_MAX_RUNNING_CALLS 1, 2, 4; the default
 * is cores ÷ native threads) and the engine's batch invariance (on, or off with
 * --no-batch-invariant: Dense layers as one product, float64 batches not padded; for this float32
 * LSTM it changes no work, and the search shows it within noise). The batcher's throughput is
 * compared with both; the target is the tuned one.
 *
 * Then, in this process, the per-step cost of a batched stream step (stepStreams over B streams)
 * against the per-step cost inside one whole-sequence call (layer.forward of [B, 100, 64] / 100),
 * medians of 5 alternating rounds.
 *
 *   node --import tsx bench/loadtest.ts [--duration 5] [--warmup 1] [--connections 1,16,64,256] [--threads 1] [--concurrency 2] [--semi-space 64] [--search-duration 2] [--json out.json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

import { LSTM, Sequential, Tensor, stepStreams } from '../lib/index.js';
import { parseMetrics } from '../examples/server/parse-metrics.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { duration: { type: 'string' }, warmup: { type: 'string' }, connections: { type: 'string' }, json: { type: 'string' }, threads: { type: 'string' }, concurrency: { type: 'string' }, 'semi-space': { type: 'string' }, 'search-duration': { type: 'string' } },
});
/** The server's native threads (--threads; default 1: the other core is left to the event loop and autocannon). */
const threads = values.threads ?? '1';
/** Batches in flight in the batcher (--concurrency; default 2: the event loop answers one batch while the next computes). */
const concurrency = values.concurrency ?? '2';
/** The servers' V8 young-generation semi-space, MB (--semi-space; the same for every mode). */
const semiSpaceMB = Number(values['semi-space'] ?? 64);
if (!(Number.isInteger(semiSpaceMB) && semiSpaceMB >= 1 && semiSpaceMB <= 1024)) throw new Error('--semi-space: a whole number of MB in [1, 1024]');
const duration = Number(values.duration ?? 5), warmup = Number(values.warmup ?? 1);
/** Seconds per configuration of the per-request server's search (--search-duration; after a 0.5 s warm-up). */
const searchDuration = Number(values['search-duration'] ?? 2);
if (!(searchDuration > 0 && searchDuration <= 60)) throw new Error('--search-duration in (0, 60] seconds');
const connectionsList = (values.connections ?? '1,16,64,256').split(',').map(Number);
if (!(duration > 0 && duration <= 60) || !(warmup >= 0 && warmup <= 10)) throw new Error('--duration in (0, 60], --warmup in [0, 10] seconds');

/** A server configuration beyond the mode: async calls allowed at once, batch invariance. */
interface Config {
  /** RNNKIT_MAX_RUNNING_CALLS; undefined: the library's default. */
  runningCalls?: number;
  batchInvariant: boolean;
}
const DEFAULTS: Config = { batchInvariant: true };
const describeConfig = (c: Config) => `running calls ${c.runningCalls ?? 'default'}, batch invariance ${c.batchInvariant ? 'on' : 'off'}`;

interface Row {
  mode: string;
  config: string;
  connections: number;
  rps: number;
  p50: number;
  p99: number;
  loopP99: number;
  loopMax: number;
  peakRssMB: number;
  errors: number;
  non2xx: number;
  meanBatch: number;
  /** Error answers by status code, from the server's rnnkit_requests_total. */
  statuses: string;
  /** Share of the CPU time the hypervisor stole during the run (/proc/stat steal). */
  steal: number;
  /** CPU the server process used during the run, in cores (1 = one core busy all the time). */
  serverCpu: number;
  /** CPU this process (autocannon, the load generator) used during the run, in cores. */
  loaderCpu: number;
}

async function startServer(dir: string, mode: string, config: Config): Promise<{ child: ChildProcess; url: string }> {
  const env = { ...process.env };
  if (config.runningCalls === undefined) delete env.RNNKIT_MAX_RUNNING_CALLS;
  else env.RNNKIT_MAX_RUNNING_CALLS = String(config.runningCalls);
  // A young generation of 64 MB semi-spaces (V8's default is 16 MB): every request in flight is
  // alive at each scavenge, so fewer scavenges cost less (the batcher holds hundreds; see README).
  const args = mode === 'bare'
    ? [path.join(root, 'bench', 'bare-server.ts'), '--port', '0', '--host', '127.0.0.1']
    : [path.join(root, 'examples', 'server', 'server.ts'), '--port', '0', '--host', '127.0.0.1',
      '--mode', mode, '--threads', threads, '--concurrency', concurrency, '--max-batch', '256', '--max-queue', '100000', '--model', `big=${dir}`,
      ...(config.batchInvariant ? [] : ['--no-batch-invariant'])];
  const child = spawn(process.execPath, [`--max-semi-space-size=${semiSpaceMB}`, '--import', 'tsx', ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening`)));
  });
  return { child, url };
}

let runs = 0;
function load(url: string, connections: number, seconds: number, body: string): Promise<autocannon.Result> {
  // Fresh stream names per run: the warm-up's last requests may still be computing when the run starts.
  const run = runs++;
  let next = 0;
  return autocannon({
    url,
    connections,
    duration: seconds,
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
    setupClient: (client: autocannon.Client) => {
      const id = next++;
      // setRequests, not setRequest: the latter changes only the current request, and the client
      // goes back to the default path once it restarts its request list.
      client.setRequests([{ method: 'POST', path: `/v1/models/big/streams/r${run}c${id}/step?top=4`, body, headers: { 'content-type': 'application/json' } }]);
    },
  } as autocannon.Options);
}

/** A process's CPU time so far (user + system, seconds) from /proc/<pid>/stat; NaN where unreadable. */
function processCpuSeconds(pid: number | undefined): number {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;  // utime, stime in clock ticks (USER_HZ = 100 on Linux)
  } catch {
    return NaN;
  }
}

/** CPU time counters from /proc/stat (jiffies): total and stolen by the hypervisor. */
function cpuTimes(): { total: number; steal: number } {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return { total: f.reduce((a, b) => a + b, 0), steal: f[7] ?? 0 };
  } catch {
    return { total: NaN, steal: NaN };
  }
}

async function measure(dir: string, mode: string, connections: number, body: string, config: Config = DEFAULTS, label = mode, seconds = duration, warm = warmup): Promise<Row> {
  const { child, url } = await startServer(dir, mode, config);
  try {
    const bare = mode === 'bare';  // (no metrics: the bare server answers every request alike)
    if (warm > 0) await load(url, connections, warm, body);
    if (!bare) await fetch(`${url}/admin/reset-loop-delay`, { method: 'POST' });
    const before = bare ? [] : parseMetrics(await (await fetch(`${url}/metrics`)).text());
    const c0 = cpuTimes(), s0 = processCpuSeconds(child.pid), l0 = process.cpuUsage(), t0 = performance.now();
    const r = await load(url, connections, seconds, body);
    const c1 = cpuTimes(), s1 = processCpuSeconds(child.pid), l1 = process.cpuUsage(l0), wall = (performance.now() - t0) / 1000;
    const m = bare ? [] : parseMetrics(await (await fetch(`${url}/metrics`)).text());
    const get = (name: string, labels: Record<string, string> = {}, from = m) =>
      from.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? NaN;
    const batches = get('rnnkit_batch_size_count', { model: 'big' }) - (get('rnnkit_batch_size_count', { model: 'big' }, before) || 0);
    const batched = get('rnnkit_batch_size_sum', { model: 'big' }) - (get('rnnkit_batch_size_sum', { model: 'big' }, before) || 0);
    return {
      mode: label, config: describeConfig(config), connections, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99,
      loopP99: get('rnnkit_event_loop_delay_seconds', { quantile: '0.99' }) * 1000, loopMax: get('rnnkit_event_loop_delay_seconds', { quantile: '1' }) * 1000,
      peakRssMB: get('process_peak_resident_memory_bytes') / 2 ** 20, errors: r.errors, non2xx: r.non2xx,
      meanBatch: batches > 0 ? batched / batches : NaN,
      steal: (c1.steal - c0.steal) / (c1.total - c0.total),
      serverCpu: (s1 - s0) / wall, loaderCpu: (l1.user + l1.system) / 1e6 / wall,
      statuses: m.filter((x) => x.name === 'rnnkit_requests_total' && x.labels.code !== '200').map((x) => `${x.labels.code}×${x.value}`).join(' '),
    };
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

/**
 * Per-step cost: batched stream steps of B streams vs one whole-sequence call over [B, 100, 64], µs
 * per step; the medians of 5 rounds that alternate the two (the machine's speed drifts).
 */
function stepCost(model: Sequential, B: number): { batched: number; inSequence: number } {
  const layer = model.layers[0] as LSTM;
  const streams = Array.from({ length: B }, () => model.openStream());
  const xs = streams.map((_, i) => Tensor.from(Float32Array.from({ length: 64 }, (_, k) => Math.sin(i + k)), [64]));
  const T = 100;
  const x = Tensor.from(Float32Array.from({ length: B * T * 64 }, (_, k) => Math.sin(k)), [B, T, 64]);
  for (let i = 0; i < 20; i++) stepStreams(streams, xs);
  layer.forward(x);
  const n = B >= 64 ? 100 : 400, reps = B >= 64 ? 5 : 20;
  const batched: number[] = [], inSequence: number[] = [];
  for (let round = 0; round < 5; round++) {
    let t0 = performance.now();
    for (let i = 0; i < n; i++) stepStreams(streams, xs);
    batched.push(((performance.now() - t0) / n) * 1000);
    t0 = performance.now();
    for (let i = 0; i < reps; i++) layer.forward(x);
    inSequence.push(((performance.now() - t0) / reps / T) * 1000);
  }
  const median = (v: number[]) => v.sort((a, b) => a - b)[v.length >> 1];
  return { batched: median(batched), inSequence: median(inSequence) };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-loadtest-'));
try {
  const model = new Sequential([new LSTM({ units: 256, returnSequences: true })], { seed: 3, name: 'lstm256', inputShape: [null, 64] });
  model.build();
  await model.save(dir);
  const body = JSON.stringify({ x: Array.from({ length: 64 }, (_, k) => Math.round(Math.sin(k) * 1e4) / 1e4) });
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`# rnnkit serving load test: LSTM(64 → 256), ${os.cpus().length} cores (${cpu}), node ${process.version}, ${duration} s per run (+${warmup} s warm-up), server native threads ${threads}, batcher concurrency ${concurrency}, server --max-semi-space-size=${semiSpaceMB}`);
  // The step costs first, while this process has not yet run autocannon (after the HTTP runs its
  // heap holds their results and both figures come out 10–30 % slower, the batched one more).
  const costs: { B: number; batched: number; inSequence: number }[] = [];
  for (const B of [1, 16, 64, 256]) costs.push({ B, ...stepCost(model, B) });
  // The per-request server at its best: a short search at the largest connection count.
  const searchAt = Math.max(...connectionsList);
  const candidates: Config[] = [1, 2, 4].flatMap((runningCalls) => [true, false].map((batchInvariant) => ({ runningCalls, batchInvariant })));
  const search: Row[] = [];
  for (const config of candidates) {
    const row = await measure(dir, 'direct', searchAt, body, config, 'direct', searchDuration, 0.5);
    search.push(row);
    console.log(`search: direct ${searchAt} conn, ${row.config}: ${row.rps.toFixed(0)} req/s`);
  }
  let won = 0;
  search.forEach((r, i) => { if (r.rps > search[won].rps) won = i; });
  const best = candidates[won];
  console.log(`direct*: ${describeConfig(best)}`);
  const rows: Row[] = [];
  for (const connections of connectionsList) {
    for (const [mode, config, label] of [['direct', DEFAULTS, 'direct'], ['direct', best, 'direct*'], ['batcher', DEFAULTS, 'batcher'], ['floor', DEFAULTS, 'floor'], ['bare', DEFAULTS, 'bare']] as const) {
      const row = await measure(dir, mode, connections, body, config, label);
      rows.push(row);
      if (row.non2xx > 0 || row.errors > 0) console.error(`warning: ${label} at ${connections} connections: ${row.errors} errors, ${row.non2xx} non-2xx responses (server: ${row.statuses})`);
      console.log(`${label.padEnd(8)} ${String(connections).padStart(4)} conn: ${row.rps.toFixed(0).padStart(6)} req/s  p50 ${row.p50} ms  p99 ${row.p99} ms  loop p99 ${row.loopP99.toFixed(2)} ms max ${row.loopMax.toFixed(2)} ms  peak RSS ${row.peakRssMB.toFixed(0)} MB  mean batch ${row.meanBatch.toFixed(1)}  steal ${(100 * row.steal).toFixed(0)}%  cpu server ${row.serverCpu.toFixed(2)} autocannon ${row.loaderCpu.toFixed(2)}  errors ${row.errors} non-2xx ${row.non2xx}`);
    }
  }
  const dash = (v: number, digits: number) => (Number.isNaN(v) ? '–' : v.toFixed(digits));
  console.log('\n| connections | mode | req/s | p50 ms | p99 ms | loop delay p99 ms | loop delay max ms | peak RSS MB | mean batch | CPU stolen | server CPU | autocannon CPU | errors / non-2xx |');
  console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.connections} | ${r.mode} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${dash(r.loopP99, 2)} | ${dash(r.loopMax, 2)} | ${dash(r.peakRssMB, 0)} | ${Number.isNaN(r.meanBatch) ? '–' : r.meanBatch.toFixed(1)} | ${(100 * r.steal).toFixed(0)}% | ${r.serverCpu.toFixed(2)} | ${r.loaderCpu.toFixed(2)} | ${r.errors} / ${r.non2xx} |`);
  }
  console.log(`\ndirect: the library's defaults; direct*: ${describeConfig(best)} (the best of the search above)`);
  console.log('\n| connections | batcher ÷ direct* throughput | batcher ÷ direct | p99 batcher / direct* ms | floor ÷ direct* throughput | bare ÷ direct* throughput | batcher ÷ floor |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of connectionsList) {
    const of = (mode: string) => rows.find((r) => r.mode === mode && r.connections === c)!;
    const d = of('direct'), t = of('direct*'), b = of('batcher'), f = of('floor'), z = of('bare');
    console.log(`| ${c} | ${(b.rps / t.rps).toFixed(2)}× | ${(b.rps / d.rps).toFixed(2)}× | ${b.p99} / ${t.p99} | ${(f.rps / t.rps).toFixed(2)}× | ${(z.rps / t.rps).toFixed(2)}× | ${(100 * b.rps / f.rps).toFixed(0)}% |`);
  }
  console.log('\n| streams B | batched step µs | in-sequence µs per step | ratio |');
  console.log('|---:|---:|---:|---:|');
  for (const c of costs) console.log(`| ${c.B} | ${c.batched.toFixed(1)} | ${c.inSequence.toFixed(1)} | ${(c.batched / c.inSequence).toFixed(2)} |`);
  if (values.json) fs.writeFileSync(values.json, JSON.stringify({ cpu, cores: os.cpus().length, node: process.version, duration, threads, search, best, rows, costs }, null, 2));
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
