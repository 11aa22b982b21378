/**
 * rnnkit's Bidirectional wrapper (every merge mode) and its stacks (numLayers, bidirectional: true)
 * against @tensorflow/tfjs (pure-JS cpu backend, float32, through test/helpers/tfjs-bidirectional.ts):
 * outputs, final states and every gradient of
 *
 *   L = Σ sum(output_k ⊙ r_k) + Σ sum(state_s ⊙ dState_s)
 *
 * (r_k random; the state term only with returnState) with respect to the input, the initial states and
 * every parameter, for LSTM, GRU (resetAfter: false, the only GRU tfjs has) and SimpleRNN (tanh), with
 * returnSequences on and off, returnState on and off, zero or random initial states.
 *
 *  - `new Bidirectional(layer, { mergeMode })` vs `tf.layers.bidirectional({ layer, mergeMode })`
 *    ('none' = tfjs's null mode, whose two outputs are compared with `outputs` and, concatenated, with
 *    `output`). States [h_fw(, c_fw), h_bw(, c_bw)] are the same list in both.
 *  - `numLayers: L` vs L stacked tfjs layers (lower ones with returnSequences), and with
 *    `bidirectional: true` vs L stacked tfjs Bidirectional(concat) layers. rnnkit's states
 *    [h, c] each [L·D, B, H] are compared with every tfjs layer's final states (all tfjs layers are
 *    built with returnState).
 *
 * Gate activations are set on both sides (tfjs's LSTM/GRU default is hardSigmoid, rnnkit's sigmoid);
 * the hardSigmoid cases are drawn so that no gate pre-activation comes within EDGE_MARGIN of its kinks
 * ±2.5 (checked through the whole stack with the float64 references of the cell-option tests), where a
 * float32 rounding could flip the piece and the derivative with it.
 *
 * Before the comparisons: the stack oracle is checked against the single-layer oracle
 * (test/helpers/tfjs-oracle.ts, itself checked against float64 finite differences), including tfjs's
 * Bidirectional against "forward layer on x, backward layer on reversed x, re-reversed". After them,
 * controls show the comparison fails when it should (swapped directions, time-misaligned backward half,
 * the wrong gate activation or GRU variant, any single perturbed parameter of a stack).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';

import { Bidirectional, GRU, LSTM, SimpleRNN, Tensor, type Gradients, type MergeMode, type Recurrent } from '../lib/index.js';
import { tfjsStack, paramSuffix, stateCountOf, type TfjsStackInput, type TfjsStackResult } from './helpers/tfjs-bidirectional.js';
import { tfjsOracle, type OracleCell } from './helpers/tfjs-oracle.js';
import { KinkTracker } from './helpers/activation-reference.js';
import { lstmVariantReference } from './helpers/lstm-variants-reference.js';
import { rnnGruReference } from './helpers/cell-options-reference.js';
import {
  assertBitIdentical,
  assertClose,
  batchToTime,
  compare,
  reverseTimeMajor,
  rng,
  timeToBatch,
  uniform32,
  type NumArray,
} from './helpers/compare.js';

/**
 * Tolerances, |got − want| <= TOL · max(|want|, FLOOR): the same as test/tfjs.test.ts (see the reasoning
 * there: both sides are float32, every entry carries an absolute rounding noise of a few ulps of the O(1)
 * terms it is summed from, so below FLOOR the check is an absolute TOL·FLOOR).
 */
const OUTPUT_TOL = 1e-5;
const GRAD_TOL = 1e-4;
const FLOOR = 0.02;
/** Gate pre-activations stay this far from hardSigmoid's kinks ±2.5 (float32 rounding is ~1e-6). */
const EDGE_MARGIN = 1e-3;
/**
 * A reference (output or gradient) whose largest entry is below this would make its check vacuous
 * (50× the absolute tolerance GRAD_TOL·FLOOR). The one legitimate exception is dL/d weight_hh with
 * T = 1 and a zero initial state, which is exactly 0 (it is still compared).
 */
const NONTRIVIAL = 1e-4;

type Cell = 'lstm' | 'gru' | 'rnn';
type Gate = 'sigmoid' | 'hardSigmoid';
const MERGE_MODES: MergeMode[] = ['concat', 'sum', 'mul', 'ave', 'none'];

interface Spec {
  /** rnnkit's Bidirectional wrapper (one layer, any merge mode), else a numLayers/bidirectional stack. */
  wrapper: boolean;
  cell: Cell;
  /** LSTM/GRU gate activation, on both sides. */
  gate: Gate;
  numLayers: number;
  bidirectional: boolean;
  /** The (top) merge mode; 'concat' for stacks. */
  mergeMode: MergeMode;
  returnSequences: boolean;
  returnState: boolean;
  /** Random initial states (else none: zeros, whose gradient is still checked). */
  init: boolean;
  B: number;
  T: number;
  I: number;
  H: number;
  seed: number;
}

const oracleCell = (c: Cell): OracleCell => (c === 'rnn' ? 'rnn_tanh' : c);
const dirs = (s: Spec): 1 | 2 => (s.bidirectional ? 2 : 1);
const states = (s: Spec): 1 | 2 => stateCountOf(oracleCell(s.cell));
const twoOutputs = (s: Spec): boolean => s.bidirectional && s.mergeMode === 'none';
/** Width of one step of `output`. */
const widthOf = (s: Spec): number => (s.mergeMode === 'concat' || s.mergeMode === 'none' ? dirs(s) * s.H : s.H);
const outShape = (s: Spec, width: number): number[] => (s.returnSequences ? [s.B, s.T, width] : [s.B, width]);
const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function caseName(s: Spec): string {
  const kind = s.wrapper
    ? `Bidirectional(${s.mergeMode})`
    : `numLayers=${s.numLayers}${s.bidirectional ? ' bidirectional' : ''}`;
  const cell = s.cell === 'lstm' ? `LSTM(${s.gate})` : s.cell === 'gru' ? `GRU(reset-before, ${s.gate})` : 'SimpleRNN(tanh)';
  return `${cell} ${kind} returnSequences=${s.returnSequences} returnState=${s.returnState} init=${s.init} B=${s.B} T=${s.T} I=${s.I} H=${s.H} seed=${s.seed}`;
}

function makeLayer(s: Spec, over: { gate?: Gate; resetAfter?: boolean } = {}): Bidirectional | Recurrent {
  const base = {
    inputSize: s.I,
    units: s.H,
    returnSequences: s.returnSequences,
    returnState: s.returnState,
    seed: s.seed,
    ...(s.wrapper ? {} : { numLayers: s.numLayers, bidirectional: s.bidirectional }),
  };
  const gate = over.gate ?? s.gate;
  const inner =
    s.cell === 'lstm'
      ? new LSTM({ ...base, recurrentActivation: gate })
      : s.cell === 'gru'
        ? new GRU({ ...base, recurrentActivation: gate, resetAfter: over.resetAfter ?? false })
        : new SimpleRNN({ ...base, activation: 'tanh' });
  return s.wrapper ? new Bidirectional(inner, { mergeMode: s.mergeMode }) : inner;
}

// ---------------------------------------------------------------------------------------------
// Problems

interface Problem {
  /** PyTorch names and layout, as rnnkit's stateDict(). */
  weights: Record<string, Float32Array>;
  /** [B, T, I] */
  x: Float32Array;
  /** Per layer, tfjs order ([h(, c)] or [h_fw(, c_fw), h_bw(, c_bw)]), each [B, H]. */
  init?: Float32Array[][];
  /** Upstream gradients of the output: one, or [forward, backward] for 'none'. */
  dOutputs: Float32Array[];
  /** Per layer, tfjs order (returnState only). */
  dStates?: Float32Array[][];
}

function makeProblem(s: Spec, shapes: Record<string, number[]>, seed: number): Problem {
  const r = rng(seed);
  const { B, H, numLayers: L } = s;
  const perLayer = (): Float32Array[][] => Array.from({ length: L }, () => Array.from({ length: dirs(s) * states(s) }, () => uniform32(r, B * H)));
  // Larger than PyTorch's U(±1/√H) so the gates leave their linear regime. For hardSigmoid, scaled so a
  // gate pre-activation (about I + H + 2 terms) has a spread of ~1: it saturates sometimes, not always.
  const w = s.gate === 'hardSigmoid' && s.cell !== 'rnn' ? 3 / Math.sqrt(s.I + H + 2) : 1.5 / Math.sqrt(H);
  const weights = Object.fromEntries(Object.entries(shapes).map(([k, shape]) => [k, uniform32(r, size(shape), -w, w)]));
  const x = uniform32(r, B * s.T * s.I);
  const init = s.init ? perLayer() : undefined;
  const dOutputs = twoOutputs(s)
    ? [uniform32(r, size(outShape(s, H))), uniform32(r, size(outShape(s, H)))]
    : [uniform32(r, size(outShape(s, widthOf(s))))];
  const dStates = s.returnState ? perLayer() : undefined;
  return { weights, x, init, dOutputs, dStates };
}

/** Time-major [T, B, D·H] from the directions' time-aligned [T, B, H] outputs. */
function concatFeatures(parts: Float64Array[], rows: number, H: number): Float64Array {
  const out = new Float64Array(rows * parts.length * H);
  for (let q = 0; q < rows; q++) parts.forEach((p, d) => out.set(p.subarray(q * H, (q + 1) * H), (q * parts.length + d) * H));
  return out;
}

/**
 * Runs the float64 references through the whole stack (layer l > 0 reading the time-aligned
 * concatenation of layer l−1's directions) with hardSigmoid gates; the tracker knows how close a gate
 * pre-activation came to a kink and which pieces the gates visited.
 */
function hardSigmoidTracker(s: Spec, p: Problem): KinkTracker {
  const { B, T, H, numLayers: L } = s;
  const D = dirs(s), S = states(s);
  const tracker = new KinkTracker();
  let input: Float64Array = batchToTime(Float64Array.from(p.x), B, T, s.I);
  let inSize = s.I;
  for (let l = 0; l < L; l++) {
    const ys: Float64Array[] = [];
    for (let d = 0; d < D; d++) {
      const sfx = paramSuffix(l, d);
      const weights = {
        weight_ih_l0: p.weights[`weight_ih${sfx}`],
        weight_hh_l0: p.weights[`weight_hh${sfx}`],
        bias_ih_l0: p.weights[`bias_ih${sfx}`],
        bias_hh_l0: p.weights[`bias_hh${sfx}`],
      };
      const x = d === 1 ? reverseTimeMajor(input, T, B, inSize) : input;
      const h0 = p.init?.[l][d * S];
      const y =
        s.cell === 'lstm'
          ? lstmVariantReference({ T, B, I: inSize, H, x, h0, c0: p.init?.[l][d * S + 1], weights, options: { gate: 'hardSigmoid' }, tracker }).y
          : rnnGruReference({ cell: 'gru', T, B, I: inSize, H, x, h0, weights, recurrentActivation: 'hardSigmoid', resetAfter: false, tracker }).y;
      ys.push(d === 1 ? reverseTimeMajor(y, T, B, H) : y);
    }
    input = concatFeatures(ys, T * B, H);
    inSize = D * H;
  }
  return tracker;
}

/** Pieces of hardSigmoid (0: saturated at 0, 1: linear, 2: saturated at 1) the gates of the hardSigmoid cases visited. */
const hardSigmoidPieces = new Set<number>();

/** A problem for the case; hardSigmoid cases are redrawn until no gate comes near a kink. */
function problemFor(s: Spec, shapes: Record<string, number[]>): Problem {
  if (s.gate !== 'hardSigmoid' || s.cell === 'rnn') return makeProblem(s, shapes, s.seed);
  let closest = Infinity;
  for (let attempt = 0; attempt < 50; attempt++) {
    const p = makeProblem(s, shapes, s.seed + 1000 * attempt);
    const tracker = hardSigmoidTracker(s, p);
    const m = tracker.minDistance;
    if (m >= EDGE_MARGIN) {
      for (const [role, { seen }] of tracker.pieces) if (role.endsWith(' hardSigmoid')) for (const k of seen) hardSigmoidPieces.add(k);
      return p;
    }
    closest = Math.min(closest, m);
  }
  assert.fail(`${caseName(s)}: no seed keeps the hardSigmoid gates ${EDGE_MARGIN} away from their kinks (closest ${closest})`);
}

// ---------------------------------------------------------------------------------------------
// The two sides

function tfjsInput(s: Spec, p: Problem, weights = p.weights): TfjsStackInput {
  return {
    cell: oracleCell(s.cell),
    ...(s.cell === 'rnn' ? {} : { recurrentActivation: s.gate }),
    B: s.B,
    T: s.T,
    I: s.I,
    H: s.H,
    numLayers: s.numLayers,
    bidirectional: s.bidirectional,
    ...(s.bidirectional ? { mergeMode: s.mergeMode } : {}),
    returnSequences: s.returnSequences,
    x: p.x,
    weights,
    initialStates: p.init,
    dOutputs: p.dOutputs,
    dStates: p.dStates,
  };
}

/**
 * Per-layer state lists (tfjs order) in rnnkit's layout: the wrapper's [h_fw(, c_fw), h_bw(, c_bw)] each
 * [B, H], or a stack's [h, c] each [L·D, B, H] (index l·D + d).
 */
function rnnkitStates(s: Spec, perLayer: Float32Array[][]): { data: Float32Array; shape: number[] }[] {
  const { B, H, numLayers: L } = s;
  if (s.wrapper) return perLayer[0].map((data) => ({ data, shape: [B, H] }));
  const D = dirs(s), S = states(s);
  return Array.from({ length: S }, (_, k) => {
    const data = new Float32Array(L * D * B * H);
    for (let l = 0; l < L; l++) for (let d = 0; d < D; d++) data.set(perLayer[l][d * S + k], (l * D + d) * B * H);
    return { data, shape: [L * D, B, H] };
  });
}

const tensors = (list: { data: Float32Array; shape: number[] }[]): Tensor[] => list.map((t) => Tensor.from(t.data, t.shape));

interface Ours {
  output: Tensor;
  outputs?: Tensor[];
  states: Tensor[];
  grads: Gradients;
  /** 'none' only: the gradients with dOutput given as one concatenated tensor. */
  gradsJoined?: Gradients;
}

function runOurs(s: Spec, p: Problem, layer: Bidirectional | Recurrent, weights = p.weights): Ours {
  const shapes = layer.parameterShapes();
  layer.loadStateDict(Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, Tensor.from(v, shapes[k])])));
  const initialState = p.init ? tensors(rnnkitStates(s, p.init)) : undefined;
  const fwd = layer.forward(Tensor.from(p.x, [s.B, s.T, s.I]), { training: true, ...(initialState ? { initialState } : {}) });
  assert.ok(fwd.run, 'forward with training: true returned no run');
  const dStates = p.dStates ? tensors(rnnkitStates(s, p.dStates)) : undefined;
  const opts = dStates ? { dStates } : undefined;
  if (!twoOutputs(s)) {
    const grads = layer.backward(fwd.run, Tensor.from(p.dOutputs[0], outShape(s, widthOf(s))), opts);
    return { output: fwd.output, outputs: fwd.outputs, states: fwd.states, grads };
  }
  const halves = p.dOutputs.map((g) => Tensor.from(g, outShape(s, s.H)));
  const grads = layer.backward(fwd.run, halves, opts);
  const joined = Tensor.from(concatLast(p.dOutputs, size(outShape(s, 1)), s.H), outShape(s, 2 * s.H));
  const gradsJoined = layer.backward(fwd.run, joined, opts);
  return { output: fwd.output, outputs: fwd.outputs, states: fwd.states, grads, gradsJoined };
}

/** [rows, H] parts → [rows, parts·H]. */
function concatLast(parts: Float32Array[], rows: number, H: number): Float32Array {
  const out = new Float32Array(rows * parts.length * H);
  for (let q = 0; q < rows; q++) parts.forEach((p, d) => out.set(p.subarray(q * H, (q + 1) * H), (q * parts.length + d) * H));
  return out;
}

/** [rows, W] → columns [from, from + H) as [rows, H]. */
function sliceLast(a: Float32Array, rows: number, W: number, from: number, H: number): Float32Array {
  const out = new Float32Array(rows * H);
  for (let q = 0; q < rows; q++) out.set(a.subarray(q * W + from, q * W + from + H), q * H);
  return out;
}

interface Item {
  kind: 'output' | 'grad';
  label: string;
  /** May legitimately be all zeros (see NONTRIVIAL). */
  mayVanish?: boolean;
  got: NumArray;
  want: NumArray;
  shape: number[];
}

/** Every compared quantity, rnnkit vs tfjs. */
function items(s: Spec, ours: Ours, want: TfjsStackResult): Item[] {
  const out: Item[] = [];
  const add = (kind: Item['kind'], label: string, got: Tensor | undefined, w: NumArray, shape: number[], mayVanish = false): void => {
    assert.ok(got, `${label}: missing on the rnnkit side`);
    assert.deepEqual(got.shape, shape, `${label}: shape`);
    out.push({ kind, label, got: got.data, want: w, shape, mayVanish });
  };
  const rows = size(outShape(s, 1));
  if (twoOutputs(s)) {
    assert.equal(ours.outputs?.length, 2, "mergeMode 'none': outputs must be [forward, backward]");
    add('output', 'output (concatenation)', ours.output, concatLast(want.outputs, rows, s.H), outShape(s, 2 * s.H));
    add('output', 'outputs[0] (forward)', ours.outputs![0], want.outputs[0], outShape(s, s.H));
    add('output', 'outputs[1] (backward)', ours.outputs![1], want.outputs[1], outShape(s, s.H));
  } else {
    assert.equal(ours.outputs, undefined, `mergeMode '${s.mergeMode}': outputs must be absent`);
    add('output', 'output', ours.output, want.outputs[0], outShape(s, widthOf(s)));
  }
  const stateNames = s.wrapper
    ? states(s) === 2 ? ['h_fw', 'c_fw', 'h_bw', 'c_bw'] : ['h_fw', 'h_bw']
    : states(s) === 2 ? ['h', 'c'] : ['h'];
  if (s.returnState) {
    const w = rnnkitStates(s, want.states);
    assert.equal(ours.states.length, w.length, 'number of returned states');
    w.forEach((t, k) => add('output', `state ${stateNames[k]}`, ours.states[k], t.data, t.shape));
  } else {
    assert.equal(ours.states.length, 0, 'returnState false: no states');
  }
  add('grad', 'dL/d input', ours.grads.input, want.grads.x, [s.B, s.T, s.I]);
  const dInit = rnnkitStates(s, want.grads.initialStates);
  assert.equal(ours.grads.initialState.length, dInit.length, 'number of initial-state gradients');
  dInit.forEach((t, k) => add('grad', `dL/d initial ${stateNames[k]}`, ours.grads.initialState[k], t.data, t.shape));
  assert.deepEqual(Object.keys(ours.grads.params).sort(), Object.keys(want.grads.params).sort(), 'parameter gradient names');
  for (const [k, w] of Object.entries(want.grads.params)) {
    add('grad', `dL/d ${k}`, ours.grads.params[k], w, [...ours.grads.params[k].shape], k.startsWith('weight_hh') && s.T === 1 && !s.init);
  }
  return out;
}

const tolOf = (kind: Item['kind']) => ({ rtol: kind === 'output' ? OUTPUT_TOL : GRAD_TOL, floor: FLOOR });
/** Largest error/tolerance ratio over the items. */
const worstOf = (list: Item[]): number => Math.max(...list.map((it) => compare(it.got, it.want, tolOf(it.kind)).worstRatio));
const maxAbs = (a: NumArray): number => {
  let m = 0;
  for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k]));
  return m;
};

const worst = { output: { ratio: 0, where: '' }, grad: { ratio: 0, where: '' } };
let compared = 0;

async function runCase(s: Spec): Promise<void> {
  const name = caseName(s);
  const layer = makeLayer(s);
  const p = problemFor(s, layer.parameterShapes());
  const want = await tfjsStack(tfjsInput(s, p));
  const ours = runOurs(s, p, layer);
  for (const it of items(s, ours, want)) {
    const label = `${name}: ${it.label}`;
    assert.ok(it.mayVanish || maxAbs(it.want) > NONTRIVIAL, `${label}: the tfjs reference is ~0 (max |entry| ${maxAbs(it.want)}), the check would be vacuous`);
    const r = assertClose(it.got, it.want, { ...tolOf(it.kind), label, shape: it.shape });
    if (r.worstRatio > worst[it.kind].ratio) worst[it.kind] = { ratio: r.worstRatio, where: label };
    compared++;
  }
  if (ours.gradsJoined) {
    // 'none' also takes dOutput as one concatenated tensor: the same gradients, bit for bit.
    const a = ours.grads, b = ours.gradsJoined;
    assertBitIdentical(b.input.data as Float32Array, a.input.data as Float32Array, `${name}: dL/d input, joined vs [dForward, dBackward]`);
    for (const k of Object.keys(a.params)) {
      assertBitIdentical(b.params[k].data as Float32Array, a.params[k].data as Float32Array, `${name}: dL/d ${k}, joined vs [dForward, dBackward]`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The oracle itself

describe('tfjs stack oracle (test/helpers/tfjs-bidirectional.ts) vs the single-layer oracle', () => {
  const close = (label: string, got: NumArray, want: NumArray): void => {
    assertClose(got, want, { rtol: 1e-6, floor: FLOOR, label });
  };

  for (const cell of ['lstm', 'gru', 'rnn_tanh'] as const) {
    test(`${cell}: one unidirectional layer equals tfjsOracle`, async () => {
      const [B, T, I, H] = [2, 4, 3, 3];
      const G = cell === 'lstm' ? 4 : cell === 'gru' ? 3 : 1;
      const S = stateCountOf(cell);
      const r = rng(77 + G);
      const w = 1.5 / Math.sqrt(H);
      const weights = {
        weight_ih_l0: uniform32(r, G * H * I, -w, w),
        weight_hh_l0: uniform32(r, G * H * H, -w, w),
        bias_ih_l0: uniform32(r, G * H, -w, w),
        bias_hh_l0: uniform32(r, G * H, -w, w),
      };
      const x = uniform32(r, B * T * I);
      const init = Array.from({ length: S }, () => uniform32(r, B * H));
      const dy = uniform32(r, B * T * H);
      const dS = Array.from({ length: S }, () => uniform32(r, B * H));
      const got = await tfjsStack({
        cell, ...(cell === 'rnn_tanh' ? {} : { recurrentActivation: 'sigmoid' as const }), B, T, I, H, numLayers: 1, bidirectional: false,
        returnSequences: true, x, weights, initialStates: [init], dOutputs: [dy], dStates: [dS],
      });
      const want = await tfjsOracle({
        cell, T, B, I, H, x: batchToTime(x, B, T, I), h0: init[0], ...(S === 2 ? { c0: init[1], dcN: dS[1] } : {}),
        weights, dy: batchToTime(dy, B, T, H), dhN: dS[0],
      });
      close('y', got.outputs[0], timeToBatch(want.y, T, B, H));
      close('hN', got.states[0][0], want.hN);
      if (S === 2) close('cN', got.states[0][1], want.cN!);
      close('dx', got.grads.x, timeToBatch(want.grads.x, T, B, I));
      close('dh0', got.grads.initialStates[0][0], want.grads.h0!);
      if (S === 2) close('dc0', got.grads.initialStates[0][1], want.grads.c0!);
      for (const k of Object.keys(weights) as (keyof typeof weights)[]) close(k, got.grads.params[k], want.grads[k]);
    });
  }

  for (const returnSequences of [true, false]) {
    test(`LSTM: tfjs Bidirectional(concat) returnSequences=${returnSequences} = forward layer on x ++ backward layer on reversed x, re-reversed`, async () => {
      const [B, T, I, H] = [2, 5, 3, 4];
      const r = rng(4242 + Number(returnSequences));
      const w = 1.5 / Math.sqrt(H);
      const dir = () => ({
        weight_ih_l0: uniform32(r, 4 * H * I, -w, w),
        weight_hh_l0: uniform32(r, 4 * H * H, -w, w),
        bias_ih_l0: uniform32(r, 4 * H, -w, w),
        bias_hh_l0: uniform32(r, 4 * H, -w, w),
      });
      const fw = dir(), bw = dir();
      const weights: Record<string, Float32Array> = { ...fw };
      for (const [k, v] of Object.entries(bw)) weights[`${k}_reverse`] = v;
      const x = uniform32(r, B * T * I);
      const init = Array.from({ length: 4 }, () => uniform32(r, B * H));
      const rows = returnSequences ? B * T : B;
      const dOut = uniform32(r, rows * 2 * H);
      const dS = Array.from({ length: 4 }, () => uniform32(r, B * H));
      const before = tf.memory().numTensors;
      const got = await tfjsStack({
        cell: 'lstm', recurrentActivation: 'sigmoid', B, T, I, H, numLayers: 1, bidirectional: true, mergeMode: 'concat',
        returnSequences, x, weights, initialStates: [init], dOutputs: [dOut], dStates: [dS],
      });
      assert.equal(tf.memory().numTensors, before, 'tfjsStack leaked tensors');

      // The composition: the backward direction reads the reversed sequence and its outputs are re-reversed.
      const xt = batchToTime(x, B, T, I);
      const dFw = sliceLast(dOut, rows, 2 * H, 0, H), dBw = sliceLast(dOut, rows, 2 * H, H, H);
      const zerosY = new Float32Array(T * B * H);
      const f = await tfjsOracle({
        cell: 'lstm', T, B, I, H, x: xt, h0: init[0], c0: init[1], weights: fw,
        dy: returnSequences ? batchToTime(dFw, B, T, H) : zerosY,
        dhN: returnSequences ? dS[0] : dS[0].map((v, k) => v + dFw[k]), dcN: dS[1],
      });
      const b = await tfjsOracle({
        cell: 'lstm', T, B, I, H, x: reverseTimeMajor(xt, T, B, I), h0: init[2], c0: init[3], weights: bw,
        dy: returnSequences ? reverseTimeMajor(batchToTime(dBw, B, T, H), T, B, H) : zerosY,
        dhN: returnSequences ? dS[2] : dS[2].map((v, k) => v + dBw[k]), dcN: dS[3],
      });
      const yF = returnSequences ? timeToBatch(f.y, T, B, H) : f.hN;
      const yB = returnSequences ? timeToBatch(reverseTimeMajor(b.y, T, B, H), T, B, H) : b.hN;
      close('merged output', got.outputs[0], concatLast([yF, yB], rows, H));
      [f.hN, f.cN!, b.hN, b.cN!].forEach((want, k) => close(`state ${k}`, got.states[0][k], want));
      const dx = timeToBatch(f.grads.x, T, B, I);
      const dxB = timeToBatch(reverseTimeMajor(b.grads.x, T, B, I), T, B, I);
      close('dx', got.grads.x, dx.map((v, k) => v + dxB[k]));
      [f.grads.h0!, f.grads.c0!, b.grads.h0!, b.grads.c0!].forEach((want, k) => close(`d initial ${k}`, got.grads.initialStates[0][k], want));
      for (const k of Object.keys(fw) as (keyof typeof fw)[]) {
        close(k, got.grads.params[k], f.grads[k]);
        close(`${k}_reverse`, got.grads.params[`${k}_reverse`], b.grads[k]);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// rnnkit vs tfjs

const WRAPPER_SHAPES = [
  { B: 2, T: 4, I: 3, H: 3 },
  { B: 1, T: 5, I: 2, H: 4 },
  { B: 3, T: 1, I: 4, H: 2 },
  { B: 2, T: 3, I: 5, H: 17 }, // more than one 16-unit block in the native kernels
  { B: 4, T: 3, I: 1, H: 1 },
  { B: 2, T: 6, I: 3, H: 5 },
];

describe('Bidirectional (every merge mode) vs tfjs Bidirectional', () => {
  let n = 0;
  for (const cell of ['lstm', 'gru', 'rnn'] as const) {
    for (const mergeMode of MERGE_MODES) {
      for (const returnSequences of [true, false]) {
        for (const returnState of [true, false]) {
          const spec: Spec = {
            wrapper: true, cell, gate: Math.floor(n / 2) % 2 === 0 ? 'hardSigmoid' : 'sigmoid', numLayers: 1, bidirectional: true,
            mergeMode, returnSequences, returnState, init: n % 2 === 1, ...WRAPPER_SHAPES[n % WRAPPER_SHAPES.length], seed: 3000 + n,
          };
          n++;
          test(caseName(spec), () => runCase(spec));
        }
      }
    }
  }
});

const STACK_SHAPES = [
  { B: 2, T: 4, I: 3, H: 3 },
  { B: 3, T: 3, I: 2, H: 4 },
  { B: 1, T: 5, I: 4, H: 2 },
  { B: 2, T: 2, I: 3, H: 5 },
];

describe('stacks (numLayers, bidirectional) vs stacked tfjs layers', () => {
  let n = 0;
  for (const bidirectional of [false, true]) {
    for (const cell of ['lstm', 'gru', 'rnn'] as const) {
      for (const returnSequences of [true, false]) {
        for (const returnState of [true, false]) {
          const spec: Spec = {
            wrapper: false, cell, gate: n % 2 === 0 ? 'sigmoid' : 'hardSigmoid', numLayers: 2, bidirectional, mergeMode: 'concat',
            returnSequences, returnState, init: Math.floor(n / 2) % 2 === 0, ...STACK_SHAPES[n % STACK_SHAPES.length], seed: 5000 + n,
          };
          n++;
          test(caseName(spec), () => runCase(spec));
        }
      }
    }
  }
  for (const [cell, bidirectional] of [['lstm', false], ['gru', true], ['lstm', true]] as const) {
    const spec: Spec = {
      wrapper: false, cell, gate: 'sigmoid', numLayers: 3, bidirectional, mergeMode: 'concat', returnSequences: true, returnState: true,
      init: true, B: 2, T: 3, I: 2, H: 3, seed: 5100 + n++,
    };
    test(caseName(spec), () => runCase(spec));
  }
});

// ---------------------------------------------------------------------------------------------
// Controls: the comparison fails when it should

/** The comparison of a modified rnnkit run against tfjs must miss its tolerance by at least `factor`. */
function assertDetected(label: string, list: Item[], factor = 10): number {
  const w = worstOf(list);
  assert.ok(w > factor, `${label}: rnnkit stays within ${w.toPrecision(3)}× the tolerance of tfjs; the comparison would not notice`);
  return w;
}

describe('controls', () => {
  const base = (over: Partial<Spec>): Spec => ({
    wrapper: true, cell: 'lstm', gate: 'sigmoid', numLayers: 1, bidirectional: true, mergeMode: 'concat', returnSequences: true,
    returnState: true, init: false, B: 2, T: 4, I: 3, H: 3, seed: 7000, ...over,
  });

  for (const mergeMode of MERGE_MODES) {
    for (const returnSequences of [true, false]) {
      test(`swapping the two directions' weights is detected: Bidirectional(${mergeMode}) returnSequences=${returnSequences}`, async () => {
        const s = base({ mergeMode, returnSequences, returnState: false });
        const layer = makeLayer(s);
        const p = problemFor(s, layer.parameterShapes());
        const want = await tfjsStack(tfjsInput(s, p));
        const swapped = Object.fromEntries(
          Object.entries(p.weights).map(([k, v]) => [k, p.weights[k.endsWith('_reverse') ? k.slice(0, -'_reverse'.length) : `${k}_reverse`] ?? v]),
        );
        assert.ok(worstOf(items(s, runOurs(s, p, layer), want)) <= 1, 'the unmodified run must pass');
        const list = items(s, runOurs(s, p, layer, swapped), want);
        assertDetected('outputs, swapped directions', list.filter((it) => it.kind === 'output'));
        assertDetected('parameter gradients, swapped directions', list.filter((it) => it.label.startsWith('dL/d weight')));
      });
    }
  }

  test("a backward half in processing order (not time-aligned) is detected: Bidirectional('none')", async () => {
    const s = base({ mergeMode: 'none', T: 5 });
    const layer = makeLayer(s);
    const p = problemFor(s, layer.parameterShapes());
    const want = await tfjsStack(tfjsInput(s, p));
    const ours = runOurs(s, p, layer);
    const bw = ours.outputs![1].data as Float32Array;
    const inProcessingOrder = timeToBatch(reverseTimeMajor(batchToTime(bw, s.B, s.T, s.H), s.T, s.B, s.H), s.T, s.B, s.H);
    assertClose(bw, want.outputs[1], { rtol: OUTPUT_TOL, floor: FLOOR, label: 'aligned backward half' });
    assertDetected('reversed backward half', [{ kind: 'output', label: 'bw', got: inProcessingOrder, want: want.outputs[1], shape: [s.B, s.T, s.H] }]);
    assertDetected('forward half as backward half', [{ kind: 'output', label: 'fw', got: ours.outputs![0].data, want: want.outputs[1], shape: [s.B, s.T, s.H] }]);
  });

  test("rnnkit's default sigmoid gates against tfjs's hardSigmoid are detected (LSTM and GRU, Bidirectional)", async () => {
    for (const cell of ['lstm', 'gru'] as const) {
      const s = base({ cell, gate: 'hardSigmoid', mergeMode: 'sum' });
      const p = problemFor(s, makeLayer(s).parameterShapes());
      const want = await tfjsStack(tfjsInput(s, p));
      assert.ok(worstOf(items(s, runOurs(s, p, makeLayer(s)), want)) <= 1, `${cell}: the matching run must pass`);
      assertDetected(`${cell} sigmoid vs hardSigmoid`, items(s, runOurs(s, p, makeLayer(s, { gate: 'sigmoid' })), want).filter((it) => it.kind === 'output'));
    }
  });

  test('a reset-after GRU (rnnkit default) against tfjs (reset-before) is detected', async () => {
    const s = base({ cell: 'gru', mergeMode: 'concat' });
    const p = problemFor(s, makeLayer(s).parameterShapes());
    const want = await tfjsStack(tfjsInput(s, p));
    assertDetected('GRU resetAfter: true', items(s, runOurs(s, p, makeLayer(s, { resetAfter: true })), want).filter((it) => it.kind === 'output'));
  });

  test('perturbing any single parameter of a 2-layer bidirectional LSTM stack is detected', async () => {
    const s = base({ wrapper: false, numLayers: 2, init: true, seed: 7100 });
    const layer = makeLayer(s);
    const p = problemFor(s, layer.parameterShapes());
    const want = await tfjsStack(tfjsInput(s, p));
    const ours = runOurs(s, p, layer);
    assert.ok(worstOf(items(s, ours, want)) <= 1, 'the unmodified run must pass');
    const names = Object.keys(p.weights);
    assert.equal(names.length, 16, `expected 16 parameters (2 layers × 2 directions × 4), got [${names.join(', ')}]`);
    for (const k of names) {
      // The entry the loss is most sensitive to, moved by 0.01.
      const g = ours.grads.params[k].data;
      let at = 0;
      for (let q = 1; q < g.length; q++) if (Math.abs(g[q]) > Math.abs(g[at])) at = q;
      const v = Float32Array.from(p.weights[k]);
      v[at] += 0.01;
      assertDetected(`${k}[${at}] + 0.01`, items(s, runOurs(s, p, makeLayer(s), { ...p.weights, [k]: v }), want));
    }
  });
});

describe('coverage', () => {
  test('the hardSigmoid cases put gates on all three pieces of hardSigmoid (both saturations and the linear part)', () => {
    assert.deepEqual([...hardSigmoidPieces].sort(), [0, 1, 2]);
  });
});

after(() => {
  console.log(
    `# ${compared} comparisons; worst error / tolerance: outputs ${worst.output.ratio.toPrecision(3)} (${worst.output.where}), ` +
      `gradients ${worst.grad.ratio.toPrecision(3)} (${worst.grad.where})`,
  );
});
