/**
 * The gradient-diagnostics API against independent references, in float64:
 * - stateGradients' ∂L/∂h_t (and LSTM ∂L/∂c_t) at every step against central finite differences of
 *   the loss with h_t (c_t) perturbed in place: steps 0…t run, the perturbed state is both the
 *   output y_t and the initial state of steps t+1…T−1 (SimpleRNN tanh/ReLU, LSTM V with peepholes,
 *   CIFG, NFG, GRU in both forms; loss on every output, on the last output and on the final states);
 * - gateStats' h_t against the layer's own forward, its cell-state RMS against the final c, its
 *   saturation fractions against a count over the gate activations computed here;
 * - outputGradient against finite differences of a compiled model's loss;
 * - the GradientDiagnostics fit callback: one record before training and one per epoch, equal to
 *   stateGradients/gateStats computed by hand at the end of training.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  Adam, Dense, GRU, GradientDiagnostics, LSTM, Random, Sequential, SimpleRNN, Tensor, gateStats, outputGradient, stateGradients,
  type Recurrent,
} from '../lib/index.js';

const B = 2, T = 5, I = 3, H = 4;

interface Case {
  name: string;
  make: (o: { returnSequences: boolean; returnState: boolean }) => Recurrent;
  cell: boolean;
}

const common = { inputSize: I, units: H, dtype: 'float64' as const, seed: 11 };
const CASES: Case[] = [
  { name: 'SimpleRNN tanh', make: (o) => new SimpleRNN({ ...common, ...o }), cell: false },
  { name: 'SimpleRNN relu (identity init)', make: (o) => new SimpleRNN({ ...common, ...o, activation: 'relu', recurrentInitializer: 'identity' }), cell: false },
  { name: 'LSTM V (peepholes)', make: (o) => new LSTM({ ...common, ...o, variant: 'V' }), cell: true },
  { name: 'LSTM CIFG', make: (o) => new LSTM({ ...common, ...o, variant: 'CIFG' }), cell: true },
  { name: 'LSTM NFG', make: (o) => new LSTM({ ...common, ...o, variant: 'NFG' }), cell: true },
  { name: 'GRU reset-after', make: (o) => new GRU({ ...common, ...o, resetAfter: true }), cell: false },
  { name: 'GRU reset-before', make: (o) => new GRU({ ...common, ...o, resetAfter: false }), cell: false },
];

function uniform(r: Random, n: number, scale = 1): Float64Array {
  return Float64Array.from({ length: n }, () => r.uniform(-1, 1) * scale);
}

function slice(x: Tensor, from: number, to: number): Tensor {
  const [b, , i] = x.shape as [number, number, number];
  const out = new Float64Array(b * (to - from) * i);
  for (let s = 0; s < b; s++) out.set(x.data.subarray((s * T + from) * i, (s * T + to) * i), s * (to - from) * i);
  return Tensor.from(out, [b, to - from, i]);
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k] * b[k];
  return s;
};

/**
 * L = Σ_t <wSeq_t, y_t> + <wLast, y_{T−1}> + <wH, h_T> (+ <wC, c_T>), with the state after step t
 * replaced by (h_t + dh, c_t + dc).
 */
function lossWithPerturbedState(layer: Recurrent, x: Tensor, t: number, dh: Float64Array, dc: Float64Array | null, w: Weights): number {
  const first = layer.forward(slice(x, 0, t + 1));
  let L = 0;
  const y0 = first.output.data;
  // Outputs of steps 0…t−1 are unchanged; y_t is the perturbed h_t.
  for (let s = 0; s < B; s++) {
    for (let u = 0; u < t; u++) L += dot(y0.subarray((s * (t + 1) + u) * H, (s * (t + 1) + u + 1) * H), w.seq.subarray((s * T + u) * H, (s * T + u + 1) * H));
  }
  const h = Float64Array.from(first.states[0].data, (v, k) => v + dh[k]);
  const c = dc ? Float64Array.from(first.states[1].data, (v, k) => v + dc[k]) : null;
  for (let s = 0; s < B; s++) L += dot(h.subarray(s * H, (s + 1) * H), w.seq.subarray((s * T + t) * H, (s * T + t + 1) * H));
  let hT: ArrayLike<number> = h, cT: ArrayLike<number> | null = c;
  if (t < T - 1) {
    const init = [Tensor.from(h, [B, H]), ...(c ? [Tensor.from(c, [B, H])] : [])];
    const rest = layer.forward(slice(x, t + 1, T), { initialState: init });
    const n = T - 1 - t;
    for (let s = 0; s < B; s++) {
      for (let u = 0; u < n; u++) L += dot(rest.output.data.subarray((s * n + u) * H, (s * n + u + 1) * H), w.seq.subarray((s * T + t + 1 + u) * H, (s * T + t + 2 + u) * H));
    }
    hT = rest.states[0].data;
    cT = c ? rest.states[1].data : null;
  }
  L += dot(hT, w.last) + dot(hT, w.h);
  if (cT) L += dot(cT, w.c);
  return L;
}

interface Weights {
  seq: Float64Array;
  last: Float64Array;
  h: Float64Array;
  c: Float64Array;
}

for (const c of CASES) {
  test(`stateGradients: ${c.name}: ∂L/∂h_t${c.cell ? ' and ∂L/∂c_t' : ''} at every step match central differences (float64)`, () => {
    const r = new Random(3);
    const x = Tensor.from(uniform(r, B * T * I, 1.5), [B, T, I]);
    const w: Weights = { seq: uniform(r, B * T * H), last: uniform(r, B * H), h: uniform(r, B * H), c: uniform(r, B * H) };
    // The reference layer returns every output and its final states; the layers under test share its weights.
    const ref = c.make({ returnSequences: true, returnState: true });
    const seqLayer = c.make({ returnSequences: true, returnState: false });
    const lastLayer = c.make({ returnSequences: false, returnState: false });
    seqLayer.loadStateDict(ref.stateDict());
    lastLayer.loadStateDict(ref.stateDict());
    // L's three parts: every output (seqLayer's dOutput), the last output (lastLayer's), the final states (dStates).
    const dStates = [Tensor.from(w.h, [B, H]), ...(c.cell ? [Tensor.from(w.c, [B, H])] : [])];
    const gSeq = stateGradients(seqLayer, x, Tensor.from(w.seq, [B, T, H]), { dStates });
    const gLast = stateGradients(lastLayer, x, Tensor.from(w.last, [B, H]));
    assert.equal(gSeq.norms.length, T);
    assert.equal(gSeq.dh.length, T);
    const eps = 1e-6;
    let worst = 0;
    for (let t = 0; t < T; t++) {
      const analytic = Float64Array.from(gSeq.dh[t].data, (v, k) => v + gLast.dh[t].data[k]);
      const analyticC = c.cell ? Float64Array.from(gSeq.dc![t].data, (v, k) => v + gLast.dc![t].data[k]) : null;
      for (let k = 0; k < B * H; k++) {
        for (const which of c.cell ? ['h', 'c'] : ['h']) {
          const dh = new Float64Array(B * H), dc = c.cell ? new Float64Array(B * H) : null;
          (which === 'h' ? dh : dc!)[k] = eps;
          const plus = lossWithPerturbedState(ref, x, t, dh, dc, w);
          (which === 'h' ? dh : dc!)[k] = -eps;
          const minus = lossWithPerturbedState(ref, x, t, dh, dc, w);
          const fd = (plus - minus) / (2 * eps);
          const a = which === 'h' ? analytic[k] : analyticC![k];
          const err = Math.abs(a - fd) / Math.max(1, Math.abs(fd));
          worst = Math.max(worst, err);
          assert.ok(err < 1e-6, `${c.name}: ∂L/∂${which}_${t}[${k}] = ${a}, finite differences ${fd}`);
        }
      }
      // The norms are those of the gradients returned.
      const n = Math.sqrt(dot(gSeq.dh[t].data, gSeq.dh[t].data));
      assert.ok(Math.abs(gSeq.norms[t] - n) <= 1e-12 * Math.max(1, n));
    }
    assert.ok(worst < 1e-6);
  });
}

test('stateGradients refuses what it cannot differentiate, naming the argument', () => {
  const l = new LSTM({ ...common, returnSequences: true });
  const x = Tensor.zeros([B, T, I], 'float64');
  assert.throws(() => stateGradients(l, x, Tensor.zeros([B, H], 'float64')), /dOutput must be a Tensor \[batch=2, steps=5, units=4\]/);
  assert.throws(() => stateGradients(l, Tensor.zeros([B, T, I + 1], 'float64'), null), TypeError);
  assert.throws(() => stateGradients(new LSTM({ ...common, variant: 'FGR' }), x, null), /FGR/);
  assert.throws(() => stateGradients(l, x, null, { bogus: 1 } as never), /bogus/);
});

test('gateStats: h_t equals the layer forward, the cell RMS the final c, the saturation a direct count', () => {
  const r = new Random(8);
  const x = Tensor.from(uniform(r, B * T * I, 3), [B, T, I]);
  for (const c of CASES) {
    const l = c.make({ returnSequences: true, returnState: true });
    const f = l.forward(x);
    const s = gateStats(l, x, { threshold: 0.1 });
    let worst = 0;
    for (let k = 0; k < f.output.size; k++) worst = Math.max(worst, Math.abs(f.output.data[k] - s.hidden.data[k]));
    assert.ok(worst < 1e-12, `${c.name}: gateStats' h_t differs from forward by ${worst}`);
    assert.equal(s.hiddenNorm.length, T);
    if (c.cell) {
      const cT = f.states[1].data;
      let rms = 0;
      for (let b = 0; b < B; b++) rms += Math.sqrt(dot(cT.subarray(b * H, (b + 1) * H), cT.subarray(b * H, (b + 1) * H)) / H) / B;
      assert.ok(Math.abs(s.cellNorm![T - 1] - rms) < 1e-12, `${c.name}: cell RMS ${s.cellNorm![T - 1]} vs ${rms}`);
    }
    for (const g of s.gates) {
      assert.ok(g.nearZero >= 0 && g.nearOne >= 0 && g.nearZero + g.nearOne <= 1, `${c.name} ${g.gate}`);
      const mean = g.perStep.reduce((a, v) => a + v, 0) / T;
      assert.ok(Math.abs(mean - (g.nearZero + g.nearOne)) < 1e-12, `${c.name} ${g.gate}: perStep mean ${mean} vs ${g.nearZero + g.nearOne}`);
    }
    const names = s.gates.map((g) => g.gate).join('');
    if (c.name.includes('NFG')) assert.equal(names, 'io');
    else if (c.cell) assert.equal(names, 'ifo');
    else if (c.name.startsWith('GRU')) assert.equal(names, 'rz');
    else assert.equal(names, '');
  }
  // The saturation count of a SimpleRNN-free case, checked by hand: a one-unit LSTM without
  // recurrence whose gate pre-activations are the inputs themselves.
  const l = new LSTM({ inputSize: 1, units: 1, dtype: 'float64', variant: 'NP', returnSequences: true });
  const sd = l.stateDict();
  sd.weight_ih_l0.data.set([1, 1, 1, 1]);
  sd.weight_hh_l0.data.fill(0);
  sd.bias_ih_l0.data.fill(0);
  sd.bias_hh_l0.data.fill(0);
  l.loadStateDict(sd);
  const xs = [-5, -1, 0, 2, 4];
  const s = gateStats(l, Tensor.from(Float64Array.from(xs), [1, 5, 1]), { threshold: 0.05 });
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const low = xs.filter((v) => sig(v) < 0.05).length / 5, high = xs.filter((v) => sig(v) > 0.95).length / 5;
  for (const g of s.gates) {
    assert.equal(g.nearZero, low, g.gate);
    assert.equal(g.nearOne, high, g.gate);
  }
  assert.throws(() => gateStats(l, Tensor.zeros([1, 5, 1], 'float64'), { threshold: 0.7 }), /threshold: expected a number in \(0, 0.5\)/);
});

function compiled(): Sequential {
  const m = new Sequential([new LSTM({ inputSize: I, units: H, dtype: 'float64', returnSequences: false }), new Dense({ inputSize: H, units: 2, dtype: 'float64' })], { seed: 4 });
  m.compile({ optimizer: new Adam({ learningRate: 0.01 }), loss: 'mse' });
  return m;
}

test('outputGradient: dL/d(recurrent output) of a compiled model matches central differences', () => {
  const r = new Random(5);
  const x = Tensor.from(uniform(r, B * T * I), [B, T, I]);
  const y = Tensor.from(uniform(r, B * 2), [B, 2]);
  const m = compiled();
  const g = outputGradient(m, 0, x, y);
  const out = (m.layers[0] as Recurrent).forward(x).output;
  const dense = m.layers[1] as Dense;
  const lossAt = (h: Float64Array): number => {
    const p = dense.forward(Tensor.from(h, [B, H])).output.data;
    let s = 0;
    for (let k = 0; k < p.length; k++) s += (p[k] - y.data[k]) ** 2;
    return s / p.length;
  };
  assert.ok(Math.abs(g.loss - lossAt(Float64Array.from(out.data))) < 1e-12);
  const eps = 1e-6;
  for (let k = 0; k < B * H; k++) {
    const hp = Float64Array.from(out.data), hm = Float64Array.from(out.data);
    hp[k] += eps;
    hm[k] -= eps;
    const fd = (lossAt(hp) - lossAt(hm)) / (2 * eps);
    assert.ok(Math.abs(g.dOutput.data[k] - fd) < 1e-8, `dOutput[${k}] = ${g.dOutput.data[k]}, finite differences ${fd}`);
  }
});

test('GradientDiagnostics records before training and after every epoch, as stateGradients/gateStats compute them', async () => {
  const r = new Random(6);
  const n = 8;
  const x = Tensor.from(uniform(r, n * T * I), [n, T, I]);
  const y = Tensor.from(uniform(r, n * 2), [n, 2]);
  const m = compiled();
  const probe = { x: Tensor.from(x.data.slice(0, B * T * I), [B, T, I]), y: Tensor.from(y.data.slice(0, B * 2), [B, 2]) };
  const diag = new GradientDiagnostics({ ...probe, threshold: 0.1 });
  await m.fit(x, y, { epochs: 3, batchSize: 4, verbose: 0, seed: 1, callbacks: [diag] });
  assert.deepEqual(diag.records.map((d) => d.epoch), [-1, 0, 1, 2]);
  const last = diag.records[3];
  const layer = m.layers[0] as Recurrent;
  const og = outputGradient(m, 0, probe.x, probe.y);
  const sg = stateGradients(layer, og.input, og.dOutput);
  const gs = gateStats(layer, og.input, { threshold: 0.1 });
  assert.deepEqual(last.stateGradientNorms, [...sg.norms]);
  assert.deepEqual(last.cellGradientNorms, [...sg.cellNorms!]);
  assert.deepEqual(last.hiddenNorm, [...gs.hiddenNorm]);
  assert.deepEqual(last.cellNorm, [...gs.cellNorm!]);
  assert.deepEqual(last.gates.map((g) => g.gate), ['i', 'f', 'o']);
  assert.equal(last.loss, og.loss);
  // Training moved the weights: the first record differs from the last.
  assert.notDeepEqual(diag.records[0].stateGradientNorms, last.stateGradientNorms);
  // everyBatches: 8 samples in batches of 4 → two batches per epoch.
  const m2 = compiled();
  const d2 = new GradientDiagnostics({ ...probe, everyBatches: 1, every: 2 });
  await m2.fit(x, y, { epochs: 2, batchSize: 4, verbose: 0, seed: 1, callbacks: [d2] });
  assert.deepEqual(d2.records.map((d) => `${d.epoch}/${d.batch}`), ['-1/-1', '0/0', '0/1', '1/0', '1/1', '1/-1']);
  assert.throws(() => new GradientDiagnostics({ ...probe, every: 0 }), /every: expected an integer >= 1/);
  assert.throws(() => new GradientDiagnostics({ ...probe, bogus: true } as never), /bogus/);
});
