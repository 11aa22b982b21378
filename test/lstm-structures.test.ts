/**
 * LSTM structures beyond the gate math — projection (LSTMP), full gate recurrence (FGR) and memory
 * cell blocks: central finite differences in float64 through the public LSTM layer (every gradient
 * entry), plus structural oracles:
 * - FGR with weight_gr_l0 = 0 is the vanilla LSTM, bit for bit;
 * - an LSTM with cellBlockSize S equals a plain LSTM whose i, f, o rows are the block rows repeated
 *   S times (outputs equal; each stored gradient row is the sum of its S copies' gradients).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { LSTM, Tensor, type LSTMOptions } from '../lib/index.js';
import { assertClose, centralDifferences, FINITE_DIFFERENCES, rng, uniform64 } from './helpers/compare.js';

interface Problem {
  x: Tensor;
  init: Tensor[];
  R: Float64Array;
  S: Float64Array[];
}

function problem(layer: LSTM, B: number, T: number, seed: number): Problem {
  const r = rng(seed);
  const P = layer.outputSize, H = layer.units;
  return {
    x: Tensor.from(uniform64(r, B * T * layer.inputSize), [B, T, layer.inputSize]),
    init: [Tensor.from(uniform64(r, B * P), [B, P]), Tensor.from(uniform64(r, B * H), [B, H])],
    R: uniform64(r, B * T * P),
    S: [uniform64(r, B * P), uniform64(r, B * H)],
  };
}

function loss(layer: LSTM, p: Problem): number {
  layer.markWeightsChanged(); // the differences perturb the parameters in place
  const out = layer.forward(p.x, { initialState: p.init });
  let L = 0;
  out.output.data.forEach((v, i) => (L += v * p.R[i]));
  out.states.forEach((s, k) => s.data.forEach((v, i) => (L += v * p.S[k][i])));
  return L;
}

function gradcheck(options: LSTMOptions, B: number, T: number, seed: number): void {
  const layer = new LSTM({ ...options, returnSequences: true, returnState: true, dtype: 'float64', seed });
  const r = rng(seed + 100);
  for (const t of Object.values(layer.stateDict())) t.data.set(uniform64(r, t.size, -0.5, 0.5));  // FGR starts at 0: make it matter
  const p = problem(layer, B, T, seed);
  const run = layer.forward(p.x, { initialState: p.init, training: true });
  const g = layer.backward(run.run!, Tensor.from(p.R, run.output.shape as number[]), {
    dStates: p.S.map((s, k) => Tensor.from(s, run.states[k].shape as number[])),
  });
  const targets: [string, Float64Array, ArrayLike<number>][] = [
    ['input', p.x.data as Float64Array, g.input.data],
    ['h0', p.init[0].data as Float64Array, g.initialState[0].data],
    ['c0', p.init[1].data as Float64Array, g.initialState[1].data],
    ...Object.entries(layer.stateDict()).map(([k, t]) => [k, t.data as Float64Array, g.params[k].data] as [string, Float64Array, ArrayLike<number>]),
  ];
  const { rtol, floor } = FINITE_DIFFERENCES;
  for (const [name, data, analytic] of targets) {
    const fd = centralDifferences(data, () => loss(layer, p));
    assertClose(analytic, fd, { rtol, floor, label: `${JSON.stringify(options)} d${name}` });
  }
}

describe('projection (LSTMP)', () => {
  for (const extra of [{}, { outputGate: false }, { projClip: 0.3 }, { peepholes: true, goBackwards: true }, { cellClip: 0.5, clip: 0.8 }]) {
    test(`gradients by finite differences ${JSON.stringify(extra)}`, () => gradcheck({ inputSize: 3, units: 5, projSize: 3, ...extra }, 2, 4, 31));
  }
  test('projClip clamps some outputs at the bound and leaves others (so the check above exercises it)', () => {
    const layer = new LSTM({ inputSize: 3, units: 5, projSize: 3, projClip: 0.3, returnSequences: true, dtype: 'float64', seed: 31 });
    const r = rng(31 + 100);
    for (const t of Object.values(layer.stateDict())) t.data.set(uniform64(r, t.size, -0.5, 0.5));
    const y = layer.forward(problem(layer, 2, 4, 31).x).output.data;
    const clipped = Array.from(y).filter((v) => Math.abs(v) === 0.3).length;
    assert.ok(clipped > 0 && clipped < y.length, `${clipped} of ${y.length} outputs at the clip bound`);
  });
  test('projSize shapes: weight_hr_l0 [P, H], weight_hh_l0 [4H, P], h has P features and c has H', () => {
    const layer = new LSTM({ inputSize: 2, units: 6, projSize: 4, returnState: true });
    assert.deepEqual(layer.parameterShapes().weight_hr_l0, [4, 6]);
    assert.deepEqual(layer.parameterShapes().weight_hh_l0, [24, 4]);
    const out = layer.forward(Tensor.zeros([3, 5, 2]));
    assert.deepEqual(out.output.shape, [3, 4]);
    assert.deepEqual(out.states.map((s) => s.shape), [[3, 4], [3, 6]]);
  });
});

describe('full gate recurrence (FGR)', () => {
  for (const extra of [{}, { peepholes: true }, { coupledInputForget: true, goBackwards: true }, { outputGate: false, clip: 0.9 }, { projSize: 2 }]) {
    test(`gradients by finite differences ${JSON.stringify(extra)}`, () => gradcheck({ inputSize: 3, units: 4, fullGateRecurrence: true, ...extra }, 2, 4, 11));
  }
  test("variant 'FGR' is V (peepholes) plus weight_gr_l0 [3H, 3H]", () => {
    const layer = new LSTM({ inputSize: 2, units: 3, variant: 'FGR' });
    assert.deepEqual(layer.parameterShapes().weight_gr_l0, [9, 9]);
    assert.deepEqual(layer.parameterShapes().weight_peephole_l0, [9]);
  });
  test('with weight_gr_l0 = 0 it is the vanilla LSTM, bit for bit', () => {
    const a = new LSTM({ inputSize: 3, units: 5, fullGateRecurrence: true, returnSequences: true, seed: 4 });
    const b = new LSTM({ inputSize: 3, units: 5, returnSequences: true, seed: 4 });
    b.loadStateDict(Object.fromEntries(Object.entries(a.stateDict()).filter(([k]) => k !== 'weight_gr_l0')));
    const x = Tensor.from(Float32Array.from({ length: 2 * 6 * 3 }, (_, i) => Math.sin(i)), [2, 6, 3]);
    assert.deepEqual(a.forward(x).output.data, b.forward(x).output.data);
  });
});

describe('memory cell blocks', () => {
  for (const [S, extra] of [[2, {}], [3, { goBackwards: true }], [2, { coupledInputForget: true, recurrentActivation: 'hardSigmoid' as const }], [2, { projSize: 3 }]] as const) {
    test(`gradients by finite differences, S=${S} ${JSON.stringify(extra)}`, () => gradcheck({ inputSize: 3, units: 6, cellBlockSize: S, ...extra }, 2, 3, 21));
  }

  test('S cells share one set of gates: equal to a plain LSTM with the block rows repeated', () => {
    const I = 3, H = 6, S = 3, B = 2, T = 5;
    const block = new LSTM({ inputSize: I, units: H, cellBlockSize: S, returnSequences: true, returnState: true, dtype: 'float64', seed: 9 });
    const plain = new LSTM({ inputSize: I, units: H, returnSequences: true, returnState: true, dtype: 'float64', seed: 1 });
    const nb = H / S;
    const storedRow = (q: number, k: number) => [0, nb, 2 * nb, 2 * nb + H][q] + (q === 2 ? k : Math.floor(k / S));
    const sd = block.stateDict();
    assert.deepEqual(sd.weight_ih_l0.shape, [3 * nb + H, I]);
    const expanded: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(sd)) {
      const cols = t.rank === 2 ? t.shape[1] : 1;
      const out = new Float64Array(4 * H * cols);
      for (let q = 0; q < 4; q++) for (let k = 0; k < H; k++) out.set(t.data.subarray(storedRow(q, k) * cols, (storedRow(q, k) + 1) * cols), (q * H + k) * cols);
      expanded[name] = Tensor.from(out, t.rank === 2 ? [4 * H, cols] : [4 * H]);
    }
    plain.loadStateDict(expanded);
    const p = problem(block, B, T, 5);
    const a = block.forward(p.x, { initialState: p.init, training: true });
    const b = plain.forward(p.x, { initialState: p.init, training: true });
    assertClose(a.output.data, b.output.data, { rtol: 1e-14, floor: 1e-3, label: 'outputs' });
    const dOut = Tensor.from(p.R, a.output.shape as number[]);
    const dStates = p.S.map((s, k) => Tensor.from(s, a.states[k].shape as number[]));
    const ga = block.backward(a.run!, dOut, { dStates });
    const gb = plain.backward(b.run!, dOut, { dStates });
    for (const [name, t] of Object.entries(sd)) {
      const cols = t.rank === 2 ? t.shape[1] : 1;
      const want = new Float64Array(t.size);
      for (let q = 0; q < 4; q++)
        for (let k = 0; k < H; k++)
          for (let j = 0; j < cols; j++) want[storedRow(q, k) * cols + j] += gb.params[name].data[(q * H + k) * cols + j];
      assertClose(ga.params[name].data, want, { rtol: 1e-12, floor: 1e-3, label: `d${name}` });
    }
    assertClose(ga.input.data, gb.input.data, { rtol: 1e-12, floor: 1e-3, label: 'dinput' });
  });

  test('bad block sizes and combinations are rejected with the option named', () => {
    assert.throws(() => new LSTM({ inputSize: 2, units: 6, cellBlockSize: 4 }), (e: unknown) => e instanceof RangeError && /cellBlockSize/.test(String(e)));
    assert.throws(() => new LSTM({ inputSize: 2, units: 6, cellBlockSize: 2, peepholes: true }), (e: unknown) => e instanceof RangeError && /cellBlockSize/.test(String(e)));
    assert.throws(() => new LSTM({ inputSize: 2, units: 6, cellBlockSize: 0 }), (e: unknown) => e instanceof TypeError && /cellBlockSize/.test(String(e)));
  });
});

/**
 * Independent float64 reference of the two structures, written from the equations: gate rows are
 * looked up per hidden unit (cell blocks: the block's row for i, f, o), and with FGR the gates
 * i, f, o add W_gr [3H, 3H] · [i, f, o]_{t−1}. x is time-major; returns time-major y, hN, cN.
 */
function referenceLstm(o: {
  T: number; B: number; I: number; H: number; S: number;
  x: ArrayLike<number>; h0: ArrayLike<number>; c0: ArrayLike<number>;
  w: Record<string, ArrayLike<number>>;
}): { y: Float64Array; hN: Float64Array; cN: Float64Array } {
  const { T, B, I, H, S, x, w } = o;
  const nb = H / S;
  const row = (q: number, k: number) => [0, nb, 2 * nb, 2 * nb + H][q] + (q === 2 ? k : Math.floor(k / S));
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const h = Float64Array.from(o.h0), c = Float64Array.from(o.c0);
  const acts = new Float64Array(B * 3 * H);  // [i, f, o] of the previous step, zero before the first
  const y = new Float64Array(T * B * H);
  for (let t = 0; t < T; t++) {
    const hNext = new Float64Array(B * H), actsNext = new Float64Array(B * 3 * H);
    for (let b = 0; b < B; b++) {
      for (let k = 0; k < H; k++) {
        const a = [0, 0, 0, 0];
        for (let q = 0; q < 4; q++) {
          const r = row(q, k);
          let v = (w.bias_ih_l0?.[r] ?? 0) + (w.bias_hh_l0?.[r] ?? 0);
          for (let i = 0; i < I; i++) v += w.weight_ih_l0[r * I + i] * x[(t * B + b) * I + i];
          for (let j = 0; j < H; j++) v += w.weight_hh_l0[r * H + j] * h[b * H + j];
          const target = [0, 1, -1, 2][q];  // FGR rows: i, f, o
          if (w.weight_gr_l0 && target >= 0) {
            for (let m = 0; m < 3 * H; m++) v += w.weight_gr_l0[(target * H + k) * 3 * H + m] * acts[b * 3 * H + m];
          }
          a[q] = v;
        }
        const i = sig(a[0]), f = sig(a[1]), g = Math.tanh(a[2]), og = sig(a[3]);
        const cn = f * c[b * H + k] + i * g;
        c[b * H + k] = cn;
        hNext[b * H + k] = og * Math.tanh(cn);
        actsNext[b * 3 * H + k] = i;
        actsNext[b * 3 * H + H + k] = f;
        actsNext[b * 3 * H + 2 * H + k] = og;
      }
    }
    h.set(hNext);
    acts.set(actsNext);
    y.set(hNext, t * B * H);
  }
  return { y, hN: h, cN: c };
}

describe('FGR and cell blocks against an independent float64 reference', () => {
  const cases: [string, LSTMOptions & { units: number }, number][] = [
    ['FGR', { inputSize: 3, units: 5, fullGateRecurrence: true }, 1],
    ['cell blocks S=2', { inputSize: 4, units: 6, cellBlockSize: 2 }, 2],
    ['cell blocks S=3', { inputSize: 2, units: 9, cellBlockSize: 3 }, 3],
    ['cell blocks S=H', { inputSize: 3, units: 4, cellBlockSize: 4 }, 4],
  ];
  for (const dtype of ['float64', 'float32'] as const) {
    for (const [name, options, S] of cases) {
      test(`${name} (${dtype})`, () => {
        const B = 3, T = 6, I = options.inputSize!, H = options.units;
        const layer = new LSTM({ ...options, returnSequences: true, returnState: true, dtype, seed: 5 });
        const r = rng(77 + S);
        const w: Record<string, Float64Array> = {};
        for (const [k, t] of Object.entries(layer.stateDict())) {
          w[k] = Float64Array.from(uniform64(r, t.size, -0.6, 0.6), (v) => Math.fround(v));
          t.data.set(w[k]);
        }
        const x = Float64Array.from(uniform64(r, B * T * I), (v) => Math.fround(v));  // batch-first
        const h0 = Float64Array.from(uniform64(r, B * H), (v) => Math.fround(v));
        const c0 = Float64Array.from(uniform64(r, B * H), (v) => Math.fround(v));
        const xt = new Float64Array(T * B * I);
        for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) xt.set(x.subarray((b * T + t) * I, (b * T + t + 1) * I), (t * B + b) * I);
        const want = referenceLstm({ T, B, I, H, S: options.cellBlockSize ?? 1, x: xt, h0, c0, w });
        const typed = (a: Float64Array) => (dtype === 'float64' ? a : Float32Array.from(a));
        const out = layer.forward(Tensor.from(typed(x), [B, T, I]), { initialState: [Tensor.from(typed(h0), [B, H]), Tensor.from(typed(c0), [B, H])] });
        const yt = new Float64Array(T * B * H);
        for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) yt.set(out.output.data.subarray((b * T + t) * H, (b * T + t + 1) * H), (t * B + b) * H);
        const tol = dtype === 'float64' ? { rtol: 1e-12, floor: 1e-3 } : { rtol: 1e-5, floor: 0.02 };
        assertClose(yt, want.y, { ...tol, label: `${name} y`, shape: [T, B, H] });
        assertClose(out.states[0].data, want.hN, { ...tol, label: `${name} hN` });
        assertClose(out.states[1].data, want.cN, { ...tol, label: `${name} cN` });
      });
    }
  }
});
