/**
 * A tfjs LSTM and a tfjs GRU (reset-before, the only form tfjs has) built with their DEFAULT
 * recurrentActivation — tfjs/Keras-JS default to hardSigmoid, clip(0.2x + 0.5, 0, 1) — run unchanged
 * in rnnkit with recurrentActivation 'hardSigmoid' (GRU with resetAfter: false): same weights, same
 * input and initial states, output sequence and final states equal to
 *   |rnnkit − tfjs| <= 1e-5 · max(|tfjs|, 0.05)
 * (both float32; the floor covers the absolute rounding of near-zero sums of O(1) terms).
 *
 * The weights are scaled so gate pre-activations fall below −2.5, inside, and above 2.5 — all three
 * pieces of hardSigmoid, over the gates of the case together — which a float64 reference of the
 * equations confirms for every case (with margin from the edges). Two controls make the comparison meaningful: tfjs's default equals an
 * explicit 'hardSigmoid' in tfjs, and rnnkit with sigmoid gates (its default) is far from tfjs's output.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { GRU, LSTM, Tensor, type Recurrent } from '../lib/index.js';
import { assertClose, batchToTime, compare, reverseTimeMajor, rng, uniform32 } from './helpers/compare.js';
import { KinkTracker } from './helpers/activation-reference.js';
import { lstmVariantReference } from './helpers/lstm-variants-reference.js';
import { rnnGruReference } from './helpers/cell-options-reference.js';
import { tfjsForward, type TfjsForwardCell, type TfjsForwardInput } from './helpers/tfjs-forward.js';

const RTOL = 1e-5;
const FLOOR = 0.05;
/** Gate pre-activations stay this far from hardSigmoid's edges ±2.5 (float32 rounding is ~1e-6). */
const EDGE_MARGIN = 1e-3;

interface Case {
  cell: TfjsForwardCell;
  B: number;
  T: number;
  I: number;
  H: number;
  init: boolean;
  goBackwards: boolean;
  seed: number;
}

function rnnkitLayer(c: Case, recurrentActivation: 'hardSigmoid' | 'sigmoid'): Recurrent {
  const common = { inputSize: c.I, units: c.H, returnSequences: true, returnState: true, goBackwards: c.goBackwards, recurrentActivation };
  return c.cell === 'lstm' ? new LSTM(common) : new GRU({ ...common, resetAfter: false });
}

interface Problem {
  weights: TfjsForwardInput['weights'];
  x: Float32Array;
  h0?: Float32Array;
  c0?: Float32Array;
}

/** Random weights scaled so hardSigmoid's three pieces are all visited, away from its edges. */
function problem(c: Case): Problem {
  const { B, T, I, H } = c;
  const G = c.cell === 'lstm' ? 4 : 3;
  const gateRoles = c.cell === 'lstm' ? ['i', 'f', 'o'] : ['r', 'z'];
  const notes: string[] = [];
  for (let attempt = 0; attempt < 40; attempt++) {
    const r = rng(c.seed + attempt);
    const w = (3 + 0.1 * attempt) / Math.sqrt(H + I);
    const weights = {
      weight_ih_l0: uniform32(r, G * H * I, -w, w),
      weight_hh_l0: uniform32(r, G * H * H, -w, w),
      bias_ih_l0: uniform32(r, G * H, -1, 1),
      bias_hh_l0: uniform32(r, G * H, -1, 1),
    };
    const x = uniform32(r, B * T * I);
    const h0 = c.init ? uniform32(r, B * H) : undefined;
    const c0 = c.init && c.cell === 'lstm' ? uniform32(r, B * H) : undefined;
    let xt = batchToTime(Float64Array.from(x), B, T, I);
    if (c.goBackwards) xt = reverseTimeMajor(xt, T, B, I);
    const tracker = new KinkTracker();
    if (c.cell === 'lstm') lstmVariantReference({ T, B, I, H, x: xt, h0, c0, weights, options: { gate: 'hardSigmoid' }, tracker });
    else rnnGruReference({ cell: 'gru', T, B, I, H, x: xt, h0, weights, recurrentActivation: 'hardSigmoid', resetAfter: false, tracker });
    // Pieces of hardSigmoid visited by the gates together (0: saturated at 0, 1: linear, 2: saturated at 1).
    const seen = new Set(gateRoles.flatMap((g) => [...(tracker.pieces.get(`${g} hardSigmoid`)?.seen ?? [])]));
    // (the candidate/output tanh has no kinks, so minDistance is about the gates only)
    if (tracker.minDistance >= EDGE_MARGIN && seen.size === 3) return { weights, x, h0, c0 };
    notes.push(tracker.minDistance < EDGE_MARGIN ? `near an edge: ${tracker.where}` : `gates visited pieces [${[...seen].sort().join(', ')}] of 3`);
  }
  assert.fail(`no seed visits all pieces of hardSigmoid away from its edges: ${notes.slice(-3).join(' | ')}`);
}

function name(c: Case): string {
  return `${c.cell === 'lstm' ? 'LSTM' : 'GRU (reset-before)'} B=${c.B} T=${c.T} I=${c.I} H=${c.H}${c.init ? ' init' : ''}${c.goBackwards ? ' goBackwards' : ''}`;
}

let worst = { ratio: 0, where: '' };

async function runCase(c: Case): Promise<void> {
  const { B, T, I, H } = c;
  const p = problem(c);
  const tfjs = await tfjsForward({ cell: c.cell, B, T, I, H, x: p.x, h0: p.h0, c0: p.c0, weights: p.weights, goBackwards: c.goBackwards });

  const forward = (act: 'hardSigmoid' | 'sigmoid') => {
    const layer = rnnkitLayer(c, act);
    layer.loadStateDict({
      weight_ih_l0: Tensor.from(p.weights.weight_ih_l0, layer.parameterShapes().weight_ih_l0),
      weight_hh_l0: Tensor.from(p.weights.weight_hh_l0, layer.parameterShapes().weight_hh_l0),
      bias_ih_l0: Tensor.from(p.weights.bias_ih_l0, [layer.parameterShapes().bias_ih_l0[0]]),
      bias_hh_l0: Tensor.from(p.weights.bias_hh_l0, [layer.parameterShapes().bias_hh_l0[0]]),
    });
    const initialState = p.h0 ? [Tensor.from(p.h0, [B, H]), ...(p.c0 ? [Tensor.from(p.c0, [B, H])] : [])] : undefined;
    return layer.forward(Tensor.from(p.x, [B, T, I]), { initialState });
  };
  const ours = forward('hardSigmoid');
  const opts = { rtol: RTOL, floor: FLOOR };
  const check = (what: string, got: ArrayLike<number>, want: ArrayLike<number>, shape: number[]): void => {
    const rep = assertClose(got, want, { ...opts, label: `${name(c)}: ${what}`, shape });
    if (rep.worstRatio > worst.ratio) worst = { ratio: rep.worstRatio, where: `${name(c)} ${what}` };
  };
  check('output sequence', ours.output.data, tfjs.y, [B, T, H]);
  check('final h', ours.states[0].data, tfjs.hN, [B, H]);
  if (c.cell === 'lstm') {
    assert.ok(tfjs.cN, 'tfjs returned no cell state');
    check('final c', ours.states[1].data, tfjs.cN, [B, H]);
  }

  // Controls: tfjs's default is hardSigmoid, and the gate activation makes a visible difference.
  const explicit = await tfjsForward({ cell: c.cell, B, T, I, H, x: p.x, h0: p.h0, c0: p.c0, weights: p.weights, goBackwards: c.goBackwards, recurrentActivation: 'hardSigmoid' });
  assert.deepEqual(explicit.y, tfjs.y, `${name(c)}: tfjs's default recurrentActivation is not hardSigmoid`);
  const sigmoid = forward('sigmoid');
  const diff = compare(sigmoid.output.data, tfjs.y).maxAbs;
  assert.ok(diff > 1e-2, `${name(c)}: rnnkit with sigmoid gates is within ${diff} of tfjs's hardSigmoid output; the case does not discriminate`);
}

const CASES: Case[] = [];
let seed = 11;
for (const cell of ['lstm', 'gru'] as const) {
  for (const [B, T, I, H] of [
    [1, 3, 1, 3],
    [5, 1, 2, 3],
    [2, 4, 3, 5],
    [3, 3, 4, 2],
    [1, 6, 2, 7],
    [4, 2, 5, 3],
  ]) {
    for (const [init, goBackwards] of [
      [false, false],
      [true, false],
      [true, true],
    ]) {
      CASES.push({ cell, B, T, I, H, init, goBackwards, seed: (seed += 100) });
    }
  }
}

describe("tfjs LSTM/GRU with the default recurrentActivation run in rnnkit with 'hardSigmoid'", () => {
  for (const c of CASES) test(name(c), () => runCase(c));
  after(() => console.log(`# worst |rnnkit - tfjs| / (${RTOL}·max(|tfjs|, ${FLOOR})) = ${worst.ratio.toPrecision(3)} (${worst.where})`));
});
