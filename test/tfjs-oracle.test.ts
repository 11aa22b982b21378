/**
 * Validates test/helpers/tfjs-oracle.ts against an independent float64 implementation:
 *  - forward (y, hN, cN) against referenceForward (test/helpers/reference.ts);
 *  - every gradient entry against central finite differences of
 *      L = sum(y*dy) + sum(hN*dhN) + sum(cN*dcN)
 *    computed in float64 with the reference, in PyTorch layout (so the layout conversions and
 *    the GRU gate permutation inside the oracle are checked too).
 * Cases are generated from fixed seeds, so failures are reproducible; each failure message
 * names the case, the tensor, the multi-index of the worst entry and both values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';

import { tfjsOracle, type OracleCell, type OracleInput, type OracleResult } from './helpers/tfjs-oracle.js';
import { referenceForward, referenceGateCount, type ReferenceInput } from './helpers/reference.js';

/** Forward tolerance on |got - want| / max(1, |want|) (oracle is float32). */
const FORWARD_TOL = 1e-5;
/** Gradient tolerance on |got - want| / max(1, |want|). */
const GRAD_TOL = 1e-3;
/** Central-difference step (float64). */
const FD_EPS = 1e-6;

// ---------------------------------------------------------------------------------------------
// Deterministic random cases

/** mulberry32: small, seedable PRNG returning floats in [0, 1). */
function makeRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type StateMode = 'none' | 'h0' | 'h0+c0' | 'c0';
interface Shape {
  T: number;
  B: number;
  I: number;
  H: number;
}
interface Case {
  label: string;
  input: OracleInput;
}

function makeCase(cell: OracleCell, shape: Shape, mode: StateMode, seed: number): Case {
  const rng = makeRng(seed);
  const uniform = (n: number, scale: number): Float32Array =>
    Float32Array.from({ length: n }, () => (2 * rng() - 1) * scale);
  const { T, B, I, H } = shape;
  const GH = referenceGateCount(cell) * H;
  // Weights a bit larger than PyTorch's default U(-1/sqrt(H), 1/sqrt(H)) so gates leave the linear regime.
  const w = 1.5 / Math.sqrt(H);
  const isLstm = cell === 'lstm';
  const input: OracleInput = {
    cell,
    ...shape,
    x: uniform(T * B * I, 1),
    weights: {
      weight_ih_l0: uniform(GH * I, w),
      weight_hh_l0: uniform(GH * H, w),
      bias_ih_l0: uniform(GH, w),
      bias_hh_l0: uniform(GH, w),
    },
    dy: uniform(T * B * H, 1),
    dhN: uniform(B * H, 1),
    ...(mode === 'h0' || mode === 'h0+c0' ? { h0: uniform(B * H, 1) } : {}),
    ...(mode === 'c0' || mode === 'h0+c0' ? { c0: uniform(B * H, 1) } : {}),
    // Leave dcN out in the stateless LSTM cases to cover the "omitted = zeros" path.
    ...(isLstm && mode !== 'none' ? { dcN: uniform(B * H, 1) } : {}),
  };
  return { label: `${cell} T=${T} B=${B} I=${I} H=${H} state=${mode} seed=${seed}`, input };
}

/** FNV-1a hash, to derive distinct per-cell seeds. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < s.length; k++) h = Math.imul(h ^ s.charCodeAt(k), 0x01000193) >>> 0;
  return h;
}

function casesFor(cell: OracleCell): Case[] {
  const base = hashString(cell) % 100_000;
  const rng = makeRng(base);
  const int = (lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
  const shapes: Shape[] = [
    { T: 1, B: 1, I: 1, H: 1 },
    { T: 5, B: 3, I: 6, H: 4 },
    { T: 2, B: 3, I: 3, H: 6 },
    { T: int(1, 5), B: int(1, 3), I: int(1, 6), H: int(1, 6) },
    { T: int(1, 5), B: int(1, 3), I: int(1, 6), H: int(1, 6) },
  ];
  const modes: StateMode[] = cell === 'lstm' ? ['none', 'h0+c0', 'h0', 'c0'] : ['none', 'h0'];
  let seed = base;
  return shapes.flatMap((shape) => modes.map((mode) => makeCase(cell, shape, mode, ++seed)));
}

// ---------------------------------------------------------------------------------------------
// Comparison with informative failures

interface Mismatch {
  err: number;
  index: number;
  got: number;
  want: number;
}

/** Largest |got - want| / max(1, |want|) over all entries (NaN counts as infinitely bad). */
function worstEntry(got: ArrayLike<number>, want: ArrayLike<number>): Mismatch {
  assert.equal(got.length, want.length, `length mismatch: got ${got.length}, want ${want.length}`);
  let worst: Mismatch = { err: 0, index: -1, got: NaN, want: NaN };
  for (let k = 0; k < want.length; k++) {
    const d = Math.abs(got[k] - want[k]) / Math.max(1, Math.abs(want[k]));
    const err = Number.isNaN(d) ? Infinity : d;
    if (worst.index < 0 || err > worst.err) worst = { err, index: k, got: got[k], want: want[k] };
  }
  return worst;
}

function multiIndex(flat: number, dims: readonly number[]): string {
  const idx: number[] = [];
  for (let d = dims.length - 1; d >= 0; d--) {
    idx.unshift(flat % dims[d]);
    flat = Math.floor(flat / dims[d]);
  }
  return idx.join(', ');
}

/** Asserts closeness; on failure reports the worst entry with its position. Returns the worst error. */
function assertClose(
  what: string,
  got: ArrayLike<number> | undefined,
  want: ArrayLike<number>,
  dims: readonly number[],
  tol: number,
): number {
  assert.ok(got !== undefined, `${what}: missing from the oracle result`);
  const w = worstEntry(got, want);
  assert.ok(
    w.err <= tol,
    `${what}: largest scaled difference ${w.err.toExponential(3)} > ${tol.toExponential(0)} ` +
      `at [${multiIndex(w.index, dims)}] (flat ${w.index}; dims [${dims.join(', ')}]): ` +
      `got ${w.got}, want ${w.want}`,
  );
  return w.err;
}

// ---------------------------------------------------------------------------------------------
// Float64 loss and finite differences

/** The float64 parameters L depends on, keyed like the oracle's gradients. */
type ParamName = 'x' | 'h0' | 'c0' | 'weight_ih_l0' | 'weight_hh_l0' | 'bias_ih_l0' | 'bias_hh_l0';
type Params = Partial<Record<ParamName, Float64Array>>;

function paramsOf(input: OracleInput): Params {
  const p: Params = {
    x: Float64Array.from(input.x),
    weight_ih_l0: Float64Array.from(input.weights.weight_ih_l0),
    weight_hh_l0: Float64Array.from(input.weights.weight_hh_l0),
    bias_ih_l0: Float64Array.from(input.weights.bias_ih_l0),
    bias_hh_l0: Float64Array.from(input.weights.bias_hh_l0),
  };
  if (input.h0) p.h0 = Float64Array.from(input.h0);
  if (input.c0) p.c0 = Float64Array.from(input.c0);
  return p;
}

function required(p: Params, name: ParamName): Float64Array {
  const v = p[name];
  assert.ok(v, `missing parameter ${name}`);
  return v;
}

function referenceLoss(input: OracleInput, p: Params): number {
  const ref: ReferenceInput = {
    cell: input.cell,
    T: input.T,
    B: input.B,
    I: input.I,
    H: input.H,
    x: required(p, 'x'),
    h0: p.h0,
    c0: p.c0,
    weights: {
      weight_ih_l0: required(p, 'weight_ih_l0'),
      weight_hh_l0: required(p, 'weight_hh_l0'),
      bias_ih_l0: required(p, 'bias_ih_l0'),
      bias_hh_l0: required(p, 'bias_hh_l0'),
    },
  };
  const { y, hN, cN } = referenceForward(ref);
  const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
    let s = 0;
    for (let k = 0; k < a.length; k++) s += a[k] * b[k];
    return s;
  };
  let L = dot(y, input.dy) + dot(hN, input.dhN);
  if (cN && input.dcN) L += dot(cN, input.dcN);
  return L;
}

/** dL/dp[name] for every entry of the parameter, by central differences in float64. */
function finiteDifference(input: OracleInput, p: Params, name: ParamName): Float64Array {
  const v = required(p, name);
  const g = new Float64Array(v.length);
  for (let k = 0; k < v.length; k++) {
    const saved = v[k];
    v[k] = saved + FD_EPS;
    const plus = referenceLoss(input, p);
    v[k] = saved - FD_EPS;
    const minus = referenceLoss(input, p);
    v[k] = saved;
    g[k] = (plus - minus) / (2 * FD_EPS);
  }
  return g;
}

function dimsOf(input: OracleInput, name: ParamName): number[] {
  const { T, B, I, H } = input;
  const GH = referenceGateCount(input.cell) * H;
  switch (name) {
    case 'x':
      return [T, B, I];
    case 'h0':
    case 'c0':
      return [B, H];
    case 'weight_ih_l0':
      return [GH, I];
    case 'weight_hh_l0':
      return [GH, H];
    case 'bias_ih_l0':
    case 'bias_hh_l0':
      return [GH];
  }
}

// ---------------------------------------------------------------------------------------------
// The check itself

interface CaseErrors {
  forward: number;
  grad: number;
}

function checkCase({ label, input }: Case, result: OracleResult): CaseErrors {
  const { T, B, H } = input;
  const want = referenceForward(input);
  let forward = assertClose(`${label}: y`, result.y, want.y, [T, B, H], FORWARD_TOL);
  forward = Math.max(forward, assertClose(`${label}: hN`, result.hN, want.hN, [B, H], FORWARD_TOL));
  if (input.cell === 'lstm') {
    assert.ok(want.cN);
    forward = Math.max(forward, assertClose(`${label}: cN`, result.cN, want.cN, [B, H], FORWARD_TOL));
  } else {
    assert.equal(result.cN, undefined, `${label}: cN must be absent for ${input.cell}`);
  }

  // Gradients exist exactly for the given initial states.
  assert.equal(result.grads.h0 !== undefined, input.h0 !== undefined, `${label}: presence of grads.h0`);
  assert.equal(result.grads.c0 !== undefined, input.c0 !== undefined, `${label}: presence of grads.c0`);

  const params = paramsOf(input);
  let grad = 0;
  for (const name of Object.keys(params) as ParamName[]) {
    const fd = finiteDifference(input, params, name);
    grad = Math.max(grad, assertClose(`${label}: d${name}`, result.grads[name], fd, dimsOf(input, name), GRAD_TOL));
  }
  return { forward, grad };
}

const cells: OracleCell[] = ['rnn_tanh', 'rnn_relu', 'lstm', 'gru'];

for (const cell of cells) {
  test(`tfjs oracle matches the float64 reference and finite differences: ${cell}`, async (t) => {
    const worst: CaseErrors = { forward: 0, grad: 0 };
    for (const c of casesFor(cell)) {
      await t.test(c.label, async () => {
        const errors = checkCase(c, await tfjsOracle(c.input));
        worst.forward = Math.max(worst.forward, errors.forward);
        worst.grad = Math.max(worst.grad, errors.grad);
      });
    }
    t.diagnostic(
      `${cell}: worst scaled error forward ${worst.forward.toExponential(2)}, gradients ${worst.grad.toExponential(2)}`,
    );
  });
}

test('the comparison catches a single wrong entry and reports where it is', async () => {
  const c = makeCase('gru', { T: 3, B: 2, I: 4, H: 3 }, 'h0', 42);
  const result = await tfjsOracle(c.input);
  checkCase(c, result); // sanity: passes unmodified

  const yBad = Float32Array.from(result.y);
  yBad[7] += 1e-3;
  assert.throws(() => checkCase(c, { ...result, y: yBad }), /: y: .* at \[1, 0, 1\] \(flat 7/);

  const dW = Float32Array.from(result.grads.weight_hh_l0);
  dW[10] += 0.05;
  assert.throws(
    () => checkCase(c, { ...result, grads: { ...result.grads, weight_hh_l0: dW } }),
    /dweight_hh_l0: .* at \[3, 1\] \(flat 10/,
  );

  // The two GRU gate blocks r and z really are distinguished (catches a missing permutation).
  const swapped = Float32Array.from(result.grads.weight_ih_l0);
  const H = c.input.H;
  const I = c.input.I;
  swapped.set(result.grads.weight_ih_l0.subarray(H * I, 2 * H * I), 0);
  swapped.set(result.grads.weight_ih_l0.subarray(0, H * I), H * I);
  assert.throws(() => checkCase(c, { ...result, grads: { ...result.grads, weight_ih_l0: swapped } }), /dweight_ih_l0/);
});

test('tfjsOracle releases all tensors and validates its input', async () => {
  const c = makeCase('lstm', { T: 4, B: 2, I: 3, H: 5 }, 'h0+c0', 7);
  await tfjsOracle(c.input); // warm up (backend initialisation)
  const before = tf.memory().numTensors;
  for (const cell of cells) await tfjsOracle(makeCase(cell, { T: 3, B: 2, I: 2, H: 3 }, 'h0', 8).input);
  await tfjsOracle(c.input);
  assert.equal(tf.memory().numTensors, before, 'tensors leaked by tfjsOracle');

  await assert.rejects(tfjsOracle({ ...c.input, x: c.input.x.subarray(1) }), /x has length/);
  await assert.rejects(
    tfjsOracle({ ...makeCase('gru', { T: 2, B: 1, I: 2, H: 2 }, 'none', 9).input, c0: new Float32Array(2) }),
    /only meaningful for 'lstm'/,
  );
});
