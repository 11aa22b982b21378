/**
 * 50 concurrent forwardAsync calls on an LSTM(1024 → 1024), in a child process (see
 * test/serve-memory.test.ts): the layer's prepared weights are shared by every call, so while the
 * calls are in flight the resident memory grows by the calls' own buffers only — never by a
 * weight set per call (the earlier design copied every weight buffer per async call: +3.1 GB here).
 *
 * Per call the buffers are input- and output-sized: the batch-first input, its time-major copy,
 * the worker's private copy and the packed rows (4 × input), and the time-major outputs, their
 * packed rows and the batch-first result (3 × output). The bound is therefore
 *   4 × Σ inputs + 3 × Σ outputs + 64 MB (the runtime's own noise: heap, stacks, allocator)
 * with one weight set (here 32 MB of parameters, 64 MB prepared) already in the baseline.
 *
 * Printed, not asserted (timing is never asserted in npm test): how long issuing the 50 calls held
 * the event loop, and the event-loop delay while they ran (p99, max); `npm run bench` reports them.
 *
 *   node --expose-gc --import tsx test/helpers/serve-memory-body.ts [--calls 50] [--units 1024]
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';

import { LSTM, Tensor } from '../../lib/index.js';
import { native } from '../../lib/native.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const calls = arg('calls', 50), H = arg('units', 1024), B = arg('batch', 4), T = arg('steps', 16);
const MB = 1 << 20;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('serve-memory-body: run with --expose-gc');

/** Resident memory from /proc (the current value, not the peak). */
function rss(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

const layer = new LSTM({ inputSize: H, units: H, seed: 1, returnSequences: true });
const inputs = Array.from({ length: calls }, (_, i) => Tensor.from(new Float32Array(B * T * H).fill(0.01 * (i % 7)), [B, T, H]));
await layer.forwardAsync(inputs[0]); // prepares the weights once (and warms up the pool)
gc();
await new Promise((r) => setTimeout(r, 20));
gc();
const before = rss();
const stacksBefore = native.liveObjects().stacks;
let peak = before;
const sampler = setInterval(() => { peak = Math.max(peak, rss()); }, 2);
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
const t0 = performance.now();
const pending = inputs.map((x) => layer.forwardAsync(x));
const issueMs = performance.now() - t0;
const live = native.liveObjects();
const results = await Promise.all(pending);
peak = Math.max(peak, rss());
clearInterval(sampler);
delay.disable();

const inputBytes = calls * B * T * H * 4, outputBytes = calls * B * T * H * 4;
const bound = 4 * inputBytes + 3 * outputBytes + 64 * MB;
const growth = peak - before;
const figures = `${calls} calls, LSTM(${H} → ${H}), batch ${B}, steps ${T}: issued in ${issueMs.toFixed(1)} ms; ` +
  `event-loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms; ` +
  `rss ${(before / MB).toFixed(0)} → peak ${(peak / MB).toFixed(0)} MB (+${(growth / MB).toFixed(1)} MB; bound ${(bound / MB).toFixed(0)} MB = 4×inputs ${(inputBytes / MB).toFixed(1)} + 3×outputs ${(outputBytes / MB).toFixed(1)} + 64); ` +
  `prepared stacks alive ${live.stacks} (${(live.stackBytes / MB).toFixed(0)} MB)`;
if (results.length !== calls || results.some((r) => r.output.shape.join() !== [B, T, H].join())) throw new Error(`wrong results: ${figures}`);
if (live.stacks !== stacksBefore) throw new Error(`a prepared weight set per call: ${live.stacks} stacks alive, ${stacksBefore} before; ${figures}`);
if (growth > bound) throw new Error(`memory grew beyond the calls' own buffers: ${figures}`);
console.log(`ok: ${figures}`);
