// Page faults of small repeated inference calls (the streaming case): `calls` forwards of T = 1,
// B = 256 through LSTM(64 → 256), after a warm-up. Run under perf and subtract a run with 0 calls:
//   perf stat -e page-faults node --import tsx bench/faults.ts 1000 [layer|stack|stack-states|async]
//   perf stat -e page-faults node --import tsx bench/faults.ts 0
// layer: LSTM.forward (returnSequences false); stack: the raw stackForward call (y returned);
// stack-states: stackForward with outputs 'states'; async: stackForwardAsync, one at a time.
// It also prints the minor faults counted by getrusage around the loop (no perf needed).
import { LSTM, Random, setNumThreads, Tensor } from '../lib/index.js';
import { native } from '../lib/native.js';

const calls = Number(process.argv[2] ?? 1000);
const mode = process.argv[3] ?? 'layer';
setNumThreads(Number(process.env.THREADS ?? 2));
const B = 256, T = 1, I = 64, H = 256;
const layer = new LSTM({ inputSize: I, units: H, returnSequences: false, seed: 1 });
const rng = new Random(3);
const data = new Float32Array(B * T * I);
for (let i = 0; i < data.length; i++) data[i] = rng.uniform(-1, 1);
const x = Tensor.from(data, [B, T, I]);
const stack = layer.preparedStack('bench/faults');
const h0 = new Float32Array(B * H), c0 = new Float32Array(B * H);
const call = { steps: T, batch: B, x: data, batchFirst: true, h0, c0 } as const;
async function one(): Promise<void> {
  if (mode === 'layer') layer.forward(x);
  else if (mode === 'stack') native.stackForward(stack as never, call);
  else if (mode === 'stack-states') native.stackForward(stack as never, { ...call, outputs: 'states' });
  else await native.stackForwardAsync(stack as never, call);
}
for (let i = 0; i < 20; i++) await one();
const before = process.resourceUsage().minorPageFault;
for (let i = 0; i < calls; i++) await one();
const faults = process.resourceUsage().minorPageFault - before;
console.log(`${mode}: ${calls} calls, ${faults} minor page faults (getrusage), ${calls ? (faults / calls).toFixed(2) : 0} per call`);
