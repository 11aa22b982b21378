/**
 * The LSTM variants no other library implements — NIG, NFG, NOG (Greff et al. 2015), NIAF, NOAF, and
 * TF1's cellClip — against an independent plain-TypeScript float64 reference of their equations
 * (test/helpers/lstm-variants-reference.ts): output sequence, final h and final c of the native
 * float64 layer to 1e-12 relative, and of the float32 layer to 1e-5 relative.
 *
 * Tolerances are |got − want| <= RTOL · max(|want|, FLOOR), FLOOR = 1e-2 for float64 and 0.05 for
 * float32: a value near zero is a sum of O(1) terms (up to I + H = 135 of them per pre-activation
 * here) and carries their absolute rounding (the BLAS summation order differs from the reference's),
 * not a relative error of its own size; in float32 that rounding reaches ~3e-7 at H = 130.
 *
 * Cases: each variant through the `variant` shorthand and through the explicit options, with and
 * without peepholes and biases, initial states given or not, goBackwards, batch 1 / steps 1 / odd
 * sizes, cellClip alone and combined with each variant (and with clip), and shapes with more than
 * 64 units (several row chunks of the native kernels) and batch rows (the thread pool splits work).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { LSTM, Tensor, type DType, type LSTMOptions } from '../lib/index.js';
import { assertClose, batchToTime, reverseTimeMajor, rng, timeToBatch, uniform64 } from './helpers/compare.js';
import { KinkTracker } from './helpers/activation-reference.js';
import { GREFF_VARIANTS, lstmVariantReference, type LstmVariantOptions } from './helpers/lstm-variants-reference.js';

const RTOL64 = 1e-12;
const RTOL32 = 1e-5;
const FLOOR64 = 1e-2;
const FLOOR32 = 0.05;

interface Shape {
  B: number;
  T: number;
  I: number;
  H: number;
}

interface Case {
  label: string;
  ref: LstmVariantOptions;
  layer: Partial<LSTMOptions>;
  shape: Shape;
  init: boolean;
  goBackwards?: boolean;
  useBias?: boolean;
  /** Initial states uniform in ±stateScale. */
  stateScale?: number;
  seed: number;
}

const worst: Record<DType, { ratio: number; where: string }> = { float32: { ratio: 0, where: '' }, float64: { ratio: 0, where: '' } };

function run(c: Case, dtype: DType): void {
  const { B, T, I, H } = c.shape;
  const r = rng(c.seed);
  const layer = new LSTM({ inputSize: I, units: H, returnSequences: true, returnState: true, goBackwards: c.goBackwards, useBias: c.useBias, dtype, ...c.layer });
  const round = (a: Float64Array): Float64Array => (dtype === 'float32' ? Float64Array.from(Float32Array.from(a)) : a);
  const w = 1.5 / Math.sqrt(H);
  const dict: Record<string, Tensor> = {};
  for (const [name, shape] of Object.entries(layer.parameterShapes())) {
    const n = shape.reduce((a, b) => a * b, 1);
    dict[name] = Tensor.from(round(name === 'weight_peephole_l0' ? uniform64(r, n) : uniform64(r, n, -w, w)), shape);
  }
  layer.loadStateDict(dict);
  assert.equal('weight_peephole_l0' in layer.parameterShapes(), c.ref.peepholes === true, `${c.label}: weight_peephole_l0 present iff peepholes`);
  const s0 = c.stateScale ?? 1;
  const x = round(uniform64(r, B * T * I));
  const h0 = c.init ? round(uniform64(r, B * H, -s0, s0)) : undefined;
  const c0 = c.init ? round(uniform64(r, B * H, -s0, s0)) : undefined;

  const toLayer = (a: Float64Array, shape: number[]): Tensor => Tensor.from(dtype === 'float32' ? Float32Array.from(a) : a, shape);
  const ours = layer.forward(toLayer(x, [B, T, I]), { initialState: h0 && c0 ? [toLayer(h0, [B, H]), toLayer(c0, [B, H])] : undefined });

  let xt = batchToTime(x, B, T, I);
  if (c.goBackwards) xt = reverseTimeMajor(xt, T, B, I);
  const sd = Object.fromEntries(Object.entries(layer.stateDict()).map(([k, t]) => [k, t.data]));
  const tracker = new KinkTracker();
  const want = lstmVariantReference({
    T,
    B,
    I,
    H,
    x: xt,
    h0,
    c0,
    weights: { weight_ih_l0: sd.weight_ih_l0, weight_hh_l0: sd.weight_hh_l0, bias_ih_l0: sd.bias_ih_l0, bias_hh_l0: sd.bias_hh_l0, weight_peephole_l0: sd.weight_peephole_l0 },
    options: c.ref,
    tracker,
  });
  if (c.ref.cellClip) {
    // The cell clip must actually clip some c_t and leave others alone.
    const seen = [...(tracker.pieces.get('c cellClip')?.seen ?? [])].sort();
    assert.deepEqual(seen, [0, 1, 2], `${c.label}: the case should clip c_t at both bounds and leave some inside (pieces visited: [${seen.join(', ')}])`);
  }
  const opts = dtype === 'float64' ? { rtol: RTOL64, floor: FLOOR64 } : { rtol: RTOL32, floor: FLOOR32 };
  // The layer's goBackwards output is in processing order, as is the reference's.
  const checks: [string, ArrayLike<number>, ArrayLike<number>, number[]][] = [
    ['output sequence', ours.output.data, timeToBatch(want.y, T, B, H), [B, T, H]],
    ['final h', ours.states[0].data, want.hN, [B, H]],
    ['final c', ours.states[1].data, want.cN, [B, H]],
  ];
  for (const [what, got, wnt, shape] of checks) {
    const rep = assertClose(got, wnt, { ...opts, label: `${c.label} ${dtype}: ${what}`, shape });
    if (rep.worstRatio > worst[dtype].ratio) worst[dtype] = { ratio: rep.worstRatio, where: `${c.label} ${what}` };
  }
}

// ---------------------------------------------------------------------------------------------
// Cases

const SHAPES: Shape[] = [
  { B: 1, T: 1, I: 1, H: 1 },
  { B: 2, T: 5, I: 3, H: 7 },
  { B: 3, T: 1, I: 4, H: 5 },
  { B: 1, T: 6, I: 2, H: 3 },
  { B: 4, T: 3, I: 5, H: 9 },
];
let n = 0;
function mk(label: string, ref: LstmVariantOptions, layer: Partial<LSTMOptions>, extra: Partial<Case> = {}): Case {
  const i = n++;
  const c: Case = { label, ref, layer, shape: SHAPES[i % SHAPES.length], init: i % 2 === 1, goBackwards: i % 3 === 2, seed: 300 + 17 * i, ...extra };
  const { B, T, I, H } = c.shape;
  return { ...c, label: `${label} B=${B} T=${T} I=${I} H=${H}${c.init ? ' init' : ''}${c.goBackwards ? ' back' : ''}${c.useBias === false ? ' no-bias' : ''}` };
}

/** cellClip cases need enough values (and a large enough c) to clip at both bounds. */
const CLIP_SHAPE: Shape = { B: 3, T: 5, I: 3, H: 6 };

function cases(): Case[] {
  const out: Case[] = [];
  const variants = ['NIG', 'NFG', 'NOG', 'NIAF', 'NOAF'] as const;
  const explicit: Record<(typeof variants)[number], Partial<LSTMOptions>> = {
    NIG: { inputGate: false },
    NFG: { forgetGate: false },
    NOG: { outputGate: false },
    NIAF: { candidateActivation: 'linear' },
    NOAF: { outputActivation: 'linear' },
  };
  for (const v of variants) {
    const ref = GREFF_VARIANTS[v];
    out.push(mk(`variant ${v}`, ref, { variant: v }));
    out.push(mk(`variant ${v}`, ref, { variant: v }, { init: true, goBackwards: true }));
    out.push(mk(`${v} explicit options + peepholes`, ref, { ...explicit[v], peepholes: true }));
    out.push(mk(`${v} explicit options, no peepholes`, { ...ref, peepholes: false }, explicit[v]));
    out.push(mk(`variant ${v} with peepholes: false override`, { ...ref, peepholes: false }, { variant: v, peepholes: false }));
    out.push(mk(`variant ${v} no bias`, ref, { variant: v }, { useBias: false }));
    out.push(mk(`variant ${v} + cellClip 0.8`, { ...ref, cellClip: 0.8 }, { variant: v, cellClip: 0.8 }, { shape: CLIP_SHAPE, init: true, stateScale: 2 }));
    out.push(mk(`variant ${v} large`, ref, { variant: v }, { shape: { B: 8, T: 3, I: 5, H: 130 }, init: true }));
  }
  out.push(mk('cellClip 0.5 (no peepholes)', { cellClip: 0.5 }, { cellClip: 0.5 }, { shape: CLIP_SHAPE, init: true, stateScale: 2 }));
  out.push(mk('cellClip 0.5 no initial state', { cellClip: 0.5 }, { cellClip: 0.5 }, { shape: { B: 4, T: 6, I: 3, H: 8 }, init: false }));
  out.push(mk('cellClip 0.6 + peepholes reverse', { cellClip: 0.6, peepholes: true }, { cellClip: 0.6, peepholes: true }, { shape: CLIP_SHAPE, init: true, goBackwards: true, stateScale: 2 }));
  out.push(mk('cellClip 0.7 + variant V', { ...GREFF_VARIANTS.V, cellClip: 0.7 }, { variant: 'V', cellClip: 0.7 }, { shape: CLIP_SHAPE, init: true, stateScale: 2 }));
  out.push(mk('cellClip 0.7 + variant CIFG', { ...GREFF_VARIANTS.CIFG, cellClip: 0.7 }, { variant: 'CIFG', cellClip: 0.7 }, { shape: CLIP_SHAPE, init: true, stateScale: 2 }));
  out.push(mk('cellClip 0.6 + clip 0.5 + peepholes', { cellClip: 0.6, clip: 0.5, peepholes: true }, { cellClip: 0.6, clip: 0.5, peepholes: true }, { shape: CLIP_SHAPE, init: true, stateScale: 2 }));
  out.push(mk('cellClip 0.9 + NIG + NOAF + hardSigmoid gates', { inputGate: false, output: 'linear', gate: 'hardSigmoid', peepholes: true, cellClip: 0.9 }, { variant: 'NIG', outputActivation: 'linear', recurrentActivation: 'hardSigmoid', cellClip: 0.9 }, { shape: CLIP_SHAPE, init: true, stateScale: 2 }));
  out.push(mk('cellClip 0.8 large', { cellClip: 0.8, peepholes: true }, { cellClip: 0.8, peepholes: true }, { shape: { B: 8, T: 4, I: 5, H: 130 }, init: true, stateScale: 2 }));
  out.push(mk('NIG + NFG + NOG + NIAF + NOAF (all at once)', { inputGate: false, forgetGate: false, outputGate: false, candidate: 'linear', output: 'linear', peepholes: true }, { inputGate: false, forgetGate: false, outputGate: false, candidateActivation: 'linear', outputActivation: 'linear', peepholes: true }));
  return out;
}

describe('LSTM variants vs float64 reference', () => {
  for (const c of cases()) {
    test(`${c.label}: float64 to ${RTOL64}`, () => run(c, 'float64'));
    test(`${c.label}: float32 to ${RTOL32}`, () => run(c, 'float32'));
  }
  after(() => {
    for (const d of ['float64', 'float32'] as const) console.log(`# ${d}: worst |got - want| / tolerance = ${worst[d].ratio.toPrecision(3)} (${worst[d].where})`);
  });
});
