/**
 * Child body of test/native-bytes.test.ts: what V8 is told of the native memory of training runs
 * (liveObjects().reportedBytes), in a loop that releases its runs and in one that drops them.
 *
 * 1. released: 30 training forwards of an LSTM(128 → 256) over 32 × 50 steps (a ~10 MB run each),
 *    each released after its backward: nothing is reported at any point (every byte stays under
 *    the budget), and the live bytes return to where they started.
 * 2. held: the same forwards, the runs kept until they pass the budget by three runs: V8 must be
 *    told of exactly what exceeds it (reportedBytes = envBytes − budget) after every call. Then
 *    half of them released and the rest dropped and collected (gc(): needs --expose-gc): the
 *    reports follow the live bytes down, to nothing.
 * 3. 100 runs of a small layer, held across a turn of the event loop, then dropped, then one more
 *    call and a collection in the same job: all but the newest must be collected.
 *
 * Prints `ok: {json}` with the figures.
 */
import { setImmediate as turn } from 'node:timers/promises';
import { LSTM, Tensor } from '../../lib/index.js';
import { native } from '../../lib/native.js';

const B = 32, T = 50, I = 128, H = 256;
const layer = new LSTM({ inputSize: I, units: H, returnSequences: true, seed: 1 });
const x = Tensor.from(new Float32Array(B * T * I).map((_, k) => Math.sin(k * 0.1)), [B, T, I]);
const dy = Tensor.from(new Float32Array(B * T * H).fill(0.01), [B, T, H]);

layer.forward(x); // prepares the layer's native stack (its bytes count from here on)
const start = native.liveObjects();
const budget = start.unreportedBudget;
let maxReportedReleased = 0;
let runBytes = 0;
for (let i = 0; i < 30; i++) {
  const { run } = layer.forward(x, { training: true });
  runBytes = run!.bytes;
  layer.backward(run!, dy);
  maxReportedReleased = Math.max(maxReportedReleased, native.liveObjects().reportedBytes);
  run!.release();
}
const afterReleased = native.liveObjects();
if (maxReportedReleased !== 0) throw new Error(`released runs: ${maxReportedReleased} bytes were reported to V8 (expected none under the ${budget}-byte budget)`);
if (afterReleased.envBytes !== start.envBytes) throw new Error(`released runs: live bytes ${afterReleased.envBytes}, started at ${start.envBytes}`);

// Held until they pass the budget by three runs: every byte past it must be reported, exactly.
const held: { release(): void }[] = [];
let calls = 0, maxEnv = 0, maxReported = 0, mismatch = '';
const check = (when: string) => {
  const o = native.liveObjects();
  const want = Math.max(0, o.envBytes - budget);
  if (o.reportedBytes !== want && !mismatch) mismatch = `${when}: envBytes ${o.envBytes}, reportedBytes ${o.reportedBytes}, expected ${want}`;
  maxEnv = Math.max(maxEnv, o.envBytes);
  maxReported = Math.max(maxReported, o.reportedBytes);
  return o;
};
while (check(`call ${calls}`).envBytes <= budget + 3 * runBytes && calls < 400) {
  held.push(layer.forward(x, { training: true }).run!);
  calls++;
}
if (mismatch) throw new Error(`held runs: ${mismatch}`);
if (maxReported < 3 * runBytes) throw new Error(`held runs: ${calls} runs of ${runBytes} bytes live, only ${maxReported} bytes reported to V8`);
// Half released, the other half dropped and collected (gc(), then turns of the event loop, where
// the finalizers run): the reports follow the live bytes down to nothing.
const half = held.length >> 1;
for (let i = 0; i < half; i++) {
  held[i].release();
  check(`release ${i}`);
}
held.length = 0;
for (let i = 0; i < 4; i++) {
  (globalThis as { gc?: () => void }).gc!();
  await turn();
}
const end = check('after the collection');
if (mismatch) throw new Error(`released and collected runs: ${mismatch}`);
if (end.envBytes !== start.envBytes || end.reportedBytes !== 0) {
  throw new Error(`after releasing and collecting every run: envBytes ${end.envBytes} (started at ${start.envBytes}), reportedBytes ${end.reportedBytes}`);
}
// 3. Dropped runs of a small layer, more than 64 of them alive at once, then one more call and a
// collection in the same job: every dropped run but the newest must go (the layer's bookkeeping of
// its runs once deref()'d them all at each call, which kept them alive through any collection the
// call's own allocations set off).
const small = new LSTM({ inputSize: 4, units: 4, seed: 2 });
const xs = Tensor.from(new Float32Array(2 * 3 * 4).fill(0.5), [2, 3, 4]);
small.forward(xs);
const runsBefore = native.liveObjects().runs;
const keep: unknown[] = [];
for (let i = 0; i < 100; i++) keep.push(small.forward(xs, { training: true }).run);
await turn();  // (a WeakRef keeps its target alive to the end of the job that made it)
keep.length = 0;
small.forward(xs, { training: true });
(globalThis as { gc?: () => void }).gc!();
for (let i = 0; i < 4; i++) await turn();
const smallLeft = native.liveObjects().runs - runsBefore;
if (smallLeft > 1) throw new Error(`dropped runs: ${smallLeft} of 101 still alive after a collection`);
console.log(`ok: ${JSON.stringify({ runBytes, budget, calls, maxEnvBytes: maxEnv, maxReported, released: half, collected: calls - half, smallLeft })}`);
