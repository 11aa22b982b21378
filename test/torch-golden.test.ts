/**
 * Every case of test/fixtures/torch_golden.json (PyTorch float64 references, see
 * test/fixtures/README.md) through the public layers: GRU (resetAfter: true, PyTorch's
 * linear-before-reset form), LSTM and SimpleRNN (tanh, relu), each as a float64 and a float32 layer
 * with returnSequences + returnState, so that y, hN, cN and every gradient of
 *
 *   L = sum(y ⊙ dy) + sum(hN ⊙ dhN) (+ sum(cN ⊙ dcN))
 *
 * are compared. The fixtures are time-major; the layers are batch-first (converted here).
 * A second group runs each case through a goBackwards float64 layer on the time-reversed input,
 * which must reproduce the same golden values (outputs in processing order, input gradient reversed
 * back).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { GRU, LSTM, SimpleRNN, Tensor, type DType, type Recurrent } from '../lib/index.js';
import { assertClose, batchToTime, reverseTimeMajor, timeToBatch, type FloatArray } from './helpers/compare.js';

/**
 * float64: |got - want| <= 1e-10 · max(|want|, 1e-3). Both sides are float64 from identical
 * float64 inputs; only summation order and libm differ, so the error is ~1e-16 of the O(1) terms
 * summed (~1e-15 absolute). The floor keeps entries that are tiny by cancellation (absolute noise
 * still ~1e-15) from failing a relative test: below 1e-3 the bound is an absolute 1e-13.
 *
 * float32: 1e-5 on outputs, 1e-4 on gradients, relative to max(|want|, 0.02): the inputs are
 * float32-exact, so the only differences are float32 rounding (and rnnkit's polynomial exp/tanh) in
 * the layer, an absolute ~1e-7 of the O(1) terms summed; as in test/tfjs.test.ts, a relative error is
 * meaningful only down to a couple of percent of that O(1) scale.
 */
const TOL = {
  float64: { output: 1e-10, grad: 1e-10, floor: 1e-3 },
  float32: { output: 1e-5, grad: 1e-4, floor: 0.02 },
} as const;

type Cell = 'gru' | 'lstm' | 'rnn_tanh' | 'rnn_relu';
type ParamName = 'weight_ih_l0' | 'weight_hh_l0' | 'bias_ih_l0' | 'bias_hh_l0';
const PARAMS: ParamName[] = ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0'];

interface GoldenCase {
  name: string;
  cell: Cell;
  T: number;
  B: number;
  I: number;
  H: number;
  hasInitialState: boolean;
  x: number[];
  h0: number[] | null;
  c0: number[] | null;
  weights: Record<ParamName, number[]>;
  dy: number[];
  dhN: number[];
  dcN: number[] | null;
  y: number[];
  hN: number[];
  cN: number[] | null;
  grads: Record<'x' | ParamName, number[]> & { h0?: number[]; c0?: number[] };
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/torch_golden.json', import.meta.url), 'utf8')) as {
  cases: GoldenCase[];
};

function makeLayer(c: GoldenCase, dtype: DType, goBackwards: boolean): Recurrent {
  const common = { inputSize: c.I, units: c.H, returnSequences: true, returnState: true, goBackwards, dtype };
  switch (c.cell) {
    case 'gru':
      return new GRU({ ...common, resetAfter: true });
    case 'lstm':
      return new LSTM(common);
    case 'rnn_tanh':
      return new SimpleRNN({ ...common, activation: 'tanh' });
    case 'rnn_relu':
      return new SimpleRNN({ ...common, activation: 'relu' });
  }
}

function typed(dtype: DType, v: readonly number[]): FloatArray {
  return dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v);
}

/** Runs one golden case through a layer of the given dtype and compares everything. */
function runCase(c: GoldenCase, dtype: DType, goBackwards: boolean): void {
  const { T, B, I, H } = c;
  const lstm = c.cell === 'lstm';
  const tol = TOL[dtype];
  const label = `${c.name} ${dtype}${goBackwards ? ' goBackwards (reversed input)' : ''}`;

  // The fixture promises float32-exact inputs; a float32 run would silently test something else otherwise.
  for (const [k, v] of Object.entries({ x: c.x, h0: c.h0 ?? [], c0: c.c0 ?? [], dy: c.dy, dhN: c.dhN, dcN: c.dcN ?? [], ...c.weights })) {
    const bad = v.findIndex((e) => Math.fround(e) !== e);
    assert.equal(bad, -1, `${c.name}: fixture ${k}[${bad}] = ${v[bad]} is not float32-representable`);
  }

  const layer = makeLayer(c, dtype, goBackwards);
  const shapes = layer.parameterShapes();
  layer.loadStateDict(Object.fromEntries(PARAMS.map((k) => [k, Tensor.from(typed(dtype, c.weights[k]), shapes[k])])));

  // Time-major fixture -> batch-first layer input, in the order the layer will process it.
  let xTime = typed(dtype, c.x);
  if (goBackwards) xTime = reverseTimeMajor(xTime, T, B, I);
  const x = Tensor.from(timeToBatch(xTime, T, B, I), [B, T, I]);
  const initialState = c.hasInitialState
    ? [Tensor.from(typed(dtype, c.h0!), [B, H]), ...(lstm ? [Tensor.from(typed(dtype, c.c0!), [B, H])] : [])]
    : undefined;
  const fwd = layer.forward(x, { initialState, training: true });
  assert.ok(fwd.run, `${label}: no training run`);
  assert.deepEqual(fwd.output.shape, [B, T, H], `${label}: output shape`);
  assert.equal(fwd.states.length, lstm ? 2 : 1, `${label}: number of states`);

  const dy = Tensor.from(timeToBatch(typed(dtype, c.dy), T, B, H), [B, T, H]);
  const dStates = [Tensor.from(typed(dtype, c.dhN), [B, H]), ...(lstm ? [Tensor.from(typed(dtype, c.dcN!), [B, H])] : [])];
  const grads = layer.backward(fwd.run, dy, { dStates });

  const out = (what: string, got: ArrayLike<number>, want: ArrayLike<number>, shape: number[]): void => {
    assertClose(got, want, { rtol: tol.output, floor: tol.floor, label: `${label}: ${what}`, shape });
  };
  const grad = (what: string, got: ArrayLike<number>, want: ArrayLike<number> | undefined, shape: number[]): void => {
    assert.ok(want, `${label}: the fixture has no ${what}`);
    assertClose(got, want, { rtol: tol.grad, floor: tol.floor, label: `${label}: ${what}`, shape });
  };

  // Outputs: batch-first -> time-major [T, B, H] to compare with the fixture.
  out('y [T, B, H]', batchToTime(fwd.output.data, B, T, H), c.y, [T, B, H]);
  out('hN', fwd.states[0].data, c.hN, [B, H]);
  if (lstm) out('cN', fwd.states[1].data, c.cN!, [B, H]);

  let dxTime = batchToTime(grads.input.data, B, T, I);
  if (goBackwards) dxTime = reverseTimeMajor(dxTime, T, B, I);
  grad('dL/dx [T, B, I]', dxTime, c.grads.x, [T, B, I]);
  if (c.hasInitialState) {
    grad('dL/dh0', grads.initialState[0].data, c.grads.h0, [B, H]);
    if (lstm) grad('dL/dc0', grads.initialState[1].data, c.grads.c0, [B, H]);
  }
  for (const k of PARAMS) grad(`dL/d${k}`, grads.params[k].data, c.grads[k], shapes[k]);
}

test('the fixture covers every cell and both initial-state modes', () => {
  const seen = new Set(fixture.cases.map((c) => `${c.cell}/${c.hasInitialState}`));
  for (const cell of ['gru', 'lstm', 'rnn_tanh', 'rnn_relu']) {
    for (const init of [true, false]) assert.ok(seen.has(`${cell}/${init}`), `no ${cell} case with hasInitialState=${init}`);
  }
});

describe('PyTorch golden vectors', () => {
  for (const c of fixture.cases) {
    for (const dtype of ['float64', 'float32'] as const) {
      test(`${c.name} ${dtype}`, () => runCase(c, dtype, false));
    }
  }
});

describe('PyTorch golden vectors through goBackwards layers on the time-reversed input', () => {
  for (const c of fixture.cases) {
    test(`${c.name} float64 goBackwards`, () => runCase(c, 'float64', true));
  }
});
