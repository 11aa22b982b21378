/**
 * The float32 layers against @tensorflow/tfjs (through test/helpers/tfjs-oracle.ts, its pure-JS
 * cpu backend): forward outputs (y, hN, cN) and every gradient of
 *
 *   L = sum(y ⊙ dy) + sum(hN ⊙ dhN) + sum(cN ⊙ dcN)
 *
 * for SimpleRNN (tanh, relu), LSTM and GRU with resetAfter: false (tfjs only has the reset-before
 * GRU), on random weights (PyTorch layout, set with loadStateDict) and random shapes including
 * B = 1 and T = 1, with and without initial states. Layers use returnSequences + returnState so
 * that y, hN and cN all carry gradient.
 *
 * Without initial states the layer starts from zeros and still returns dL/d(initial state); the
 * oracle is then given explicit zero states (same forward) so that gradient is checked too.
 *
 * goBackwards is checked against tfjs on the time-reversed input: a go-backwards layer's output k
 * is the state after processing x[T-1], ..., x[T-1-k] (Keras semantics, as documented), which is
 * the oracle's output k on the reversed sequence; its input gradient is the oracle's, reversed back.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { GRU, LSTM, SimpleRNN, Tensor, type Recurrent } from '../lib/index.js';
import { tfjsOracle, type OracleCell, type OracleInput } from './helpers/tfjs-oracle.js';
import {
  assertClose,
  batchToTime,
  randInt,
  reluMinPreactivation,
  reverseTimeMajor,
  rng,
  timeToBatch,
  uniform32,
  type CloseReport,
} from './helpers/compare.js';

/**
 * Tolerances, as |got - want| <= TOL · max(|want|, FLOOR).
 *
 * FLOOR = 0.02. Both sides compute in float32 (rnnkit with its polynomial exp/tanh, tfjs with its
 * own kernels and summation order), so every entry carries an absolute rounding error of a few
 * float32 ulps (6e-8) of the *terms it is summed from*, not of its own value. Inputs and weights are
 * O(1) and activations are bounded by 1, so those terms are O(0.1–1) and the absolute noise is
 * ~1e-7 whatever the entry's own size (an output that happens to be 1e-4 is still the tanh of a
 * sum of O(1) terms). A relative error is meaningful only down to a couple of percent of the data's
 * O(1) scale: below FLOOR the check turns into an absolute one of TOL·FLOOR (2e-7 on outputs, 2e-6
 * on gradients), which is still far below any real discrepancy (a wrong gate, sign or time index
 * shows up as errors of 1e-2 or more). Entries above FLOOR, the large majority, are held to a true
 * relative TOL.
 */
const OUTPUT_TOL = 1e-5;
const GRAD_TOL = 1e-4;
const FLOOR = 0.02;
/** Relu pre-activations must be at least this far from 0, or a float32 rounding could flip the kink. */
const RELU_MARGIN = 1e-4;

type Cell = 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru';
const CELLS: Cell[] = ['rnn_tanh', 'rnn_relu', 'lstm', 'gru'];
const gatesOf = (c: Cell): number => (c === 'lstm' ? 4 : c === 'gru' ? 3 : 1);

interface Shape {
  T: number;
  B: number;
  I: number;
  H: number;
}

interface Spec {
  cell: Cell;
  shape: Shape;
  initialState: boolean;
  goBackwards: boolean;
  seed: number;
}

function makeLayer(spec: Spec): Recurrent {
  const { I, H } = spec.shape;
  const common = { inputSize: I, units: H, returnSequences: true, returnState: true, goBackwards: spec.goBackwards, dtype: 'float32' as const, seed: spec.seed };
  switch (spec.cell) {
    case 'rnn_tanh':
      return new SimpleRNN({ ...common, activation: 'tanh' });
    case 'rnn_relu':
      return new SimpleRNN({ ...common, activation: 'relu' });
    case 'lstm':
      return new LSTM(common);
    case 'gru':
      return new GRU({ ...common, resetAfter: false });
  }
}

interface Data {
  weights: { weight_ih_l0: Float32Array; weight_hh_l0: Float32Array; bias_ih_l0: Float32Array; bias_hh_l0: Float32Array };
  /** Batch-first [B, T, I]. */
  x: Float32Array;
  h0: Float32Array;
  c0: Float32Array;
  /** Batch-first [B, T, H]. */
  dy: Float32Array;
  dhN: Float32Array;
  dcN: Float32Array;
}

function makeData(spec: Spec, seed: number): Data {
  const r = rng(seed);
  const { T, B, I, H } = spec.shape;
  const GH = gatesOf(spec.cell) * H;
  // A bit larger than PyTorch's default U(±1/sqrt(H)) so that the gates leave their linear regime.
  const w = 1.5 / Math.sqrt(H);
  return {
    weights: {
      weight_ih_l0: uniform32(r, GH * I, -w, w),
      weight_hh_l0: uniform32(r, GH * H, -w, w),
      bias_ih_l0: uniform32(r, GH, -w, w),
      bias_hh_l0: uniform32(r, GH, -w, w),
    },
    x: uniform32(r, B * T * I),
    h0: spec.initialState ? uniform32(r, B * H) : new Float32Array(B * H),
    c0: spec.initialState ? uniform32(r, B * H) : new Float32Array(B * H),
    dy: uniform32(r, B * T * H),
    dhN: uniform32(r, B * H),
    dcN: uniform32(r, B * H),
  };
}

/** The input in the order the layer processes it, time-major. */
function processedInput(spec: Spec, d: Data): Float32Array {
  const { T, B, I } = spec.shape;
  const xt = batchToTime(d.x, B, T, I);
  return spec.goBackwards ? reverseTimeMajor(xt, T, B, I) : xt;
}

function caseName(s: Spec): string {
  const { T, B, I, H } = s.shape;
  return `${s.cell}${s.cell === 'gru' ? ' (resetAfter: false)' : ''} T=${T} B=${B} I=${I} H=${H} init=${s.initialState} goBackwards=${s.goBackwards} seed=${s.seed}`;
}

const margins = { output: 0, grad: 0 };
const track = (kind: 'output' | 'grad', r: CloseReport): void => {
  margins[kind] = Math.max(margins[kind], r.worstRatio);
};

async function runCase(spec: Spec): Promise<void> {
  const name = caseName(spec);
  const { T, B, I, H } = spec.shape;
  const lstm = spec.cell === 'lstm';

  let seed = spec.seed;
  let d = makeData(spec, seed);
  if (spec.cell === 'rnn_relu') {
    let tries = 0;
    while (reluMinPreactivation(T, B, I, H, processedInput(spec, d), d.weights, spec.initialState ? d.h0 : undefined) < RELU_MARGIN) {
      assert.ok(++tries < 50, `${name}: no seed without relu pre-activations near 0`);
      d = makeData(spec, ++seed);
    }
  }

  // rnnkit
  const layer = makeLayer(spec);
  const shapes = layer.parameterShapes();
  layer.loadStateDict(Object.fromEntries(Object.entries(d.weights).map(([k, v]) => [k, Tensor.from(v, shapes[k])])));
  const init = spec.initialState
    ? [Tensor.from(d.h0, [B, H]), ...(lstm ? [Tensor.from(d.c0, [B, H])] : [])]
    : undefined;
  const fwd = layer.forward(Tensor.from(d.x, [B, T, I]), { initialState: init, training: true });
  assert.ok(fwd.run);
  assert.deepEqual(fwd.output.shape, [B, T, H]);
  assert.equal(fwd.states.length, lstm ? 2 : 1);
  const dStates = [Tensor.from(d.dhN, [B, H]), ...(lstm ? [Tensor.from(d.dcN, [B, H])] : [])];
  const grads = layer.backward(fwd.run, Tensor.from(d.dy, [B, T, H]), { dStates });

  // tfjs, time-major, on the sequence in processing order. Zero initial states are passed
  // explicitly when the layer had none (identical forward; yields the initial-state gradients).
  const oracleInput: OracleInput = {
    cell: spec.cell as OracleCell,
    T,
    B,
    I,
    H,
    x: processedInput(spec, d),
    h0: d.h0,
    ...(lstm ? { c0: d.c0, dcN: d.dcN } : {}),
    weights: d.weights,
    dy: batchToTime(d.dy, B, T, H),
    dhN: d.dhN,
  };
  const want = await tfjsOracle(oracleInput);

  const out = (label: string, got: ArrayLike<number>, w: ArrayLike<number>, shape: number[]): void =>
    track('output', assertClose(got, w, { rtol: OUTPUT_TOL, floor: FLOOR, label: `${name}: ${label}`, shape }));
  const grad = (label: string, got: ArrayLike<number>, w: ArrayLike<number> | undefined, shape: number[]): void => {
    assert.ok(w, `${name}: oracle has no ${label}`);
    track('grad', assertClose(got, w, { rtol: GRAD_TOL, floor: FLOOR, label: `${name}: ${label}`, shape }));
  };

  out('output y [B, T, H]', fwd.output.data, timeToBatch(want.y, T, B, H), [B, T, H]);
  out('hN', fwd.states[0].data, want.hN, [B, H]);
  if (lstm) out('cN', fwd.states[1].data, want.cN!, [B, H]);

  let wantDx = want.grads.x;
  if (spec.goBackwards) wantDx = reverseTimeMajor(wantDx, T, B, I);
  grad('dL/d input [B, T, I]', grads.input.data, timeToBatch(wantDx, T, B, I), [B, T, I]);
  grad('dL/d h0', grads.initialState[0].data, want.grads.h0, [B, H]);
  if (lstm) grad('dL/d c0', grads.initialState[1].data, want.grads.c0, [B, H]);
  for (const k of ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0'] as const) {
    grad(`dL/d ${k}`, grads.params[k].data, want.grads[k], shapes[k]);
  }
}

function shapesFor(cell: Cell): Shape[] {
  const r = rng(0x7f4a + CELLS.indexOf(cell));
  const rand = (): Shape => ({ T: randInt(r, 1, 6), B: randInt(r, 1, 4), I: randInt(r, 1, 7), H: randInt(r, 1, 8) });
  return [
    { T: 1, B: 1, I: 1, H: 1 },
    { T: 1, B: 3, I: 4, H: 5 },
    { T: 6, B: 1, I: 3, H: 4 },
    { T: 4, B: 3, I: 5, H: 7 },
    { T: 3, B: 2, I: 17, H: 19 }, // more than one 16-unit block in the native kernels
    rand(),
    rand(),
  ];
}

describe('float32 layers vs @tensorflow/tfjs', () => {
  let seed = 500;
  for (const cell of CELLS) {
    for (const shape of shapesFor(cell)) {
      for (const initialState of [false, true]) {
        const spec: Spec = { cell, shape, initialState, goBackwards: false, seed: seed++ };
        test(caseName(spec), () => runCase(spec));
      }
    }
  }
});

describe('float32 goBackwards layers vs @tensorflow/tfjs on the time-reversed input', () => {
  let seed = 900;
  for (const cell of CELLS) {
    for (const shape of [{ T: 1, B: 3, I: 2, H: 3 }, { T: 5, B: 1, I: 3, H: 4 }, { T: 4, B: 3, I: 5, H: 7 }]) {
      const spec: Spec = { cell, shape, initialState: shape.T > 1, goBackwards: true, seed: seed++ };
      test(caseName(spec), () => runCase(spec));
    }
  }
});

after(() => {
  // Shows how much of the tolerance the worst entries used (1 = at the limit).
  console.log(`# worst error / tolerance: outputs ${margins.output.toPrecision(3)}, gradients ${margins.grad.toPrecision(3)}`);
});
