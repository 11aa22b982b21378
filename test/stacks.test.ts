/**
 * Deep and bidirectional stacks, variable lengths, masks and dropout, run natively in one call.
 *
 * Oracles: the stack against the same layers composed by hand from single layer-directions (the
 * single-layer path is itself checked against PyTorch, tfjs and onnxruntime elsewhere); each
 * sequence of a padded batch against that sequence run alone; a mask with holes against the
 * compacted sequence (Keras semantics); central differences in float64 through a 2-layer
 * bidirectional stack with lengths and fixed dropout masks; dropout statistics against their
 * binomial distribution.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  Bidirectional, DropoutWrapper, getNumThreads, GRU, LSTM, setNumThreads, SimpleRNN, Tensor, type Recurrent,
} from '../lib/index.js';
import { assertBitIdentical, assertClose, centralDifferences, dot, FINITE_DIFFERENCES, rng, uniform64 } from './helpers/compare.js';

type Kind = 'lstm' | 'gru' | 'rnn' | 'lstmp';

function make(kind: Kind, o: Record<string, unknown>): Recurrent {
  const base = { dtype: 'float64', seed: 5, returnSequences: true, returnState: true, ...o } as never;
  if (kind === 'lstm') return new LSTM(base);
  if (kind === 'lstmp') return new LSTM({ ...(base as object), projSize: 3 } as never);
  if (kind === 'gru') return new GRU(base);
  return new SimpleRNN(base);
}

function tensor64(r: ReturnType<typeof rng>, shape: number[], lo = -1, hi = 1): Tensor {
  return Tensor.from(uniform64(r, shape.reduce((a, b) => a * b, 1), lo, hi), shape, 'float64');
}

/** [B, T, F] with the time order of each sequence's first `len` steps reversed. */
function reversePrefix(x: Float64Array, B: number, T: number, F: number, lengths: number[]): Float64Array {
  const out = x.slice();
  for (let b = 0; b < B; b++) {
    const n = lengths[b];
    for (let t = 0; t < n; t++) out.set(x.subarray((b * T + n - 1 - t) * F, (b * T + n - t) * F), (b * T + t) * F);
  }
  return out;
}

/** The stack computed by hand: single layer-directions, PyTorch's wiring (concat between layers). */
function composed(stack: Recurrent, x: Tensor, lengths?: number[], extra: Record<string, unknown> = {}): { output: Float64Array; h: Float64Array; c?: Float64Array } {
  const sd = stack.stateDict();
  const [B, T] = x.shape;
  const L = stack.numLayers, D = stack.numDirections, P = stack.outputSize, H = stack.units;
  const kind: Kind = stack instanceof LSTM ? (P !== H ? 'lstmp' : 'lstm') : stack instanceof GRU ? 'gru' : 'rnn';
  const lens = lengths ?? new Array<number>(B).fill(T);
  let input: Float64Array = x.data as Float64Array;
  let width = stack.inputSize;
  const h = new Float64Array(L * D * B * P), c = new Float64Array(L * D * B * H);
  for (let l = 0; l < L; l++) {
    const out = new Float64Array(B * T * D * P);
    for (let d = 0; d < D; d++) {
      const single = make(kind, { inputSize: width, units: H, ...extra });
      const sfx = `_l${l}${d ? '_reverse' : ''}`;
      single.loadStateDict(Object.fromEntries(Object.keys(single.stateDict()).map((k) => [k, sd[k.replace('_l0', sfx)]])));
      // Each sequence alone (its valid part; reversed for the reverse direction).
      for (let b = 0; b < B; b++) {
        const n = lens[b];
        let xb: Float64Array = input.slice(b * T * width, (b * T + n) * width);
        if (d) xb = reversePrefix(xb, 1, n, width, [n]);
        const r = single.forward(Tensor.from(xb, [1, n, width], 'float64'));
        let y: Float64Array = r.output.data as Float64Array;
        if (d) y = reversePrefix(y, 1, n, P, [n]);
        for (let t = 0; t < n; t++) out.set(y.subarray(t * P, (t + 1) * P), (b * T + t) * D * P + d * P);
        h.set(r.states[0].data, ((l * D + d) * B + b) * P);
        if (r.states[1]) c.set(r.states[1].data, ((l * D + d) * B + b) * H);
      }
    }
    input = out;
    width = D * P;
  }
  return { output: input, h, ...(stack instanceof LSTM ? { c } : {}) };
}

const EXACT = { rtol: 1e-12, floor: 1e-6 };

describe('stacks equal their layers composed by hand (float64)', () => {
  const cases: [Kind, number, boolean, Record<string, unknown>?][] = [
    ['lstm', 2, true], ['lstm', 3, false], ['gru', 2, true], ['gru', 3, true], ['rnn', 2, true], ['lstmp', 2, true], ['lstmp', 1, true],
    // cell options in every position of a stack
    ['lstm', 2, true, { peepholes: true, cellClip: 0.8, clip: 2, fullGateRecurrence: true }],
    ['lstm', 2, true, { variant: 'CIFG', recurrentActivation: 'hardSigmoid' }],
    ['lstm', 2, false, { cellBlockSize: 2 }],
    ['lstmp', 2, true, { projClip: 0.3, peepholes: true }],
    ['gru', 2, true, { resetAfter: false, activation: 'softsign' }],
    ['rnn', 2, true, { activation: 'relu' }],
    ['rnn', 2, false, { activation: 'elu' }],
  ];
  for (const [kind, L, bidirectional, extra = {}] of cases) {
    test(`${kind} numLayers=${L} bidirectional=${bidirectional} ${JSON.stringify(extra)}, with and without lengths`, () => {
      const r = rng(L * 7 + (bidirectional ? 1 : 0) + kind.length + Object.keys(extra).length);
      const B = 3, T = 5, I = 4;
      const stack = make(kind, { inputSize: I, units: 4, numLayers: L, bidirectional, ...extra });
      // Every parameter random (peepholes and W_gr start at zero).
      for (const t of Object.values(stack.stateDict())) t.data.set(uniform64(r, t.size, -0.6, 0.6));
      stack.markWeightsChanged();
      const x = tensor64(r, [B, T, I]);
      for (const lengths of [undefined, [5, 2, 4]]) {
        const got = stack.forward(x, lengths ? { lengths } : undefined);
        const want = composed(stack, x, lengths, extra);
        const label = `${kind} L=${L} bi=${bidirectional} lengths=${lengths}`;
        assertClose(got.output.data, want.output, { ...EXACT, label: `${label} output` });
        assertClose(got.states[0].data, want.h, { ...EXACT, label: `${label} hN` });
        if (want.c) assertClose(got.states[1].data, want.c, { ...EXACT, label: `${label} cN` });
      }
    });
  }

  test('a perturbed weight of the top reverse layer changes the output (the comparison can fail)', () => {
    const stack = make('lstm', { inputSize: 3, units: 3, numLayers: 2, bidirectional: true });
    const x = tensor64(rng(1), [2, 4, 3]);
    const before = stack.forward(x).output.data.slice();
    stack.stateDict().weight_hh_l1_reverse.data[0] += 0.5;
    stack.markWeightsChanged();
    const after = stack.forward(x).output.data;
    assert.ok(before.some((v, i) => Math.abs(v - after[i]) > 1e-6));
  });
});

describe('variable lengths', () => {
  test('each sequence of a padded batch equals that sequence run alone; garbage in the padding changes nothing; gradients too', () => {
    const r = rng(42);
    const B = 4, T = 6, I = 3, H = 4;
    const lengths = [2, 6, 1, 4];
    for (const kind of ['lstm', 'gru', 'rnn'] as Kind[]) {
      const stack = make(kind, { inputSize: I, units: H, numLayers: 2, bidirectional: true });
      const x = tensor64(r, [B, T, I]);
      const garbage = x.data.slice() as Float64Array;
      for (let b = 0; b < B; b++) for (let t = lengths[b]; t < T; t++) for (let j = 0; j < I; j++) garbage[(b * T + t) * I + j] = 1e6 * (j + 1);
      const dy = tensor64(r, [B, T, 2 * H]);
      const fa = stack.forward(x, { lengths, training: true });
      const fb = stack.forward(Tensor.from(garbage, [B, T, I], 'float64'), { lengths, training: true });
      assertBitIdentical(fb.output.data as Float64Array, fa.output.data as Float64Array, `${kind} output with garbage in the padding`);
      const ga = stack.backward(fa.run!, dy), gb = stack.backward(fb.run!, dy);
      for (const k of Object.keys(ga.params)) assertBitIdentical(gb.params[k].data as Float64Array, ga.params[k].data as Float64Array, `${kind} d${k}`);
      for (let b = 0; b < B; b++) {
        const n = lengths[b];
        const xb = Tensor.from(x.data.slice(b * T * I, (b * T + n) * I), [1, n, I], 'float64');
        const alone = stack.forward(xb, { training: true });
        for (let t = 0; t < T; t++) {
          const got = fa.output.data.subarray((b * T + t) * 2 * H, (b * T + t + 1) * 2 * H);
          const want = t < n ? alone.output.data.subarray(t * 2 * H, (t + 1) * 2 * H) : new Float64Array(2 * H);
          assertClose(got, want, { ...EXACT, label: `${kind} sequence ${b} step ${t}` });
        }
        for (let cell = 0; cell < 4; cell++) {
          assertClose(fa.states[0].data.subarray((cell * B + b) * H, (cell * B + b + 1) * H), alone.states[0].data.subarray(cell * H, (cell + 1) * H),
            { ...EXACT, label: `${kind} hN cell ${cell} sequence ${b}` });
        }
        // Input gradient of the sequence alone (its own dy), zero in the padding.
        const dyb = Tensor.from(dy.data.slice(b * T * 2 * H, (b * T + n) * 2 * H), [1, n, 2 * H], 'float64');
        const gAlone = stack.backward(alone.run!, dyb);
        for (let t = 0; t < T; t++) {
          const got = ga.input.data.subarray((b * T + t) * I, (b * T + t + 1) * I);
          const want = t < n ? gAlone.input.data.subarray(t * I, (t + 1) * I) : new Float64Array(I);
          assertClose(got, want, { ...EXACT, label: `${kind} dInput sequence ${b} step ${t}` });
        }
      }
    }
  });

  test('pre-padded and post-padded batches agree (outputs shifted, states equal)', () => {
    const r = rng(7);
    const B = 3, T = 5, I = 2, H = 3;
    const lengths = [3, 5, 1];
    const stack = make('gru', { inputSize: I, units: H, numLayers: 2, bidirectional: true });
    const post = tensor64(r, [B, T, I]);
    const pre = new Float64Array(B * T * I);
    for (let b = 0; b < B; b++) pre.set(post.data.subarray(b * T * I, (b * T + lengths[b]) * I), (b * T + T - lengths[b]) * I);
    const a = stack.forward(post, { lengths });
    const p = stack.forward(Tensor.from(pre, [B, T, I], 'float64'), { lengths, padding: 'pre' });
    assertClose(p.states[0].data, a.states[0].data, { ...EXACT, label: 'hN' });
    for (let b = 0; b < B; b++) {
      const n = lengths[b], W = 2 * H;
      assertClose(p.output.data.subarray((b * T + T - n) * W, (b * T + T) * W), a.output.data.subarray(b * T * W, (b * T + n) * W), { ...EXACT, label: `sequence ${b}` });
      assert.ok(p.output.data.subarray(b * T * W, (b * T + T - n) * W).every((v) => v === 0), 'zeros in the front padding');
    }
  });

  test('goBackwards with lengths reads each sequence backwards from its last valid step', () => {
    const r = rng(9);
    const B = 2, T = 4, I = 2, H = 3;
    const lengths = [2, 4];
    const back = make('lstm', { inputSize: I, units: H, goBackwards: true });
    const x = tensor64(r, [B, T, I]);
    const got = back.forward(x, { lengths });
    for (let b = 0; b < B; b++) {
      const n = lengths[b];
      const alone = back.forward(Tensor.from(x.data.slice(b * T * I, (b * T + n) * I), [1, n, I], 'float64'));
      assertClose(got.output.data.subarray(b * T * H, (b * T + n) * H), alone.output.data, { ...EXACT, label: `sequence ${b}` });
      assertClose(got.states[0].data.subarray(b * H, (b + 1) * H), alone.states[0].data, { ...EXACT, label: `hN ${b}` });
    }
  });

  test('a mask with holes: Keras semantics (equals the compacted sequence; outputs carried over masked steps)', () => {
    const r = rng(11);
    const B = 2, T = 6, I = 2, H = 3;
    const mask = [1, 0, 1, 1, 0, 1, /**/ 0, 1, 1, 0, 0, 1];
    const layer = make('lstm', { inputSize: I, units: H });
    const x = tensor64(r, [B, T, I]);
    const got = layer.forward(x, { mask });
    for (let b = 0; b < B; b++) {
      const keep = [...Array(T).keys()].filter((t) => mask[b * T + t] === 1);
      const xb = new Float64Array(keep.length * I);
      keep.forEach((t, k) => xb.set(x.data.subarray((b * T + t) * I, (b * T + t + 1) * I), k * I));
      const alone = layer.forward(Tensor.from(xb, [1, keep.length, I], 'float64'));
      let k = -1;
      for (let t = 0; t < T; t++) {
        if (mask[b * T + t]) k++;
        const want = k < 0 ? new Float64Array(H) : alone.output.data.subarray(k * H, (k + 1) * H);
        assertClose(got.output.data.subarray((b * T + t) * H, (b * T + t + 1) * H), want, { ...EXACT, label: `sequence ${b} step ${t}` });
      }
      assertClose(got.states[0].data.subarray(b * H, (b + 1) * H), alone.states[0].data, { ...EXACT, label: `hN ${b}` });
    }
  });

  test('lengths and masks are checked, naming the entry', () => {
    const layer = make('gru', { inputSize: 2, units: 2 });
    const x = Tensor.from(new Float64Array(2 * 3 * 2), [2, 3, 2], 'float64');
    assert.throws(() => layer.forward(x, { lengths: [0, 3] }), (e: Error) => e instanceof RangeError && /options\.lengths\[0\] must be an integer in \[1, steps=3\], got 0/.test(e.message));
    assert.throws(() => layer.forward(x, { lengths: [3, 4] }), (e: Error) => e instanceof RangeError && /options\.lengths\[1\]/.test(e.message));
    assert.throws(() => layer.forward(x, { lengths: [3] }), RangeError);
    assert.throws(() => layer.forward(x, { mask: [1, 1, 1, 0, 0, 0] }), (e: Error) => e instanceof RangeError && /options\.mask\[1\] masks every step/.test(e.message));
    assert.throws(() => layer.forward(x, { mask: [1, 2, 1, 1, 1, 1] }), (e: Error) => e instanceof RangeError && /options\.mask\[0, 1\] must be 0 or 1/.test(e.message));
    assert.throws(() => layer.forward(x, { lengths: [1, 1], mask: [1, 1, 1, 1, 1, 1] }), TypeError);
    assert.throws(() => layer.forward(x, { padding: 'pre' }), (e: Error) => e instanceof TypeError && /padding needs options\.lengths/.test(e.message));
  });
});

describe('dropout', () => {
  test('finite differences in float64 through a 2-layer bidirectional LSTM with lengths and fixed dropout masks: every gradient', () => {
    const r = rng(3);
    const B = 2, T = 4, I = 3, H = 3;
    const lengths = [4, 2];
    for (const make2 of [
      () => new DropoutWrapper(new LSTM({ inputSize: I, units: H, numLayers: 2, bidirectional: true, returnSequences: true, returnState: true, dtype: 'float64', seed: 2 }),
        { inputKeepProb: 0.7, outputKeepProb: 0.8, stateKeepProb: 0.6 }),
      () => new LSTM({ inputSize: I, units: H, numLayers: 2, bidirectional: true, returnSequences: true, returnState: true, dtype: 'float64', seed: 2, dropout: 0.3, recurrentDropout: 0.4 }),
      () => new Bidirectional(new GRU({ inputSize: I, units: H, returnSequences: true, returnState: true, dtype: 'float64', seed: 4, dropout: 0.3, recurrentDropout: 0.3 }), { mergeMode: 'mul' }),
    ]) {
      const layer = make2();
      const x = tensor64(r, [B, T, I]);
      const W = layer.outputWidth;
      const R = uniform64(r, B * T * W);
      const fwd = layer.forward(x, { lengths, training: true, dropoutSeed: 77 });
      const S = fwd.states.map((s) => uniform64(r, s.size));
      const loss = () => {
        layer.markWeightsChanged();
        const o = layer.forward(x, { lengths, training: true, dropoutSeed: 77 });
        return dot(o.output.data, R) + o.states.reduce((a, s, i) => a + dot(s.data, S[i]), 0);
      };
      const g = layer.backward(fwd.run!, Tensor.from(R, fwd.output.shape, 'float64'), { dStates: fwd.states.map((s, i) => Tensor.from(S[i], s.shape, 'float64')) });
      const { rtol, floor } = FINITE_DIFFERENCES;
      assertClose(g.input.data, centralDifferences(x.data as Float64Array, loss), { rtol, floor, label: `${layer.className} dInput` });
      for (const [name, p] of Object.entries(layer.stateDict())) {
        assertClose(g.params[name].data, centralDifferences(p.data as Float64Array, loss), { rtol, floor, label: `${layer.className} d${name}` });
      }
      // The masks really drop something: training and inference differ.
      const inference = layer.forward(x, { lengths });
      assert.ok(inference.output.data.some((v, i) => Math.abs(v - fwd.output.data[i]) > 1e-6), 'dropout changed the training output');
    }
  });

  test('keep rates within 4σ of the setting, variational masks constant over time, per-step masks not', () => {
    const B = 64, T = 12, I = 16, H = 4;
    for (const variational of [false, true]) {
      const keep = 0.7;
      const layer = new DropoutWrapper(new SimpleRNN({ inputSize: I, units: H, returnSequences: true, dtype: 'float64', seed: 1 }), { inputKeepProb: keep, variationalRecurrent: variational, seed: 9 });
      const x = Tensor.from(new Float64Array(B * T * I).fill(1), [B, T, I], 'float64');
      const f = layer.forward(x, { training: true });
      // dInput is zero exactly where the input mask dropped the entry.
      const g = layer.backward(f.run!, Tensor.from(new Float64Array(B * T * H).fill(1), [B, T, H], 'float64'));
      let kept = 0, constant = 0;
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < I; j++) {
          let same = true;
          for (let t = 0; t < T; t++) {
            const on = g.input.data[(b * T + t) * I + j] !== 0;
            if (on) kept++;
            if (on !== (g.input.data[b * T * I + j] !== 0)) same = false;
          }
          if (same) constant++;
        }
      }
      const n = B * T * I;
      const sigma = Math.sqrt(n * keep * (1 - keep) * (variational ? T : 1));
      assert.ok(Math.abs(kept - n * keep) < 4 * sigma, `keep rate ${kept / n} vs ${keep} (variational=${variational})`);
      if (variational) assert.equal(constant, B * I, 'a variational mask is the same at every step');
      else assert.ok(constant < B * I * 0.1, `per-step masks vary over time (${constant} of ${B * I} constant)`);
    }
  });

  test('inference is deterministic and ignores dropout; a seed gives the same masks with 1 and 2 threads', () => {
    const B = 3, T = 7, I = 5, H = 8;
    const x = tensor64(rng(5), [B, T, I]);
    const plain = new LSTM({ inputSize: I, units: H, numLayers: 2, returnSequences: true, seed: 3, dtype: 'float64' });
    const dropped = new LSTM({ inputSize: I, units: H, numLayers: 2, returnSequences: true, seed: 3, dtype: 'float64', dropout: 0.5, recurrentDropout: 0.5 });
    assertBitIdentical(dropped.forward(x).output.data as Float64Array, plain.forward(x).output.data as Float64Array, 'inference equals the layer without dropout');
    const threads = getNumThreads();
    try {
      const out: Float64Array[] = [];
      for (const n of [1, 2]) {
        setNumThreads(n);
        const f = dropped.forward(x, { training: true, dropoutSeed: 123 });
        out.push(f.output.data as Float64Array);
        out.push(dropped.backward(f.run!, f.output).params.weight_ih_l1.data as Float64Array);
      }
      assertBitIdentical(out[2], out[0], 'training output, 2 threads vs 1');
      assertBitIdentical(out[3], out[1], 'gradient, 2 threads vs 1');
    } finally {
      setNumThreads(threads);
    }
  });

  test('keep probabilities and fractions are checked; DropoutWrapper refuses a layer with its own dropout', () => {
    const lstm = () => new LSTM({ inputSize: 2, units: 2 });
    assert.throws(() => new DropoutWrapper(lstm(), { inputKeepProb: 0 }), (e: Error) => e instanceof RangeError && /inputKeepProb must be a keep probability in \(0, 1\]/.test(e.message));
    assert.throws(() => new DropoutWrapper(lstm(), { stateKeepProb: 1.5 }), RangeError);
    assert.throws(() => new DropoutWrapper(lstm(), { keepProb: 0.5 } as never), (e: Error) => e instanceof TypeError && /keepProb: unknown option/.test(e.message));
    assert.throws(() => new LSTM({ inputSize: 2, units: 2, dropout: 1 }), (e: Error) => e instanceof RangeError && /options\.dropout: expected a fraction in \[0, 1\)/.test(e.message));
    assert.throws(() => new DropoutWrapper(new LSTM({ inputSize: 2, units: 2, dropout: 0.1 })), TypeError);
  });
});

describe('runs, options and wrappers', () => {
  test('backward on a run made before a weight update is an Error saying it is stale', () => {
    const layer = make('gru', { inputSize: 2, units: 3, numLayers: 2 });
    const x = tensor64(rng(1), [2, 3, 2]);
    const f = layer.forward(x, { training: true });
    layer.loadStateDict(layer.stateDict());
    assert.throws(() => layer.backward(f.run!, f.output), (e: Error) => e.constructor === Error && /stale run/.test(e.message));
    const g = layer.forward(x, { training: true });
    g.run!.release();
    assert.throws(() => layer.backward(g.run!, g.output), (e: Error) => /released/.test(e.message));
  });

  test('unknown and inconsistent options are TypeErrors naming them', () => {
    assert.throws(() => new LSTM({ inputSize: 2, units: 2, numLayer: 2 } as never), (e: Error) => e instanceof TypeError && /options\.numLayer: unknown option for LSTM; valid options: .*numLayers/.test(e.message));
    assert.throws(() => new GRU({ inputSize: 2, units: 2, bidirectional: true, goBackwards: true }), TypeError);
    assert.throws(() => new Bidirectional(new LSTM({ inputSize: 2, units: 2 }), { merge: 'sum' } as never), (e: Error) => e instanceof TypeError && /options\.merge: unknown option/.test(e.message));
    assert.throws(() => new Bidirectional(new LSTM({ inputSize: 2, units: 2 }), { mergeMode: 'max' as never }), TypeError);
    assert.throws(() => new Bidirectional(new LSTM({ inputSize: 2, units: 2, numLayers: 2 })), TypeError);
    assert.throws(() => new Bidirectional(new LSTM({ inputSize: 2, units: 2 }), { backwardLayer: new LSTM({ inputSize: 2, units: 3 }) }), TypeError);
    const x = Tensor.from(new Float32Array(12), [2, 3, 2]);
    assert.throws(() => new LSTM({ inputSize: 2, units: 2 }).forward(x, { lenghts: [1, 2] } as never), (e: Error) => e instanceof TypeError && /options\.lenghts: unknown option/.test(e.message));
  });

  test('Bidirectional equals a bidirectional layer with the same weights; states in Keras order', () => {
    const x = tensor64(rng(8), [3, 4, 2]);
    const bi = new Bidirectional(new LSTM({ inputSize: 2, units: 3, returnSequences: true, returnState: true, dtype: 'float64', seed: 1 }));
    const stack = new LSTM({ inputSize: 2, units: 3, bidirectional: true, returnSequences: true, returnState: true, dtype: 'float64' });
    stack.loadStateDict(bi.stateDict());
    const a = bi.forward(x), b = stack.forward(x);
    assertBitIdentical(a.output.data as Float64Array, b.output.data as Float64Array, 'output');
    assert.equal(a.states.length, 4);
    assertBitIdentical(a.states[0].data as Float64Array, b.states[0].data.slice(0, 9) as Float64Array, 'h_fw');
    assertBitIdentical(a.states[2].data as Float64Array, b.states[0].data.slice(9) as Float64Array, 'h_bw');
    assertBitIdentical(a.states[3].data as Float64Array, b.states[1].data.slice(9) as Float64Array, 'c_bw');
  });

  test('forwardAsync and backwardAsync equal the sync forms on a stack with lengths and dropout', async () => {
    const layer = new LSTM({ inputSize: 3, units: 4, numLayers: 2, bidirectional: true, returnSequences: true, seed: 1, dropout: 0.2 });
    const x = Tensor.from(Float32Array.from(uniform64(rng(2), 2 * 5 * 3)), [2, 5, 3]);
    const opts = { lengths: [5, 3], training: true, dropoutSeed: 4 };
    const s = layer.forward(x, opts), a = await layer.forwardAsync(x, opts);
    assertBitIdentical(a.output.data as Float32Array, s.output.data as Float32Array, 'output');
    const gs = layer.backward(s.run!, s.output), ga = await layer.backwardAsync(a.run!, a.output);
    for (const k of Object.keys(gs.params)) assertBitIdentical(ga.params[k].data as Float32Array, gs.params[k].data as Float32Array, k);
  });
});
