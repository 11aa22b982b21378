/**
 * Every case of test/fixtures/torch_stacks.json (PyTorch float64 references from
 * test/fixtures/gen_torch_stacks.py, see test/fixtures/README.md) through the public layers as deep
 * and bidirectional stacks: LSTM (also with projSize), GRU (resetAfter: true, PyTorch's
 * linear-before-reset form) and SimpleRNN (tanh, relu) with numLayers 2 or 3, each as a float64 and
 * a float32 layer with returnSequences + returnState, so that the output, hN, cN and every gradient
 * of
 *
 *   L = sum(out ⊙ dy) + sum(hN ⊙ dhN) (+ sum(cN ⊙ dcN))
 *
 * are compared, the parameters loaded by their PyTorch names. The packed cases (PyTorch's
 * pack_padded_sequence with enforce_sorted=False and unsorted lengths) run with `lengths`.
 * rnnkit is always batch-first: a batch_first=False (time-major) case is transposed here on the
 * way in (x) and on the way out (out, dL/dx); the states are [L·D, B, ·] in both.
 *
 * A last group checks that the comparison can fail: perturbing any single parameter entry of a
 * case must move the output or the final states far outside the tolerance.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { GRU, LSTM, SimpleRNN, Tensor, type DType, type Recurrent } from '../lib/index.js';
import { assertClose, batchToTime, compare, timeToBatch, type CloseReport, type FloatArray } from './helpers/compare.js';

/**
 * As in test/torch-golden.test.ts. float64: |got - want| <= 1e-10 · max(|want|, 1e-3). Both sides
 * are float64 from identical float64 inputs; only summation order and libm differ, so the error is
 * ~1e-16 of the O(1) terms summed (~1e-15 absolute, a little more through 3 layers and 2
 * directions). The floor keeps entries that are tiny by cancellation from failing a relative test:
 * below 1e-3 the bound is an absolute 1e-13.
 *
 * float32: 1e-5 on outputs, 1e-4 on gradients, relative to max(|want|, 0.02): the inputs are
 * float32-exact, so the only differences are float32 rounding (and rnnkit's polynomial exp/tanh) in
 * the layer, an absolute ~1e-7 of the O(1) terms summed; a relative error is meaningful only down to
 * a couple of percent of that O(1) scale. The relu cases keep every pre-activation at least 1e-4 away
 * from the kink (the generator checks it; `reluMinPreactivation`), so float32 rounding cannot flip a
 * unit on or off.
 */
const TOL = {
  float64: { output: 1e-10, grad: 1e-10, floor: 1e-3 },
  float32: { output: 1e-5, grad: 1e-4, floor: 0.02 },
} as const;

type Kind = 'lstm' | 'gru' | 'rnn_tanh' | 'rnn_relu';

interface StackCase {
  name: string;
  kind: Kind;
  options: Record<string, number | boolean | string>;
  T: number;
  B: number;
  I: number;
  H: number;
  /** Size of h and of each direction's output: proj_size, or H without a projection. */
  P: number;
  L: number;
  D: 1 | 2;
  batchFirst: boolean;
  hasInitialState: boolean;
  lengths: number[] | null;
  /** [B, T, I] when batchFirst, else [T, B, I]. */
  x: number[];
  /** [L·D, B, P] / [L·D, B, H]. */
  h0: number[] | null;
  c0: number[] | null;
  paramShapes: Record<string, number[]>;
  params: Record<string, number[]>;
  /** Like out: [B, T, D·P] when batchFirst, else [T, B, D·P]; zero at padded positions. */
  dy: number[];
  dhN: number[];
  dcN: number[] | null;
  out: number[];
  hN: number[];
  cN: number[] | null;
  grads: Record<string, number[]> & { x: number[]; h0?: number[]; c0?: number[] };
  reluMinPreactivation?: number;
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/torch_stacks.json', import.meta.url), 'utf8')) as {
  torch: string;
  cases: StackCase[];
};

function makeLayer(c: StackCase, dtype: DType): Recurrent {
  const common = {
    inputSize: c.I, units: c.H, numLayers: c.L, bidirectional: c.D === 2, returnSequences: true, returnState: true, dtype, seed: 1,
  };
  switch (c.kind) {
    case 'lstm':
      return new LSTM({ ...common, ...(c.options.proj_size ? { projSize: c.options.proj_size as number } : {}) });
    case 'gru':
      return new GRU({ ...common, resetAfter: true });
    case 'rnn_tanh':
      return new SimpleRNN({ ...common, activation: 'tanh' });
    case 'rnn_relu':
      return new SimpleRNN({ ...common, activation: 'relu' });
  }
}

function typed(dtype: DType, v: readonly number[]): FloatArray {
  return dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v);
}

/** The fixture's layout (batch-first or time-major) → rnnkit's batch-first [B, T, F]. */
function toBatchFirst(c: StackCase, v: FloatArray, F: number): FloatArray {
  return c.batchFirst ? v : timeToBatch(v, c.T, c.B, F);
}

/** rnnkit's batch-first [B, T, F] → the fixture's layout. */
function fromBatchFirst(c: StackCase, v: FloatArray, F: number): FloatArray {
  return c.batchFirst ? v : batchToTime(v, c.B, c.T, F);
}

function seqShape(c: StackCase, F: number): number[] {
  return c.batchFirst ? [c.B, c.T, F] : [c.T, c.B, F];
}

function loadParams(layer: Recurrent, c: StackCase, dtype: DType, params: Record<string, number[]> = c.params): void {
  layer.loadStateDict(Object.fromEntries(Object.entries(params).map(([k, v]) => [k, Tensor.from(typed(dtype, v), c.paramShapes[k], dtype)])));
}

function forward(layer: Recurrent, c: StackCase, dtype: DType) {
  const { B, T, I, P, H, L, D } = c;
  const lstm = c.kind === 'lstm';
  const x = Tensor.from(toBatchFirst(c, typed(dtype, c.x), I), [B, T, I]);
  const initialState = c.hasInitialState
    ? [Tensor.from(typed(dtype, c.h0!), [L * D, B, P]), ...(lstm ? [Tensor.from(typed(dtype, c.c0!), [L * D, B, H])] : [])]
    : undefined;
  return layer.forward(x, { initialState, training: true, ...(c.lengths ? { lengths: c.lengths } : {}) });
}

/** Worst tolerance ratio seen per dtype and quantity (printed at the end). */
const worst = new Map<string, { ratio: number; where: string }>();
function record(key: string, r: CloseReport, where: string): void {
  const w = worst.get(key);
  if (!w || r.worstRatio > w.ratio) worst.set(key, { ratio: r.worstRatio, where });
}

/** Runs one golden case through a layer of the given dtype and compares everything. */
function runCase(c: StackCase, dtype: DType): void {
  const { T, B, I, H, P, L, D } = c;
  const lstm = c.kind === 'lstm';
  const tol = TOL[dtype];
  const label = `${c.name} ${dtype}`;

  // The fixture promises float32-exact inputs; a float32 run would silently test something else otherwise.
  const inputs = { x: c.x, h0: c.h0 ?? [], c0: c.c0 ?? [], dy: c.dy, dhN: c.dhN, dcN: c.dcN ?? [], ...c.params };
  for (const [k, v] of Object.entries(inputs)) {
    const bad = v.findIndex((e) => Math.fround(e) !== e);
    assert.equal(bad, -1, `${c.name}: fixture ${k}[${bad}] = ${v[bad]} is not float32-representable`);
  }

  const layer = makeLayer(c, dtype);
  // rnnkit's parameter names and shapes must be PyTorch's, exactly.
  assert.deepEqual(layer.parameterShapes(), c.paramShapes, `${label}: parameter names/shapes differ from torch's state_dict()`);
  loadParams(layer, c, dtype);

  const fwd = forward(layer, c, dtype);
  assert.ok(fwd.run, `${label}: no training run`);
  assert.deepEqual(fwd.output.shape, [B, T, D * P], `${label}: output shape`);
  assert.equal(fwd.states.length, lstm ? 2 : 1, `${label}: number of states`);
  assert.deepEqual(fwd.states[0].shape, [L * D, B, P], `${label}: hN shape`);
  if (lstm) assert.deepEqual(fwd.states[1].shape, [L * D, B, H], `${label}: cN shape`);

  const dy = Tensor.from(toBatchFirst(c, typed(dtype, c.dy), D * P), [B, T, D * P]);
  const dStates = [
    Tensor.from(typed(dtype, c.dhN), [L * D, B, P]),
    ...(lstm ? [Tensor.from(typed(dtype, c.dcN!), [L * D, B, H])] : []),
  ];
  const grads = layer.backward(fwd.run, dy, { dStates });

  const out = (what: string, got: ArrayLike<number>, want: ArrayLike<number>, shape: number[]): void => {
    const r = assertClose(got, want, { rtol: tol.output, floor: tol.floor, label: `${label}: ${what}`, shape });
    record(`${dtype} outputs`, r, `${c.name} ${what}`);
  };
  const grad = (what: string, got: ArrayLike<number>, want: ArrayLike<number> | undefined, shape: number[]): void => {
    assert.ok(want, `${label}: the fixture has no ${what}`);
    const r = assertClose(got, want, { rtol: tol.grad, floor: tol.floor, label: `${label}: ${what}`, shape });
    record(`${dtype} gradients`, r, `${c.name} ${what}`);
  };

  const ys = seqShape(c, D * P);
  out(`out [${c.batchFirst ? 'B, T' : 'T, B'}, D·P]`, fromBatchFirst(c, fwd.output.data, D * P), c.out, ys);
  out('hN [L·D, B, P]', fwd.states[0].data, c.hN, [L * D, B, P]);
  if (lstm) out('cN [L·D, B, H]', fwd.states[1].data, c.cN!, [L * D, B, H]);

  assert.deepEqual(grads.input.shape, [B, T, I], `${label}: dx shape`);
  grad(`dL/dx [${c.batchFirst ? 'B, T' : 'T, B'}, I]`, fromBatchFirst(c, grads.input.data, I), c.grads.x, seqShape(c, I));
  if (c.hasInitialState) {
    grad('dL/dh0 [L·D, B, P]', grads.initialState[0].data, c.grads.h0, [L * D, B, P]);
    if (lstm) grad('dL/dc0 [L·D, B, H]', grads.initialState[1].data, c.grads.c0, [L * D, B, H]);
  }
  assert.deepEqual(Object.keys(grads.params).sort(), Object.keys(c.paramShapes).sort(), `${label}: gradient names`);
  for (const [k, shape] of Object.entries(c.paramShapes)) grad(`dL/d${k}`, grads.params[k].data, c.grads[k], shape);
}

test('the fixture covers every kind of stack', () => {
  const cs = fixture.cases;
  const kinds: Kind[] = ['lstm', 'gru', 'rnn_tanh', 'rnn_relu'];
  for (const kind of kinds) {
    const of = cs.filter((c) => c.kind === kind);
    for (const L of [2, 3]) assert.ok(of.some((c) => c.L === L), `${kind}: no case with num_layers ${L}`);
    for (const D of [1, 2]) assert.ok(of.some((c) => c.D === D), `${kind}: no case with ${D} direction(s)`);
    for (const bf of [true, false]) assert.ok(of.some((c) => c.batchFirst === bf), `${kind}: no case with batch_first ${bf}`);
    for (const s of [true, false]) assert.ok(of.some((c) => c.hasInitialState === s), `${kind}: no case with hasInitialState ${s}`);
    for (const packed of [true, false]) assert.ok(of.some((c) => (c.lengths !== null) === packed), `${kind}: no ${packed ? '' : 'un'}packed case`);
    assert.ok(of.some((c) => c.lengths !== null && c.D === 2), `${kind}: no packed bidirectional case`);
  }
  const proj = cs.filter((c) => c.kind === 'lstm' && c.P !== c.H);
  assert.ok(proj.some((c) => c.L === 2 && c.D === 2 && c.lengths !== null), 'no packed bidirectional LSTM case with proj_size');
  assert.ok(proj.some((c) => c.L === 2 && c.D === 2 && c.lengths === null), 'no unpacked bidirectional LSTM case with proj_size');
  for (const c of cs) {
    if (c.lengths === null) continue;
    // Unsorted (in PyTorch's sense: not non-increasing), within [1, T], one of full length.
    assert.equal(c.lengths.length, c.B, `${c.name}: lengths`);
    assert.ok(c.lengths.some((n, b) => b > 0 && n > c.lengths![b - 1]), `${c.name}: lengths ${c.lengths} are sorted`);
    assert.ok(c.lengths.every((n) => Number.isInteger(n) && n >= 1 && n <= c.T), `${c.name}: lengths ${c.lengths}`);
    assert.ok(c.lengths.includes(c.T), `${c.name}: no sequence of full length T=${c.T}`);
  }
});

for (const dtype of ['float64', 'float32'] as const) {
  describe(`PyTorch stacks (${dtype})`, () => {
    for (const c of fixture.cases) test(c.name, () => runCase(c, dtype));
  });
}

/**
 * The comparison must be able to fail: for one case of each kind (the one with the most parameter
 * tensors), perturbing by 0.5 one entry of any single parameter (the entry with the largest golden
 * gradient, so one that L depends on) must move out/hN/cN beyond even the float32 tolerance. A
 * loader that ignored (or misplaced) a parameter tensor would be caught.
 */
describe('a perturbed parameter changes the result (the goldens are sensitive)', () => {
  for (const kind of ['lstm', 'gru', 'rnn_tanh', 'rnn_relu'] as const) {
    const of = fixture.cases.filter((c) => c.kind === kind);
    const c = of.reduce((a, b) => (Object.keys(b.params).length > Object.keys(a.params).length ? b : a));
    test(`${kind}: ${c.name}`, () => {
      const tol = TOL.float32;
      const opts = { rtol: tol.output, floor: tol.floor };
      for (const [name, values] of Object.entries(c.params)) {
        // The entry L is most sensitive to (a relu stack has dead units whose weights change nothing).
        const g = c.grads[name];
        const at = g.reduce((best, v, k) => (Math.abs(v) > Math.abs(g[best]) ? k : best), 0);
        assert.ok(Math.abs(g[at]) > 1e-3, `${c.name}: dL/d${name} is all ~0`);
        const perturbed = { ...c.params, [name]: values.map((v, k) => (k === at ? v + 0.5 : v)) };
        const layer = makeLayer(c, 'float64');
        loadParams(layer, c, 'float64', perturbed);
        const fwd = forward(layer, c, 'float64');
        const ratio = Math.max(
          compare(fromBatchFirst(c, fwd.output.data, c.D * c.P), c.out, opts).worstRatio,
          compare(fwd.states[0].data, c.hN, opts).worstRatio,
          c.kind === 'lstm' ? compare(fwd.states[1].data, c.cN!, opts).worstRatio : 0,
        );
        assert.ok(ratio > 10, `${c.name}: perturbing ${name} moved the results only ${ratio.toPrecision(3)}x the float32 tolerance`);
      }
      // And the unperturbed parameters do reproduce the goldens (so the check above is meaningful).
      const layer = makeLayer(c, 'float64');
      loadParams(layer, c, 'float64');
      const fwd = forward(layer, c, 'float64');
      assertClose(fromBatchFirst(c, fwd.output.data, c.D * c.P), c.out, { rtol: TOL.float64.output, floor: TOL.float64.floor, label: `${c.name} out` });
    });
  }
});

after(() => {
  const lines = [...worst].map(([k, w]) => `  ${k}: worst ${w.ratio.toPrecision(3)}x tolerance (${w.where})`);
  console.log(`torch-stacks (torch ${fixture.torch}, ${fixture.cases.length} cases):\n${lines.join('\n')}`);
});
