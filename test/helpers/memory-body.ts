/**
 * One inference forward's peak memory, in a child process (see test/memory.test.ts): builds the
 * layer, runs a 2-step forward (prepares the native weights, starts the pool), allocates the input,
 * collects garbage, resets the kernel's peak-RSS mark (Linux: /proc/self/clear_refs ← 5, as
 * bench/scale.ts does), runs the measured forward and reads the peak since the reset (VmHWM).
 * Prints `ok: {json}` with the growth (peak − RSS before) and the input and output bytes, or
 * `ok: {"unsupported":…}` where the peak cannot be reset.
 *
 *   node --expose-gc --import tsx test/helpers/memory-body.ts <layers> <steps> [batch] [inputSize] [units]
 */
import fs from 'node:fs';

import { LSTM, Random, setNumThreads, Tensor } from '../../lib/index.js';

const [layers, T, B = 32, I = 64, H = 256] = process.argv.slice(2).map(Number);
setNumThreads(2);
const layer = new LSTM({ inputSize: I, units: H, numLayers: layers, returnSequences: false, seed: 1 });
const input = (steps: number, seed: number) => {
  const rng = new Random(seed);
  const a = new Float32Array(B * steps * I);
  for (let i = 0; i < a.length; i++) a[i] = rng.uniform(-1, 1);
  return Tensor.from(a, [B, steps, I]);
};
layer.forward(input(2, 7));
const x = input(T, 8);
(globalThis as { gc?: () => void }).gc?.();
let reset = false;
try {
  fs.writeFileSync('/proc/self/clear_refs', '5');
  reset = true;
} catch {
  // not Linux, or not allowed
}
const rssKB = () => Number(/^VmRSS:\s*(\d+) kB$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]);
const hwmKB = () => Number(/^VmHWM:\s*(\d+) kB$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]);
if (!reset || !Number.isFinite(rssKB())) {
  console.log(`ok: ${JSON.stringify({ unsupported: 'no /proc/self/clear_refs' })}`);
} else {
  const before = rssKB() * 1024;
  const { output } = layer.forward(x);
  const peak = hwmKB() * 1024;
  console.log(`ok: ${JSON.stringify({ layers, T, B, I, H, before, peak, growth: peak - before, inputBytes: x.data.byteLength, outputBytes: output.data.byteLength })}`);
}
