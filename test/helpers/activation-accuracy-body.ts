/**
 * The child side of test/activation-accuracy.test.ts: evaluates the float32 sigmoid and tanh of the
 * fused step kernels (whichever build RNNKIT_ISA picks) on a dense grid, through layers whose output
 * is exactly one activation:
 *   tanh:    SimpleRNN, I = H = 1, W_ih = 1, W_hh = 0, no bias, h0 = 0  → h = tanh(x);
 *   sigmoid: LSTM,      I = H = 1, forget gate σ(30) = 1 in float32, block input tanh(0) = 0,
 *            output gate σ(x), c0 = 20 so tanh(c) = 1 in float32       → h = σ(x).
 * Compares with double precision and prints `ok: ` and JSON { isa, tanh: {...}, sigmoid: {...} }.
 */
import { cpuInfo, LSTM, SimpleRNN, Tensor } from '../../lib/index.js';

// The grid: 2^20 points evenly over [-20, 20], 4097 over [-100, 100], and ±(2^-k) for small |x|.
const xs: number[] = [];
const N = 1 << 20;
for (let k = 0; k <= N; k++) xs.push(-20 + (40 * k) / N);
for (let k = 0; k <= 4096; k++) xs.push(-100 + (200 * k) / 4096);
for (let e = 1; e <= 126; e++) xs.push(2 ** -e, -(2 ** -e));
const x32 = Float32Array.from(xs);
const B = x32.length;

function stats(got: ArrayLike<number>, ref: (x: number) => number) {
  let maxAbs = 0, maxRel = 0, atAbs = 0, atRel = 0, nonFinite = 0;
  for (let k = 0; k < B; k++) {
    const x = x32[k], want = ref(x), g = got[k];
    if (!Number.isFinite(g)) {
      nonFinite++;
      continue;
    }
    const abs = Math.abs(g - want);
    if (abs > maxAbs) { maxAbs = abs; atAbs = x; }
    if (Math.abs(want) > 1e-30) {
      const rel = abs / Math.abs(want);
      if (rel > maxRel) { maxRel = rel; atRel = x; }
    }
  }
  return { points: B, maxAbs, atAbs, maxRel, atRel, nonFinite };
}

const x = Tensor.from(x32, [B, 1, 1]);
const rnn = new SimpleRNN({ inputSize: 1, units: 1, useBias: false });
const rsd = rnn.stateDict();
rsd.weight_ih_l0.data[0] = 1;
rsd.weight_hh_l0.data[0] = 0;
rnn.loadStateDict(rsd);
const tanh = stats(rnn.forward(x).output.data, Math.tanh);

const lstm = new LSTM({ inputSize: 1, units: 1 });
const lsd = lstm.stateDict();
lsd.weight_ih_l0.data.set([0, 0, 0, 1]);   // gates i, f, g, o (PyTorch order): only o reads x
lsd.weight_hh_l0.data.fill(0);
lsd.bias_ih_l0.data.set([0, 30, 0, 0]);
lsd.bias_hh_l0.data.fill(0);
lstm.loadStateDict(lsd);
const c0 = Tensor.from(new Float32Array(B).fill(20), [B, 1]);
const sigmoid = stats(lstm.forward(x, { initialState: [Tensor.zeros([B, 1]), c0] }).output.data, (v) => 1 / (1 + Math.exp(-v)));
console.log(`ok: ${JSON.stringify({ isa: cpuInfo().isa, tanh, sigmoid })}`);
