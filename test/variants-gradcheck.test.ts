/**
 * Gradient check of the cell options, in float64 through the public API: every gradient returned by
 * backward() after forward(x, { training: true }) — input, initial states, every parameter including
 * weight_peephole_l0 — against central finite differences of
 *
 *   L = sum(output ⊙ R) + Σ_i sum(states_i ⊙ S_i)
 *
 * evaluated with the layer's own inference forward. Cases: each Greff variant through the `variant`
 * shorthand; CIFG with and without peepholes; NOG + clip; NIG + cellClip; peepholes + goBackwards;
 * hardSigmoid gates; every activation of the ONNX set (default and custom α/β) as SimpleRNN
 * activation, LSTM candidate and output activation, GRU gate and candidate activation (both GRU
 * forms); clip on all three cells; with and without initial states; batch 1, steps 1, odd sizes;
 * a few without biases / returnSequences / returnState. ALL entries of every tensor are checked,
 * except in a few large cases (more than 64 units: several row chunks of the native kernels, and
 * work split over threads) where a seeded sample per tensor is.
 *
 * Kinks: relu, leakyRelu, elu, softsign at 0, hardSigmoid at its two edges, thresholdedRelu at α, the
 * clip bounds ±clip and the cell-clip bounds are points where a central difference is not the
 * derivative. A float64 reference of the same equations (test/helpers/*-reference.ts) runs first and
 * records the distance of every pre-activation (and of c_t) to the nearest kink of the function it
 * goes through; the case is reseeded (deterministically) until that distance is >= KINK_MARGIN.
 * The same reference also makes sure each case exercised every piece of the function it is about
 * (e.g. a clip case really clips some pre-activations and leaves others alone; a hardSigmoid case
 * has pre-activations below, inside and above the linear part), growing the weight scale if needed.
 * The layer's forward must match that reference to 1e-10, and forwardAsync/backwardAsync must give
 * bit-identical results. Unused LSTM gate blocks (NIG: i, NFG/CIFG: f, NOG: o, and their peepholes)
 * must get exactly zero gradient. A last group checks that, with options, the inference forward over
 * several input-projection chunks equals the training forward bit for bit.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  GRU,
  LSTM,
  SimpleRNN,
  Tensor,
  type ActivationSpec,
  type GRUOptions,
  type LSTMOptions,
  type Recurrent,
  type SimpleRNNOptions,
} from '../lib/index.js';
import {
  assertBitIdentical,
  assertClose,
  batchToTime,
  centralDifferences,
  compare,
  dot,
  FINITE_DIFFERENCES,
  multiIndex,
  reverseTimeMajor,
  rng,
  timeToBatch,
  uniform64,
} from './helpers/compare.js';
import { act, actLabel, ALL_ACTIVATIONS, kinksOf, KinkTracker } from './helpers/activation-reference.js';
import { GREFF_VARIANTS, lstmVariantReference, type LstmVariantOptions, type ReferenceVariant } from './helpers/lstm-variants-reference.js';
import { rnnGruReference } from './helpers/cell-options-reference.js';

const { eps: EPS, rtol: RTOL, floor: FLOOR } = FINITE_DIFFERENCES;  // see helpers/compare.ts
/** Every value going through a non-smooth function stays this far from its kinks (EPS moves them ~1e-6). */
const KINK_MARGIN = 1e-4;
/** Seeds (and weight scales) tried per case before giving up. */
const ATTEMPTS = 40;

interface Shape {
  B: number;
  T: number;
  I: number;
  H: number;
}

type CellCase =
  | { cell: 'rnn'; layer: Partial<SimpleRNNOptions>; ref: { activation?: ActivationSpec; clip?: number } }
  | { cell: 'lstm'; layer: Partial<LSTMOptions>; ref: LstmVariantOptions }
  | {
      cell: 'gru';
      layer: Partial<GRUOptions>;
      ref: { activation?: ActivationSpec; recurrentActivation?: ActivationSpec; resetAfter: boolean; clip?: number };
    };

type Case = CellCase & {
  name: string;
  shape: Shape;
  initialState: boolean;
  goBackwards?: boolean;
  returnSequences?: boolean;
  returnState?: boolean;
  useBias?: boolean;
  /** Multiplies the random weights (default 1). */
  scale?: number;
  /** Initial states are uniform in ±stateScale (default 1). */
  stateScale?: number;
  /** Kink-tracker roles (exact names) each of whose pieces must be visited, e.g. 'g clip'. */
  cover?: string[];
  /** Entries checked per tensor (first, last and a seeded sample); undefined = all. */
  sample?: number;
  seed: number;
};

const stateCount = (c: Case): number => (c.cell === 'lstm' ? 2 : 1);

function makeLayer(c: Case): Recurrent {
  const common = {
    inputSize: c.shape.I,
    units: c.shape.H,
    returnSequences: c.returnSequences ?? true,
    returnState: c.returnState ?? true,
    goBackwards: c.goBackwards ?? false,
    useBias: c.useBias ?? true,
    dtype: 'float64' as const,
    seed: c.seed,
  };
  switch (c.cell) {
    case 'rnn':
      return new SimpleRNN({ ...common, ...c.layer });
    case 'lstm':
      return new LSTM({ ...common, ...c.layer });
    case 'gru':
      return new GRU({ ...common, ...c.layer });
  }
}

/** The explicit LSTM layer options of a reference option set. */
function lstmLayerOptions(o: LstmVariantOptions): Partial<LSTMOptions> {
  const out: Partial<LSTMOptions> = {};
  if (o.gate !== undefined) out.recurrentActivation = o.gate;
  if (o.candidate !== undefined) out.candidateActivation = o.candidate;
  if (o.output !== undefined) out.outputActivation = o.output;
  if (o.peepholes !== undefined) out.peepholes = o.peepholes;
  if (o.inputGate !== undefined) out.inputGate = o.inputGate;
  if (o.forgetGate !== undefined) out.forgetGate = o.forgetGate;
  if (o.outputGate !== undefined) out.outputGate = o.outputGate;
  if (o.coupled !== undefined) out.coupledInputForget = o.coupled;
  if (o.clip !== undefined) out.clip = o.clip;
  if (o.cellClip !== undefined) out.cellClip = o.cellClip;
  return out;
}

interface Problem {
  layer: Recurrent;
  x: Tensor;
  init?: Tensor[];
  R: Tensor;
  S: Tensor[];
  tracker: KinkTracker;
  /** Reference output in the layer's output layout and final states. */
  refOutput: Float64Array;
  refStates: Float64Array[];
}

function makeProblem(c: Case, seed: number, scale: number): Problem {
  const r = rng(seed);
  const { B, T, I, H } = c.shape;
  const layer = makeLayer(c);
  const w = (scale * 1.5) / Math.sqrt(H);
  const dict: Record<string, Tensor> = {};
  for (const [name, shape] of Object.entries(layer.parameterShapes())) {
    const n = shape.reduce((a, b) => a * b, 1);
    // Peepholes look at c (not at a sum over H units): give them weights of order 1.
    dict[name] = Tensor.from(name === 'weight_peephole_l0' ? uniform64(r, n, -scale, scale) : uniform64(r, n, -w, w), shape);
  }
  layer.loadStateDict(dict);
  const x = Tensor.from(uniform64(r, B * T * I), [B, T, I]);
  const s0 = c.stateScale ?? 1;
  const init = c.initialState ? Array.from({ length: stateCount(c) }, () => Tensor.from(uniform64(r, B * H, -s0, s0), [B, H])) : undefined;
  const returnSequences = c.returnSequences ?? true;
  const R = returnSequences ? Tensor.from(uniform64(r, B * T * H), [B, T, H]) : Tensor.from(uniform64(r, B * H), [B, H]);
  const S = (c.returnState ?? true) ? Array.from({ length: stateCount(c) }, () => Tensor.from(uniform64(r, B * H), [B, H])) : [];

  // The reference in processing order (time-major; reversed input for goBackwards).
  let xt = batchToTime(x.data as Float64Array, B, T, I);
  if (c.goBackwards) xt = reverseTimeMajor(xt, T, B, I);
  const sd = Object.fromEntries(Object.entries(layer.stateDict()).map(([k, t]) => [k, t.data]));
  const weights = {
    weight_ih_l0: sd.weight_ih_l0,
    weight_hh_l0: sd.weight_hh_l0,
    bias_ih_l0: sd.bias_ih_l0,
    bias_hh_l0: sd.bias_hh_l0,
    weight_peephole_l0: sd.weight_peephole_l0,
  };
  const tracker = new KinkTracker();
  let y: Float64Array;
  let states: Float64Array[];
  if (c.cell === 'lstm') {
    const out = lstmVariantReference({ T, B, I, H, x: xt, h0: init?.[0].data, c0: init?.[1].data, weights, options: c.ref, tracker });
    y = out.y;
    states = [out.hN, out.cN];
  } else {
    const out = rnnGruReference({
      cell: c.cell,
      T,
      B,
      I,
      H,
      x: xt,
      h0: init?.[0].data,
      weights,
      tracker,
      ...(c.cell === 'rnn' ? { activation: c.ref.activation, clip: c.ref.clip } : c.ref),
    });
    y = out.y;
    states = [out.hN];
  }
  // Processing order is exactly the layer's output order (goBackwards returns reversed-order outputs).
  const refOutput = returnSequences ? timeToBatch(y, T, B, H) : states[0];
  return { layer, x, init, R, S, tracker, refOutput, refStates: states };
}

function loss(p: Problem, init: Tensor[] | undefined): number {
  p.layer.markWeightsChanged(); // the differences perturb the parameters in place
  const { output, states } = p.layer.forward(p.x, init ? { initialState: init } : undefined);
  assert.equal(states.length, p.S.length, 'number of returned states');
  let L = dot(output.data, p.R.data);
  states.forEach((s, i) => (L += dot(s.data, p.S[i].data)));
  return L;
}

/** Which flat indices of an n-entry tensor to check: all, or first, last and a seeded sample. */
function indicesToCheck(n: number, sample: number | undefined, pick: () => number): number[] {
  if (sample === undefined || sample >= n) return Array.from({ length: n }, (_, k) => k);
  const picked = new Set<number>([0, n - 1]);
  while (picked.size < sample) picked.add(Math.floor(pick() * n));
  return [...picked].sort((a, b) => a - b);
}

/** Gate blocks (PyTorch order i, f, g, o) and peephole blocks (p_i, p_f, p_o) the LSTM options leave unused. */
function unusedLstmBlocks(o: LstmVariantOptions): { gates: number[]; peep: number[] } {
  const gates: number[] = [];
  const peep: number[] = [];
  const drop = (gate: number, p: number): void => {
    gates.push(gate);
    peep.push(p);
  };
  if (o.inputGate === false) drop(0, 0);
  if (o.forgetGate === false || o.coupled) drop(1, 1);
  if (o.outputGate === false) drop(3, 2);
  return { gates, peep: o.peepholes ? peep : [] };
}

let worstSeen = 0;
let worstWhere = '';
let entriesChecked = 0;
let cases = 0;

async function runCase(c: Case): Promise<void> {
  const { B, T, I, H } = c.shape;
  const name = c.name;

  // Reseed (and, every 10 attempts, grow the weights) until no value sits near a kink and the
  // function under test was exercised on all of its pieces.
  let p: Problem | undefined;
  const rejected: string[] = [];
  for (let attempt = 0; attempt < ATTEMPTS && !p; attempt++) {
    const scale = (c.scale ?? 1) * [1, 1.5, 2, 3][Math.floor(attempt / 10)];
    const cand = makeProblem(c, c.seed + attempt, scale);
    const missing = cand.tracker.unvisited((role) => (c.cover ?? []).includes(role));
    const notSeen = (c.cover ?? []).filter((role) => !cand.tracker.pieces.has(role));
    if (cand.tracker.minDistance < KINK_MARGIN) rejected.push(`seed ${c.seed + attempt}: near a kink (${cand.tracker.where})`);
    else if (missing.length || notSeen.length) rejected.push(`seed ${c.seed + attempt} scale ${scale}: ${[...missing, ...notSeen.map((r) => `${r}: never seen`)].join('; ')}`);
    else p = cand;
  }
  assert.ok(p, `${name}: no seed gave values away from kinks that cover ${JSON.stringify(c.cover)}:\n  ${rejected.slice(-5).join('\n  ')}`);

  // The layer computes what the reference computes (so the kink margins above are about this function).
  const inf = p.layer.forward(p.x, { initialState: p.init });
  assertClose(inf.output.data, p.refOutput, { rtol: 1e-10, floor: 1e-3, label: `${name}: output vs float64 reference`, shape: inf.output.shape });
  inf.states.forEach((s, i) => assertClose(s.data, p!.refStates[i], { rtol: 1e-10, floor: 1e-3, label: `${name}: states[${i}] vs reference`, shape: [B, H] }));

  const fwd = p.layer.forward(p.x, { initialState: p.init, training: true });
  assert.ok(fwd.run, `${name}: training forward returned no run`);
  assertClose(fwd.output.data, inf.output.data, { rtol: 1e-13, atol: 1e-15, label: `${name}: training vs inference output`, shape: fwd.output.shape });
  const grads = p.layer.backward(fwd.run, p.R, { dStates: p.S });

  // The async forms take the same options: bit-identical results.
  const fwdA = await p.layer.forwardAsync(p.x, { initialState: p.init, training: true });
  assertBitIdentical(fwdA.output.data, fwd.output.data, `${name}: forwardAsync output`, fwd.output.shape);
  fwdA.states.forEach((st, i) => assertBitIdentical(st.data, fwd.states[i].data, `${name}: forwardAsync states[${i}]`, st.shape));
  const gradsA = await p.layer.backwardAsync(fwdA.run!, p.R, { dStates: p.S });
  assertBitIdentical(gradsA.input.data, grads.input.data, `${name}: backwardAsync input gradient`, grads.input.shape);
  gradsA.initialState.forEach((g, i) => assertBitIdentical(g.data, grads.initialState[i].data, `${name}: backwardAsync initialState[${i}]`, g.shape));
  for (const k of Object.keys(grads.params)) assertBitIdentical(gradsA.params[k].data, grads.params[k].data, `${name}: backwardAsync ${k}`, grads.params[k].shape);

  assert.deepEqual(grads.input.shape, [B, T, I], `${name}: input gradient shape`);
  assert.equal(grads.initialState.length, stateCount(c), `${name}: number of initial-state gradients`);
  const paramShapes = p.layer.parameterShapes();
  assert.deepEqual(Object.keys(grads.params).sort(), Object.keys(paramShapes).sort(), `${name}: parameter gradient names`);
  if (c.cell === 'lstm') {
    assert.equal('weight_peephole_l0' in paramShapes, c.ref.peepholes === true, `${name}: weight_peephole_l0 present iff peepholes`);
    // Unused gate blocks get exactly zero gradient.
    const unused = unusedLstmBlocks(c.ref);
    for (const [k, cols] of [['weight_ih_l0', I], ['weight_hh_l0', H], ['bias_ih_l0', 1], ['bias_hh_l0', 1]] as const) {
      const g = grads.params[k]?.data;
      if (!g) continue;
      for (const blk of unused.gates) {
        const part = g.subarray(blk * H * cols, (blk + 1) * H * cols);
        assert.ok(part.every((v) => v === 0), `${name}: ${k} gate block ${'ifgo'[blk]} is unused but has gradient ${Array.from(part).find((v) => v !== 0)}`);
      }
    }
    for (const blk of unused.peep) {
      const part = grads.params.weight_peephole_l0.data.subarray(blk * H, (blk + 1) * H);
      assert.ok(part.every((v) => v === 0), `${name}: peephole block ${['p_i', 'p_f', 'p_o'][blk]} is unused but has gradient`);
    }
  }

  // Finite differences. Without initial states, dL/d(initial state) is checked by perturbing explicit zeros.
  const pp = p;
  const initForFd = pp.init ?? Array.from({ length: stateCount(c) }, () => Tensor.zeros([B, H], 'float64'));
  const L = (): number => loss(pp, pp.init);
  const LwithInit = (): number => loss(pp, initForFd);
  const targets = [
    { label: 'input', data: pp.x.data as Float64Array, got: grads.input, shape: [B, T, I], f: L },
    ...initForFd.map((s, i) => ({
      label: `initialState[${i}]${pp.init ? '' : ' (zeros, not given)'}`,
      data: s.data as Float64Array,
      got: grads.initialState[i],
      shape: [B, H],
      f: LwithInit,
    })),
    ...Object.entries(pp.layer.stateDict()).map(([k, t]) => ({ label: k, data: t.data as Float64Array, got: grads.params[k], shape: paramShapes[k], f: L })),
  ];
  const failures: string[] = [];
  const pick = rng(c.seed ^ 0x5eed);
  for (const tgt of targets) {
    assert.deepEqual(tgt.got.shape, tgt.shape, `${name}: ${tgt.label} gradient shape`);
    const ks = indicesToCheck(tgt.data.length, c.sample, () => pick.uniform(0, 1));
    const fd = centralDifferences(tgt.data, tgt.f, ks);
    const analytic = Float64Array.from(ks, (k) => tgt.got.data[k]);
    const r = compare(analytic, fd, { rtol: RTOL, floor: FLOOR });
    entriesChecked += fd.length;
    const at = (i: number): string => `[${multiIndex(ks[i], tgt.shape).join(', ')}]`;
    if (r.worstRatio > worstSeen) {
      worstSeen = r.worstRatio;
      worstWhere = `${name}, ${tgt.label}${at(r.worstIndex)}`;
    }
    if (r.worstRatio > 1) {
      const i = r.worstIndex;
      const bad = Array.from(fd).filter((v, j) => Math.abs(analytic[j] - v) > RTOL * Math.max(Math.abs(v), FLOOR)).length;
      failures.push(
        `d L / d ${tgt.label}: largest difference at ${at(i)} of [${tgt.shape.join(', ')}]: ` +
          `analytic ${analytic[i]}, finite difference ${fd[i]}, |diff| ${Math.abs(analytic[i] - fd[i]).toExponential(3)} ` +
          `= ${r.worstRatio.toPrecision(4)}x the tolerance (${bad} of ${fd.length} checked entries out of tolerance; ` +
          `largest absolute difference ${r.maxAbs.toExponential(3)} at ${at(r.maxAbsIndex)})`,
      );
    }
  }
  cases++;
  if (failures.length) assert.fail(`${name}: analytic gradients differ from finite differences:\n  ${failures.join('\n  ')}`);
}

// ---------------------------------------------------------------------------------------------
// Cases

const SHAPES: Shape[] = [
  { B: 1, T: 1, I: 1, H: 1 },
  { B: 2, T: 3, I: 3, H: 5 },
  { B: 1, T: 4, I: 5, H: 3 },
  { B: 3, T: 1, I: 2, H: 4 },
  { B: 2, T: 3, I: 1, H: 3 },
  { B: 3, T: 2, I: 4, H: 2 },
];
let shapeIdx = 0;
let seedCounter = 1;
/**
 * Cycles shapes, initial states (on/off) and goBackwards so every option meets each of them. A case
 * that must visit several pieces of a function (`cover`) needs more than the one value per role of
 * the 1×1×1×1 shape, so it gets the next shape instead.
 */
function base(cover: string[] | undefined): { shape: Shape; initialState: boolean; goBackwards: boolean; seed: number } {
  let k = shapeIdx++;
  if (cover?.length && SHAPES[k % SHAPES.length].T * SHAPES[k % SHAPES.length].B * SHAPES[k % SHAPES.length].H === 1) k = shapeIdx++;
  return { shape: SHAPES[k % SHAPES.length], initialState: k % 2 === 0, goBackwards: k % 3 === 2, seed: 1000 * seedCounter++ };
}
function tag(c: Omit<Case, 'name'>): Case {
  const { B, T, I, H } = c.shape;
  const flags = [c.initialState ? 'init' : 'no-init', c.goBackwards ? 'back' : '', c.useBias === false ? 'no-bias' : '', c.returnSequences === false ? 'last' : '', c.returnState === false ? 'no-state' : '']
    .filter(Boolean)
    .join(' ');
  return { ...c, name: `B=${B} T=${T} I=${I} H=${H} ${flags}` } as Case;
}

/** The activations of the set with their defaults, then custom α/β for every parametrised one. */
const ACTIVATIONS: ActivationSpec[] = [
  ...ALL_ACTIVATIONS,
  { name: 'hardSigmoid', alpha: 0.3, beta: 0.4 },
  { name: 'affine', alpha: 0.8, beta: 0.3 },
  { name: 'leakyRelu', alpha: 0.2 },
  { name: 'thresholdedRelu', alpha: 0.3 },
  { name: 'scaledTanh', alpha: 1.7, beta: 0.6 },
  { name: 'elu', alpha: 0.7 },
];

/** Roles of `roles` whose activation has kinks must be covered on every piece. */
function coverFor(spec: ActivationSpec, roles: string[]): string[] {
  const a = act(spec);
  return kinksOf(a).length ? roles.map((r) => `${r} ${a.name}`) : [];
}

function lstmCase(label: string, ref: LstmVariantOptions, extra: Partial<Case> = {}, layer?: Partial<LSTMOptions>): [string, Case] {
  const c = tag({ cell: 'lstm', ref, layer: layer ?? lstmLayerOptions(ref), ...base(extra.cover), ...extra } as Omit<Case, 'name'>);
  return [`LSTM ${label}: ${c.name}`, c];
}

function allCases(): [string, Case][] {
  const out: [string, Case][] = [];

  // Each Greff variant through the shorthand; the reference uses the paper's definition.
  for (const v of Object.keys(GREFF_VARIANTS) as ReferenceVariant[]) {
    out.push(lstmCase(`variant ${v}`, GREFF_VARIANTS[v], {}, { variant: v }));
  }
  // Combinations.
  out.push(lstmCase('CIFG + peepholes (explicit options)', { coupled: true, peepholes: true }));
  out.push(lstmCase('CIFG without peepholes', { coupled: true }));
  out.push(lstmCase('variant CIFG + clip', { ...GREFF_VARIANTS.CIFG, clip: 0.6 }, { cover: ['i clip', 'g clip', 'o clip'], shape: { B: 2, T: 3, I: 3, H: 3 } }, { variant: 'CIFG', clip: 0.6 }));
  out.push(lstmCase('NOG + clip', { outputGate: false, clip: 0.5 }, { cover: ['i clip', 'f clip', 'g clip'] }));
  out.push(lstmCase('variant NOG + clip', { ...GREFF_VARIANTS.NOG, clip: 0.7 }, { cover: ['i clip', 'f clip', 'g clip'], shape: { B: 2, T: 4, I: 3, H: 3 } }, { variant: 'NOG', clip: 0.7 }));
  out.push(lstmCase('NIG + cellClip', { inputGate: false, cellClip: 0.6 }, { cover: ['c cellClip'], shape: { B: 2, T: 4, I: 3, H: 3 } }));
  out.push(lstmCase('variant NIG + cellClip + peepholes', { ...GREFF_VARIANTS.NIG, cellClip: 0.5 }, { cover: ['c cellClip'], shape: { B: 2, T: 3, I: 2, H: 4 }, initialState: true }, { variant: 'NIG', cellClip: 0.5 }));
  out.push(lstmCase('cellClip + relu output', { cellClip: 0.8, output: 'relu', peepholes: true }, { cover: ['c cellClip', 'h(c) relu'], shape: { B: 3, T: 3, I: 2, H: 3 }, initialState: true }));
  out.push(lstmCase('peepholes + goBackwards', { peepholes: true }, { goBackwards: true, initialState: true, shape: { B: 2, T: 4, I: 3, H: 5 } }));
  out.push(lstmCase('peepholes + goBackwards, no initial state', { peepholes: true }, { goBackwards: true, initialState: false, shape: { B: 1, T: 3, I: 2, H: 3 } }));
  out.push(lstmCase('variant V + goBackwards', GREFF_VARIANTS.V, { goBackwards: true, initialState: true }, { variant: 'V', goBackwards: true }));
  out.push(lstmCase('hardSigmoid gates', { gate: 'hardSigmoid' }, { cover: ['i hardSigmoid', 'f hardSigmoid', 'o hardSigmoid'], scale: 2 }));
  out.push(lstmCase('hardSigmoid(α=0.3, β=0.4) gates + peepholes', { gate: { name: 'hardSigmoid', alpha: 0.3, beta: 0.4 }, peepholes: true }, { cover: ['i hardSigmoid', 'f hardSigmoid', 'o hardSigmoid'], scale: 2, shape: { B: 2, T: 3, I: 3, H: 4 } }));
  out.push(lstmCase('hardSigmoid gates + CIFG + clip 3', { gate: 'hardSigmoid', coupled: true, peepholes: true, clip: 3 }, { cover: ['i clip', 'i hardSigmoid'], scale: 2.5, shape: { B: 3, T: 3, I: 3, H: 3 } }));
  out.push(lstmCase('clip with peepholes', { peepholes: true, clip: 0.5 }, { cover: ['i clip', 'f clip', 'g clip', 'o clip'], initialState: true, shape: { B: 2, T: 3, I: 4, H: 3 } }));
  out.push(lstmCase('NIAF + NOAF + NFG (all at once)', { peepholes: true, candidate: 'linear', output: 'linear', forgetGate: false }));
  out.push(lstmCase('no bias, last output only', { peepholes: true, coupled: true }, { useBias: false, returnSequences: false }));
  out.push(lstmCase('no returned states', { outputGate: false, cellClip: 0.7 }, { returnState: false, cover: ['c cellClip'], shape: { B: 2, T: 4, I: 2, H: 3 }, initialState: true }));

  // Every activation as LSTM candidate and as output activation.
  for (const a of ACTIVATIONS) out.push(lstmCase(`candidateActivation ${actLabel(a)}`, { candidate: a }, { cover: coverFor(a, ['g']) }));
  // act_h sees c_t, which needs a large c0 to reach hardSigmoid's edges (±2.5) or thresholdedRelu's α = 1.
  for (const a of ACTIVATIONS) {
    const big = act(a).name === 'hardSigmoid' || act(a).name === 'thresholdedRelu';
    const extra: Partial<Case> = { cover: coverFor(a, ['h(c)']), ...(big ? { initialState: true, stateScale: 4 } : {}) };
    out.push(lstmCase(`outputActivation ${actLabel(a)}`, { output: a, peepholes: true }, extra));
  }

  // SimpleRNN: every activation, and clip.
  for (const a of ACTIVATIONS) {
    const cover = coverFor(a, ['rnn']);
    const c = tag({ cell: 'rnn', ref: { activation: a }, layer: { activation: a }, cover, ...base(cover) } as Omit<Case, 'name'>);
    out.push([`SimpleRNN activation ${actLabel(a)}: ${c.name}`, c]);
  }
  for (const [a, clip] of [['tanh', 0.5], ['relu', 0.7], ['linear', 0.4]] as [ActivationSpec, number][]) {
    const cover = ['rnn clip', ...coverFor(a, ['rnn'])];
    const c = tag({ cell: 'rnn', ref: { activation: a, clip }, layer: { activation: a, clip }, cover, ...base(cover) } as Omit<Case, 'name'>);
    out.push([`SimpleRNN ${actLabel(a)} clip ${clip}: ${c.name}`, c]);
  }

  // GRU, both forms: every activation as gate and as candidate activation, and clip.
  for (const resetAfter of [true, false]) {
    const form = resetAfter ? 'resetAfter' : 'reset-before';
    const gru = (label: string, ref: { activation?: ActivationSpec; recurrentActivation?: ActivationSpec; clip?: number }, cover: string[], extra: Partial<Case> = {}): void => {
      const layer: Partial<GRUOptions> = { resetAfter };
      if (ref.activation !== undefined) layer.activation = ref.activation;
      if (ref.recurrentActivation !== undefined) layer.recurrentActivation = ref.recurrentActivation;
      if (ref.clip !== undefined) layer.clip = ref.clip;
      const c = tag({ cell: 'gru', ref: { ...ref, resetAfter }, layer, cover, ...base(cover), ...extra } as Omit<Case, 'name'>);
      out.push([`GRU ${form} ${label}: ${c.name}`, c]);
    };
    for (const a of ACTIVATIONS) gru(`recurrentActivation ${actLabel(a)}`, { recurrentActivation: a }, coverFor(a, ['r', 'z']));
    for (const a of ACTIVATIONS) gru(`activation ${actLabel(a)}`, { activation: a }, coverFor(a, ['n']));
    gru('clip 0.5', { clip: 0.5 }, ['r clip', 'z clip', 'n clip'], { initialState: true, shape: { B: 2, T: 3, I: 3, H: 4 } });
    gru('hardSigmoid gates + softsign + clip 1.5', { recurrentActivation: 'hardSigmoid', activation: 'softsign', clip: 1.5 }, ['r clip', 'z clip', 'n clip'], { scale: 2 });
    gru('no bias, last output only', { recurrentActivation: 'hardSigmoid' }, [], { useBias: false, returnSequences: false });
  }
  return out;
}

/**
 * Shapes with more than 64 units (several row chunks of the general kernels) and enough rows for
 * the native thread pool to split the work; a seeded sample of entries per tensor is checked.
 */
function largeCases(): [string, Case][] {
  const common = { initialState: true, sample: 12 };
  const big = (label: string, c: Omit<Case, 'name' | 'initialState' | 'seed'>, seed: number): [string, Case] => {
    const full = tag({ ...common, ...c, seed } as Omit<Case, 'name'>);
    return [`large: ${label}: ${full.name} sample=${common.sample}`, full];
  };
  return [
    big('LSTM variant V', { cell: 'lstm', ref: GREFF_VARIANTS.V, layer: { variant: 'V' }, shape: { B: 6, T: 3, I: 5, H: 67 } }, 91001),
    big('LSTM variant CIFG goBackwards', { cell: 'lstm', ref: GREFF_VARIANTS.CIFG, layer: { variant: 'CIFG' }, goBackwards: true, shape: { B: 4, T: 2, I: 3, H: 130 } }, 91002),
    big('LSTM NIG + NOAF, scaledTanh gates', { cell: 'lstm', ref: { inputGate: false, output: 'linear', gate: { name: 'scaledTanh', alpha: 0.5, beta: 1.3 }, peepholes: true }, layer: { variant: 'NIG', outputActivation: 'linear', recurrentActivation: { name: 'scaledTanh', alpha: 0.5, beta: 1.3 } }, shape: { B: 5, T: 3, I: 4, H: 70 } }, 91003),
    big('GRU resetAfter softplus / scaledTanh', { cell: 'gru', ref: { resetAfter: true, recurrentActivation: 'softplus', activation: { name: 'scaledTanh', alpha: 1.2, beta: 0.8 } }, layer: { resetAfter: true, recurrentActivation: 'softplus', activation: { name: 'scaledTanh', alpha: 1.2, beta: 0.8 } }, shape: { B: 6, T: 3, I: 5, H: 67 } }, 91004),
    big('GRU reset-before sigmoid / softplus, goBackwards', { cell: 'gru', ref: { resetAfter: false, activation: 'softplus' }, layer: { resetAfter: false, activation: 'softplus' }, goBackwards: true, shape: { B: 6, T: 3, I: 5, H: 67 } }, 91005),
    big('SimpleRNN scaledTanh', { cell: 'rnn', ref: { activation: { name: 'scaledTanh', alpha: 0.9, beta: 1.1 } }, layer: { activation: { name: 'scaledTanh', alpha: 0.9, beta: 1.1 } }, shape: { B: 8, T: 3, I: 3, H: 130 } }, 91006),
  ];
}

/**
 * The loss above uses the inference forward, the gradients the training forward. Inference projects
 * the input in chunks of at most 2^21 scalars (steps · batch · gates · units), so for the small shapes
 * above it is one chunk: check long sequences with options here (outputs and states bit-identical).
 */
describe('with cell options, inference over several projection chunks equals the training forward', () => {
  const T = 70, I = 3, H = 32;
  const common = (goBackwards: boolean) => ({ inputSize: I, units: H, returnSequences: true, returnState: true, goBackwards });
  const layers: [string, number, (goBackwards: boolean) => Recurrent][] = [
    ['LSTM variant V + clip 0.8 + cellClip 1.5', 256, (g) => new LSTM({ ...common(g), variant: 'V', clip: 0.8, cellClip: 1.5 })],
    ['LSTM CIFG + hardSigmoid gates (float64)', 256, (g) => new LSTM({ ...common(g), variant: 'CIFG', recurrentActivation: 'hardSigmoid', dtype: 'float64' })],
    ['GRU reset-before hardSigmoid / softsign + clip 1', 342, (g) => new GRU({ ...common(g), resetAfter: false, recurrentActivation: 'hardSigmoid', activation: 'softsign', clip: 1 })],
    ['GRU resetAfter elu candidate', 342, (g) => new GRU({ ...common(g), activation: 'elu' })],
    ['SimpleRNN relu + clip 0.5', 1024, (g) => new SimpleRNN({ ...common(g), activation: 'relu', clip: 0.5 })],
  ];
  for (const [label, B, make] of layers) {
    for (const goBackwards of [false, true]) {
      test(`${label} B=${B} T=${T} H=${H} goBackwards=${goBackwards}`, () => {
        const layer = make(goBackwards);
        const r = rng(77);
        const mk = (n: number, scale = 1): Tensor => {
          const v = uniform64(r, n, -scale, scale);
          return Tensor.from(layer.dtype === 'float64' ? v : Float32Array.from(v), [n]);
        };
        const dict: Record<string, Tensor> = {};
        for (const [k, shape] of Object.entries(layer.parameterShapes())) dict[k] = Tensor.from(mk(shape.reduce((a, b) => a * b, 1), 0.4).data, shape);
        layer.loadStateDict(dict);
        const x = Tensor.from(mk(B * T * I).data, [B, T, I]);
        const init = Array.from({ length: layer instanceof LSTM ? 2 : 1 }, () => Tensor.from(mk(B * H).data, [B, H]));
        const inf = layer.forward(x, { initialState: init });
        const train = layer.forward(x, { initialState: init, training: true });
        assertBitIdentical(inf.output.data, train.output.data, 'output', [B, T, H]);
        assert.equal(inf.states.length, train.states.length);
        inf.states.forEach((st, i) => assertBitIdentical(st.data, train.states[i].data, `states[${i}]`, [B, H]));
      });
    }
  }
});

describe('cell options: gradients (float64, central differences, all entries)', () => {
  for (const [label, c] of [...allCases(), ...largeCases()]) test(label, () => runCase({ ...c, name: label }));
  after(() => {
    console.log(
      `# ${cases} cases, ${entriesChecked} gradient entries checked; worst |analytic - fd| / (${RTOL}·max(|fd|, ${FLOOR})) = ` +
        `${worstSeen.toPrecision(3)} (${worstWhere})`,
    );
  });
});
