/**
 * The cell options against onnxruntime-node as the oracle, for everything the ONNX LSTM / GRU / RNN
 * operators express:
 *  - LSTM peepholes: our weight_peephole_l0 = [p_i, p_f, p_o] goes to ONNX P in its order [i, o, f];
 *  - CIFG (coupledInputForget / variant 'CIFG') = ONNX input_forget = 1;
 *  - clip, on all three cells (with cases where it does clip);
 *  - the activation list with alpha/beta: LSTM [f, g, h] = our recurrentActivation,
 *    candidateActivation, outputActivation (or `activation` for g and h together); GRU [f, g] =
 *    recurrentActivation, activation; RNN [f] = activation. 'linear' is ONNX Affine(1, 0), so NIAF and
 *    NOAF are expressible too. Every alpha/beta is written explicitly (they are consumed in the order
 *    of the activations that take them);
 *  - GRU linear_before_reset 1 / 0 = our resetAfter true / false;
 *  - direction 'reverse' = our goBackwards: Keras-style goBackwards returns the outputs in processing
 *    (reversed) order, ONNX keeps each output at its time index, so our output is flipped back in time;
 *  - initial states (initial_h, initial_c) given or not.
 * Weights come from the layer's stateDict through torchToOnnx (test/helpers/onnx.ts).
 *
 * Both sides run in float32; compared are Y (all steps), Y_h and Y_c with
 *   |ours − onnx| <= RTOL · max(|onnx|, FLOOR · max(1, M)),   RTOL = 1e-5, FLOOR = 0.05,
 * M the largest |output| of the float64 reference: outputs near zero carry the absolute float32
 * rounding of the terms they are sums of (a few 1e-8 per step for O(1) terms, M times that when an
 * unbounded activation lets them grow to M), which is not a relative error of the output. (Which
 * kernel build runs — FMA or not — moves that rounding; test:isa runs this suite under each.)
 *
 * thresholdedRelu is discontinuous (and the other kinks make float32 rounding matter more near them),
 * so a float64 reference of the equations picks seeds whose pre-activations stay >= 1e-3 from every
 * kink; it also makes sure clip cases clip something. Unbounded gate activations (elu, relu, affine…
 * as σ) can make h grow geometrically; float32 rounding then grows with it on both sides, so seeds
 * whose float64 outputs exceed MAX_MAGNITUDE are skipped too.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { GRU, LSTM, SimpleRNN, Tensor, type ActivationSpec, type GRUOptions, type LSTMOptions, type Recurrent } from '../lib/index.js';
import { assertClose, batchToTime, compare, reverseBatchFirst, reverseTimeMajor, rng, timeToBatch, uniform32 } from './helpers/compare.js';
import { createRunner, torchToOnnx, type OnnxCell, type OnnxRnnSpec } from './helpers/onnx.js';
import { act, actLabel, ALL_ACTIVATIONS, KinkTracker } from './helpers/activation-reference.js';
import { lstmVariantReference, type LstmVariantOptions } from './helpers/lstm-variants-reference.js';
import { rnnGruReference } from './helpers/cell-options-reference.js';

const RTOL = 1e-5;
const FLOOR = 0.05;
const KINK_MARGIN = 1e-3;
const ATTEMPTS = 40;
const MAX_MAGNITUDE = 20;

/** ONNX name and explicit (alpha, beta) of an activation spec; null entries are not consumed. */
function onnxActivation(spec: ActivationSpec): { name: string; alpha: number | null; beta: number | null } {
  const a = act(spec);
  switch (a.name) {
    case 'sigmoid':
      return { name: 'Sigmoid', alpha: null, beta: null };
    case 'tanh':
      return { name: 'Tanh', alpha: null, beta: null };
    case 'relu':
      return { name: 'Relu', alpha: null, beta: null };
    case 'softsign':
      return { name: 'Softsign', alpha: null, beta: null };
    case 'softplus':
      return { name: 'Softplus', alpha: null, beta: null };
    case 'hardSigmoid':
      return { name: 'HardSigmoid', alpha: a.alpha, beta: a.beta };
    case 'linear':
      return { name: 'Affine', alpha: 1, beta: 0 };
    case 'affine':
      return { name: 'Affine', alpha: a.alpha, beta: a.beta };
    case 'scaledTanh':
      return { name: 'ScaledTanh', alpha: a.alpha, beta: a.beta };
    case 'leakyRelu':
      return { name: 'LeakyRelu', alpha: a.alpha, beta: null };
    case 'thresholdedRelu':
      return { name: 'ThresholdedRelu', alpha: a.alpha, beta: null };
    case 'elu':
      return { name: 'Elu', alpha: a.alpha, beta: null };
  }
}

/** The ONNX activations / activation_alpha / activation_beta attributes of a list of specs. */
function onnxActivationAttributes(specs: ActivationSpec[]): Pick<OnnxRnnSpec, 'activations' | 'activationAlpha' | 'activationBeta'> {
  const acts = specs.map(onnxActivation);
  return {
    activations: acts.map((a) => a.name),
    activationAlpha: acts.flatMap((a) => (a.alpha === null ? [] : [a.alpha])),
    activationBeta: acts.flatMap((a) => (a.beta === null ? [] : [a.beta])),
  };
}

interface Shape {
  T: number;
  B: number;
  I: number;
  H: number;
}

type Case = {
  label: string;
  shape: Shape;
  /** Give initial states (h0, and c0 for LSTM). */
  init: boolean;
  goBackwards: boolean;
  seed: number;
  /** Multiplies the random weights (default 1). */
  scale?: number;
  /** Kink-tracker roles that must be visited on all of their pieces. */
  cover?: string[];
} & (
  | { cell: 'lstm'; layer: Partial<LSTMOptions>; ref: LstmVariantOptions }
  | { cell: 'gru'; layer: Partial<GRUOptions>; ref: { activation?: ActivationSpec; recurrentActivation?: ActivationSpec; clip?: number; resetAfter: boolean } }
  | { cell: 'rnn'; layer: { activation?: ActivationSpec; clip?: number }; ref: { activation?: ActivationSpec; clip?: number } }
);

function makeLayer(c: Case): Recurrent {
  const common = { inputSize: c.shape.I, units: c.shape.H, returnSequences: true, returnState: true, goBackwards: c.goBackwards, seed: 1 };
  if (c.cell === 'lstm') return new LSTM({ ...common, ...c.layer });
  if (c.cell === 'gru') return new GRU({ ...common, ...c.layer });
  return new SimpleRNN({ ...common, ...c.layer });
}

/** The ONNX attributes and P of a case (weights aside). */
function onnxSpecOf(c: Case, dict: Record<string, Tensor>): Partial<OnnxRnnSpec> & { op: OnnxCell } {
  const H = c.shape.H;
  const direction = c.goBackwards ? 'reverse' : 'forward';
  if (c.cell === 'lstm') {
    const o = c.ref;
    // NIG / NFG / NOG / cellClip have no ONNX form: cases here never use them.
    assert.ok(o.inputGate !== false && o.forgetGate !== false && o.outputGate !== false && !o.cellClip, `${c.label}: not expressible in ONNX`);
    const spec: Partial<OnnxRnnSpec> & { op: OnnxCell } = {
      op: 'LSTM',
      direction,
      ...onnxActivationAttributes([o.gate ?? 'sigmoid', o.candidate ?? 'tanh', o.output ?? 'tanh']),
    };
    if (o.clip) spec.clip = o.clip;
    if (o.coupled) spec.inputForget = true;
    if (o.peepholes) {
      const p = dict.weight_peephole_l0.data;
      assert.equal(p.length, 3 * H, 'weight_peephole_l0 length');
      // ours: p_i, p_f, p_o;  ONNX P: i, o, f
      const P = new Float32Array(3 * H);
      P.set(p.subarray(0, H), 0);
      P.set(p.subarray(2 * H, 3 * H), H);
      P.set(p.subarray(H, 2 * H), 2 * H);
      spec.P = P;
    }
    return spec;
  }
  if (c.cell === 'gru') {
    const spec: Partial<OnnxRnnSpec> & { op: OnnxCell } = {
      op: 'GRU',
      direction,
      linearBeforeReset: c.ref.resetAfter,
      ...onnxActivationAttributes([c.ref.recurrentActivation ?? 'sigmoid', c.ref.activation ?? 'tanh']),
    };
    if (c.ref.clip) spec.clip = c.ref.clip;
    return spec;
  }
  const spec: Partial<OnnxRnnSpec> & { op: OnnxCell } = { op: 'RNN', direction, ...onnxActivationAttributes([c.ref.activation ?? 'tanh']) };
  if (c.ref.clip) spec.clip = c.ref.clip;
  return spec;
}

interface Problem {
  layer: Recurrent;
  x: Float32Array;
  h0?: Float32Array;
  c0?: Float32Array;
  tracker: KinkTracker;
  /** Largest |value| of the float64 reference outputs and states. */
  magnitude: number;
}

function makeProblem(c: Case, seed: number, scale: number): Problem {
  const { T, B, I, H } = c.shape;
  const r = rng(seed);
  const layer = makeLayer(c);
  const w = (scale * 1.5) / Math.sqrt(H);
  const dict: Record<string, Tensor> = {};
  for (const [name, shape] of Object.entries(layer.parameterShapes())) {
    const n = shape.reduce((a, b) => a * b, 1);
    dict[name] = Tensor.from(name === 'weight_peephole_l0' ? uniform32(r, n, -scale, scale) : uniform32(r, n, -w, w), shape);
  }
  layer.loadStateDict(dict);
  const x = uniform32(r, B * T * I);
  const h0 = c.init ? uniform32(r, B * H) : undefined;
  const c0 = c.init && c.cell === 'lstm' ? uniform32(r, B * H) : undefined;

  // float64 reference on the same float32 values, for the kink margins and the clip coverage.
  let xt = batchToTime(Float64Array.from(x), B, T, I);
  if (c.goBackwards) xt = reverseTimeMajor(xt, T, B, I);
  const sd = Object.fromEntries(Object.entries(layer.stateDict()).map(([k, t]) => [k, t.data]));
  const weights = { weight_ih_l0: sd.weight_ih_l0, weight_hh_l0: sd.weight_hh_l0, bias_ih_l0: sd.bias_ih_l0, bias_hh_l0: sd.bias_hh_l0, weight_peephole_l0: sd.weight_peephole_l0 };
  const tracker = new KinkTracker();
  const values: Float64Array[] =
    c.cell === 'lstm'
      ? (({ y, cN }) => [y, cN])(lstmVariantReference({ T, B, I, H, x: xt, h0, c0, weights, options: c.ref, tracker }))
      : [rnnGruReference({ cell: c.cell, T, B, I, H, x: xt, h0, weights, tracker, ...c.ref }).y];
  let magnitude = 0;
  for (const a of values) for (const v of a) magnitude = Math.max(magnitude, Math.abs(v));
  return { layer, x, h0, c0, tracker, magnitude };
}

let worst = 0;
let worstWhere = '';
let compared = 0;

async function runCase(c: Case): Promise<void> {
  const { T, B, I, H } = c.shape;
  let p: Problem | undefined;
  const rejected: string[] = [];
  for (let attempt = 0; attempt < ATTEMPTS && !p; attempt++) {
    const scale = (c.scale ?? 1) * [1, 1.5, 2, 3][Math.floor(attempt / 10)];
    const cand = makeProblem(c, c.seed + attempt, scale);
    const missing = [
      ...cand.tracker.unvisited((role) => (c.cover ?? []).includes(role)),
      ...(c.cover ?? []).filter((role) => !cand.tracker.pieces.has(role)).map((r) => `${r}: never seen`),
    ];
    if (cand.tracker.minDistance < KINK_MARGIN) rejected.push(`seed ${c.seed + attempt}: near a kink (${cand.tracker.where})`);
    else if (cand.magnitude > MAX_MAGNITUDE) rejected.push(`seed ${c.seed + attempt}: outputs reach ${cand.magnitude.toPrecision(3)}`);
    else if (missing.length) rejected.push(`seed ${c.seed + attempt} scale ${scale}: ${missing.join('; ')}`);
    else p = cand;
  }
  assert.ok(p, `${c.label}: no seed away from kinks covering ${JSON.stringify(c.cover)}:\n  ${rejected.slice(-5).join('\n  ')}`);

  // rnnkit
  const initialState = p.h0 ? [Tensor.from(p.h0, [B, H]), ...(p.c0 ? [Tensor.from(p.c0, [B, H])] : [])] : undefined;
  const ours = p.layer.forward(Tensor.from(p.x, [B, T, I]), { initialState });

  // onnxruntime
  const dict = p.layer.stateDict();
  const attrs = onnxSpecOf(c, dict);
  const w = torchToOnnx(attrs.op, H, {
    weight_ih: dict.weight_ih_l0.data as Float32Array,
    weight_hh: dict.weight_hh_l0.data as Float32Array,
    bias_ih: dict.bias_ih_l0?.data as Float32Array | undefined,
    bias_hh: dict.bias_hh_l0?.data as Float32Array | undefined,
  });
  const runner = await createRunner({ ...attrs, T, N: B, I, H, ...w, withInitialH: p.h0 !== undefined, withInitialC: p.c0 !== undefined });
  try {
    const onnx = await runner.run(batchToTime(p.x, B, T, I), p.h0, p.c0);
    // ONNX Y [T, 1, N, H] -> batch-first [B, T, H]; our goBackwards output is in processing order.
    const want = timeToBatch(onnx.Y, T, B, H);
    const got = c.goBackwards ? reverseBatchFirst(ours.output.data as Float32Array, B, T, H) : (ours.output.data as Float32Array);
    const opts = { rtol: RTOL, floor: FLOOR * Math.max(1, p.magnitude) };
    const check = (label: string, g: ArrayLike<number>, wnt: ArrayLike<number>, shape: number[]): void => {
      const rep = compare(g, wnt, opts);
      compared += wnt.length;
      if (rep.worstRatio > worst) {
        worst = rep.worstRatio;
        worstWhere = `${c.label} ${label}`;
      }
      assertClose(g, wnt, { ...opts, label: `${c.label}: ${label}`, shape });
    };
    check('Y (as [B, T, H])', got, want, [B, T, H]);
    check('Y_h', ours.states[0].data, onnx.Y_h, [B, H]);
    if (c.cell === 'lstm') {
      assert.ok(onnx.Y_c, 'onnxruntime returned no Y_c');
      check('Y_c', ours.states[1].data, onnx.Y_c, [B, H]);
    }
  } finally {
    await runner.release();
  }
}

// ---------------------------------------------------------------------------------------------
// Cases

const SHAPES: Shape[] = [
  { T: 3, B: 2, I: 3, H: 4 },
  { T: 1, B: 1, I: 2, H: 3 },
  { T: 4, B: 3, I: 2, H: 5 },
  { T: 2, B: 1, I: 5, H: 2 },
  { T: 5, B: 2, I: 1, H: 3 },
];
let k = 0;
/** Cycles shapes, initial states and direction. */
function next(): { shape: Shape; init: boolean; goBackwards: boolean; seed: number } {
  const i = k++;
  return { shape: SHAPES[i % SHAPES.length], init: i % 2 === 0, goBackwards: i % 3 === 1, seed: 5000 + 100 * i };
}
function name(c: Omit<Case, 'label'>, what: string): Case {
  const { T, B, I, H } = c.shape;
  return { ...c, label: `${what} T=${T} B=${B} I=${I} H=${H}${c.init ? ' init' : ''}${c.goBackwards ? ' reverse' : ''}` } as Case;
}

const ACTIVATIONS: ActivationSpec[] = [
  ...ALL_ACTIVATIONS,
  { name: 'hardSigmoid', alpha: 0.3, beta: 0.4 },
  { name: 'affine', alpha: 0.8, beta: 0.3 },
  { name: 'leakyRelu', alpha: 0.2 },
  { name: 'thresholdedRelu', alpha: 0.3 },
  { name: 'scaledTanh', alpha: 1.7, beta: 0.6 },
  { name: 'elu', alpha: 0.7 },
];

function lstm(what: string, ref: LstmVariantOptions, layer: Partial<LSTMOptions>, extra: Partial<Case> = {}): Case {
  return name({ cell: 'lstm', ref, layer, ...next(), ...extra } as Omit<Case, 'label'>, `LSTM ${what}`);
}
function gru(what: string, ref: { activation?: ActivationSpec; recurrentActivation?: ActivationSpec; clip?: number; resetAfter: boolean }, extra: Partial<Case> = {}): Case {
  const layer: Partial<GRUOptions> = { resetAfter: ref.resetAfter };
  if (ref.activation !== undefined) layer.activation = ref.activation;
  if (ref.recurrentActivation !== undefined) layer.recurrentActivation = ref.recurrentActivation;
  if (ref.clip !== undefined) layer.clip = ref.clip;
  return name({ cell: 'gru', ref, layer, ...next(), ...extra } as Omit<Case, 'label'>, `GRU lbr=${ref.resetAfter ? 1 : 0} ${what}`);
}
function rnn(what: string, ref: { activation?: ActivationSpec; clip?: number }, extra: Partial<Case> = {}): Case {
  return name({ cell: 'rnn', ref, layer: { ...ref }, ...next(), ...extra } as Omit<Case, 'label'>, `RNN ${what}`);
}

function lstmCases(): Case[] {
  const out: Case[] = [
    lstm('default', {}, {}),
    lstm('peepholes', { peepholes: true }, { peepholes: true }, { init: true }),
    lstm('peepholes, no initial state', { peepholes: true }, { peepholes: true }, { init: false }),
    lstm('peepholes reverse', { peepholes: true }, { peepholes: true }, { goBackwards: true, init: true, shape: { T: 4, B: 2, I: 3, H: 3 } }),
    lstm('variant V', { peepholes: true }, { variant: 'V' }),
    lstm('variant NP', {}, { variant: 'NP' }),
    lstm('CIFG (input_forget=1)', { coupled: true }, { coupledInputForget: true }),
    lstm('variant CIFG (input_forget=1 + P)', { coupled: true, peepholes: true }, { variant: 'CIFG' }, { init: true }),
    lstm('variant CIFG reverse', { coupled: true, peepholes: true }, { variant: 'CIFG' }, { goBackwards: true, init: true }),
    lstm('variant NIAF (g = Affine(1,0))', { peepholes: true, candidate: 'linear' }, { variant: 'NIAF' }),
    lstm('variant NOAF (h = Affine(1,0))', { peepholes: true, output: 'linear' }, { variant: 'NOAF' }),
    lstm('clip 0.5', { clip: 0.5 }, { clip: 0.5 }, { cover: ['i clip', 'f clip', 'g clip', 'o clip'], init: true, shape: { T: 3, B: 2, I: 3, H: 4 } }),
    lstm('clip 0.4 + peepholes', { clip: 0.4, peepholes: true }, { clip: 0.4, peepholes: true }, { cover: ['i clip', 'f clip', 'g clip', 'o clip'], init: true, shape: { T: 4, B: 2, I: 2, H: 3 } }),
    lstm('clip 0.7 + CIFG + peepholes reverse', { clip: 0.7, peepholes: true, coupled: true }, { clip: 0.7, variant: 'CIFG' }, { cover: ['i clip', 'g clip', 'o clip'], init: true, goBackwards: true, shape: { T: 3, B: 3, I: 2, H: 3 } }),
    lstm('activation softsign (g and h)', { candidate: 'softsign', output: 'softsign' }, { activation: 'softsign' }),
    lstm(
      'f HardSigmoid(0.3,0.4), g ScaledTanh(1.7,0.6), h Elu(0.7), peepholes, clip 3',
      { gate: { name: 'hardSigmoid', alpha: 0.3, beta: 0.4 }, candidate: { name: 'scaledTanh', alpha: 1.7, beta: 0.6 }, output: { name: 'elu', alpha: 0.7 }, peepholes: true, clip: 3 },
      { recurrentActivation: { name: 'hardSigmoid', alpha: 0.3, beta: 0.4 }, candidateActivation: { name: 'scaledTanh', alpha: 1.7, beta: 0.6 }, outputActivation: { name: 'elu', alpha: 0.7 }, peepholes: true, clip: 3 },
      { init: true, scale: 2 },
    ),
    lstm(
      'f Affine(0.25,0.5), g LeakyRelu(0.2), h ThresholdedRelu(0.3) (alpha/beta order)',
      { gate: { name: 'affine', alpha: 0.25, beta: 0.5 }, candidate: { name: 'leakyRelu', alpha: 0.2 }, output: { name: 'thresholdedRelu', alpha: 0.3 } },
      { recurrentActivation: { name: 'affine', alpha: 0.25, beta: 0.5 }, candidateActivation: { name: 'leakyRelu', alpha: 0.2 }, outputActivation: { name: 'thresholdedRelu', alpha: 0.3 } },
      { init: true },
    ),
  ];
  for (const a of ACTIVATIONS) out.push(lstm(`f ${actLabel(a)}`, { gate: a }, { recurrentActivation: a }));
  for (const a of ACTIVATIONS) out.push(lstm(`g ${actLabel(a)}`, { candidate: a }, { candidateActivation: a }));
  for (const a of ACTIVATIONS) out.push(lstm(`h ${actLabel(a)} + peepholes`, { output: a, peepholes: true }, { outputActivation: a, peepholes: true }));
  return out;
}

function gruCases(): Case[] {
  const out: Case[] = [];
  for (const resetAfter of [true, false]) {
    out.push(gru('default', { resetAfter }, { init: true }));
    out.push(gru('default reverse', { resetAfter }, { goBackwards: true, init: true }));
    out.push(gru('default, no initial state, reverse', { resetAfter }, { goBackwards: true, init: false }));
    out.push(gru('clip 0.5', { resetAfter, clip: 0.5 }, { cover: ['r clip', 'z clip', 'n clip'], init: true, shape: { T: 3, B: 2, I: 3, H: 4 } }));
    out.push(gru('clip 0.6 reverse', { resetAfter, clip: 0.6 }, { cover: ['r clip', 'z clip', 'n clip'], goBackwards: true, shape: { T: 4, B: 3, I: 2, H: 3 } }));
    out.push(
      gru('f HardSigmoid(0.3,0.4), g Softplus, clip 3', { resetAfter, recurrentActivation: { name: 'hardSigmoid', alpha: 0.3, beta: 0.4 }, activation: 'softplus', clip: 3 }, { init: true, scale: 2 }),
    );
    for (const a of ACTIVATIONS) out.push(gru(`f ${actLabel(a)}`, { resetAfter, recurrentActivation: a }));
    for (const a of ACTIVATIONS) out.push(gru(`g ${actLabel(a)}`, { resetAfter, activation: a }));
  }
  return out;
}

function rnnCases(): Case[] {
  const out: Case[] = [
    rnn('default', {}, { init: true }),
    rnn('default reverse', {}, { goBackwards: true, init: false }),
    rnn('clip 0.5', { clip: 0.5 }, { cover: ['rnn clip'], init: true, shape: { T: 3, B: 2, I: 3, H: 4 } }),
    rnn('Relu clip 0.6 reverse', { activation: 'relu', clip: 0.6 }, { cover: ['rnn clip'], goBackwards: true, shape: { T: 4, B: 2, I: 3, H: 3 } }),
  ];
  for (const a of ACTIVATIONS) out.push(rnn(`f ${actLabel(a)}`, { activation: a }));
  return out;
}

describe('cell options against onnxruntime (float32)', () => {
  for (const c of [...lstmCases(), ...gruCases(), ...rnnCases()]) test(c.label, () => runCase(c));
  after(() => {
    console.log(`# ${compared} values compared; worst |ours - onnx| / (${RTOL}·max(|onnx|, ${FLOOR})) = ${worst.toPrecision(3)} (${worstWhere})`);
  });
});
