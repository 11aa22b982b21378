/**
 * Child body of test/native-bytes.test.ts: what V8 is told of the native memory of training runs
 * (liveObjects().reportedBytes), in a loop that releases its runs and in one that drops them.
 *
 * 1. released: 30 training forwards of an LSTM(128 → 256) over 32 × 50 steps (a ~10 MB run each),
 *    each released after its backward: nothing is reported at any point (every byte stays under
 *    the budget), and the live bytes return to where they started.
 * 2. dropped: the same forwards without release(), turning the event loop after each (where the
 *    collector's finalizers run), until the runs' bytes have passed the budget three times over or
 *    400 calls: V8 must be told of what exceeds the budget (reportedBytes = envBytes − budget
 *    whenever envBytes is above it), and it must collect them — the live run bytes stay bounded.
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

let calls = 0, maxEnv = 0, maxReported = 0, collected = 0, mismatch = '';
let created = 0;
while (calls < 400) {
  layer.forward(x, { training: true });  // the run is dropped
  created += runBytes;
  calls++;
  const o = native.liveObjects();
  const want = Math.max(0, o.envBytes - budget);
  if (o.reportedBytes !== want && !mismatch) mismatch = `call ${calls}: envBytes ${o.envBytes}, reportedBytes ${o.reportedBytes}, expected ${want}`;
  maxEnv = Math.max(maxEnv, o.envBytes);
  maxReported = Math.max(maxReported, o.reportedBytes);
  await turn();
  if (created >= 3 * budget) break;
}
collected = Math.round((created + start.envBytes - native.liveObjects().envBytes) / runBytes);
if (mismatch) throw new Error(`dropped runs: ${mismatch}`);
if (maxReported === 0) throw new Error(`dropped runs: ${calls} runs of ${runBytes} bytes and nothing was reported to V8`);
if (collected === 0) throw new Error(`dropped runs: none of ${calls} dropped runs was collected`);
console.log(`ok: ${JSON.stringify({ runBytes, budget, calls, created, maxEnvBytes: maxEnv, maxReported, collected })}`);
