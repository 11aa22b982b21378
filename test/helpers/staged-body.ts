/**
 * The child side of test/staged-steps.test.ts. Runs each case with setNumThreads(1) (every step
 * on the calling thread) and then with 2 and 5 threads (the staged recurrence of
 * native/core/sequence.cc: one pool job per chunk of steps, threads meeting at one counter per
 * step; with 5 threads on a 2-core machine most participants are descheduled at any time and the
 * others take over their slices), and requires every output, state and gradient to be bit-identical.
 * Training cases run forward and backward (gradients into the output and the final states).
 * Prints `ok: <cases> cases` or throws.
 */
import { Bidirectional, GRU, LSTM, SimpleRNN, Tensor, getNumThreads, setNumThreads } from '../../lib/index.js';
import { assertBitIdentical } from './compare.js';

type Dtype = 'float32' | 'float64';
interface Case {
  name: string;
  make: (dtype: Dtype) => LSTM | GRU | SimpleRNN | Bidirectional;
  B: number;
  T: number;
  I: number;
  lengths?: number[];
  train?: boolean;
}

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

const fgr = (dtype: Dtype): LSTM => {
  // weight_gr starts at zero: give it values, so the previous step's gates feed every unit.
  const l = new LSTM({ inputSize: 24, units: 96, fullGateRecurrence: true, returnSequences: true, returnState: true, dtype, seed: 3 });
  const sd = l.stateDict();
  const r = rand(9);
  const w = sd.weight_gr_l0;
  const data = w.data.map(() => 0.1 * r());
  l.loadStateDict({ ...sd, weight_gr_l0: Tensor.from(data, w.shape) });
  return l;
};

const CASES: Case[] = [
  // B 1, W_hh 512 × 128: staged below the per-step parallel threshold (the latency shape).
  { name: 'LSTM(64→128) B1', make: (dtype) => new LSTM({ inputSize: 64, units: 128, returnSequences: true, returnState: true, dtype, seed: 1 }), B: 1, T: 9, I: 64 },
  { name: 'LSTM(16→72) B16, lengths', make: (dtype) => new LSTM({ inputSize: 16, units: 72, returnSequences: true, returnState: true, dtype, seed: 2 }), B: 16, T: 7, I: 16, lengths: [7, 3, 5, 1, 7, 2, 6, 4, 7, 7, 1, 3, 5, 2, 6, 4] },
  { name: 'LSTM peepholes + cell clip (general kernels) B8', make: (dtype) => new LSTM({ inputSize: 20, units: 100, peepholes: true, cellClip: 0.7, returnSequences: true, returnState: true, dtype, seed: 4 }), B: 8, T: 6, I: 20 },
  { name: 'LSTM full gate recurrence B4', make: fgr, B: 4, T: 6, I: 24 },
  { name: 'GRU reset after B1', make: (dtype) => new GRU({ inputSize: 32, units: 160, returnSequences: true, returnState: true, dtype, seed: 5 }), B: 1, T: 8, I: 32 },
  { name: 'GRU reset before B9 (not staged: two passes a step)', make: (dtype) => new GRU({ inputSize: 32, units: 96, resetAfter: false, returnSequences: true, returnState: true, dtype, seed: 6 }), B: 9, T: 5, I: 32 },
  { name: 'SimpleRNN B32', make: (dtype) => new SimpleRNN({ inputSize: 16, units: 200, returnSequences: true, returnState: true, dtype, seed: 7 }), B: 32, T: 6, I: 16 },
  { name: 'LSTM training B12, lengths', make: (dtype) => new LSTM({ inputSize: 16, units: 80, returnSequences: true, returnState: true, dtype, seed: 8 }), B: 12, T: 6, I: 16, lengths: [6, 1, 4, 6, 2, 5, 3, 6, 6, 2, 5, 1], train: true },
  { name: 'GRU training B6', make: (dtype) => new GRU({ inputSize: 16, units: 128, returnSequences: true, returnState: true, dtype, seed: 9 }), B: 6, T: 5, I: 16, train: true },
  // Both directions at once, each on its own thread: the staged job inside runs on one thread.
  { name: 'Bidirectional LSTM B2', make: (dtype) => new Bidirectional(new LSTM({ inputSize: 8, units: 128, returnSequences: true, returnState: true, dtype, seed: 10 })), B: 2, T: 5, I: 8 },
];

type Out = { label: string; data: Float32Array | Float64Array }[];

function run(c: Case, dtype: Dtype): Out {
  const layer = c.make(dtype);
  const r = rand(c.B * 131 + c.T);
  const n = c.B * c.T * c.I;
  const xs = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) xs[i] = 2 * r();
  const x = Tensor.from(xs, [c.B, c.T, c.I]);
  const f = layer.forward(x, { lengths: c.lengths, training: c.train });
  const out: Out = [{ label: 'output', data: f.output.data }, ...f.states.map((s, k) => ({ label: `state ${k}`, data: s.data }))];
  if (c.train) {
    // Gradients into the final states too (they wait in their rows until the sequence's last step).
    const dStates = f.states.map((st) => Tensor.from(st.data.map((v) => 0.5 * v), st.shape));
    const g = layer.backward(f.run!, f.output, { dStates });
    out.push({ label: 'dx', data: g.input.data });
    for (const [k, v] of Object.entries(g.params).sort(([a], [b]) => a.localeCompare(b))) out.push({ label: `d${k}`, data: v.data });
  }
  return out;
}

const threads = getNumThreads();
let count = 0;
for (const dtype of ['float32', 'float64'] as const) {
  for (const c of CASES) {
    setNumThreads(1);
    const want = run(c, dtype);
    for (const t of [2, 5]) {
      setNumThreads(t);
      for (let rep = 0; rep < 3; rep++) {
        const got = run(c, dtype);
        got.forEach((o, k) => assertBitIdentical(o.data, want[k].data, `${c.name} ${dtype}, ${t} threads vs 1: ${o.label}`));
      }
    }
    count++;
  }
}
setNumThreads(threads);
console.log(`ok: ${count} cases, each bit-identical with 2 and 5 threads to 1 thread`);
