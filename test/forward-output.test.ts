/**
 * forward(x, { output }): the output written into the caller's tensor, for sync, async and
 * training calls, one- and two-direction layers and stacks, both dtypes and both output forms
 * (returnSequences or the last output), bit for bit what a call without it returns; the tensor is
 * the result's `output`. Refused with a TypeError/RangeError that names options.output: a wrong
 * shape or dtype, not a Tensor, memory shared with the input or an initial state, mergeMode 'none'.
 * (The native surface's own checks of call.y, transfers during an async call included, run in a
 * child process: test/helpers/stack-native-body.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Bidirectional, GRU, LSTM, SimpleRNN, Tensor, type DType } from '../lib/index.js';

const B = 3, T = 4, I = 5, H = 6;
type Make = (dtype: DType, returnSequences: boolean) => LSTM | GRU | SimpleRNN | Bidirectional;
const makes: [string, Make][] = [
  ['LSTM', (dtype, returnSequences) => new LSTM({ inputSize: I, units: H, returnSequences, seed: 1, dtype })],
  ['GRU', (dtype, returnSequences) => new GRU({ inputSize: I, units: H, returnSequences, seed: 2, dtype })],
  ['SimpleRNN', (dtype, returnSequences) => new SimpleRNN({ inputSize: I, units: H, returnSequences, seed: 3, dtype })],
  ['2-layer bidirectional LSTM', (dtype, returnSequences) => new LSTM({ inputSize: I, units: H, numLayers: 2, bidirectional: true, returnSequences, seed: 4, dtype })],
  ['Bidirectional(GRU), sum', (dtype, returnSequences) => new Bidirectional(new GRU({ inputSize: I, units: H, returnSequences, seed: 5, dtype }), { mergeMode: 'sum' })],
];

function input(dtype: DType): Tensor {
  const n = B * T * I;
  const v = Array.from({ length: n }, (_, k) => Math.sin(0.7 * k));
  return Tensor.from(dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v), [B, T, I]);
}
const zerosLike = (t: Tensor) => Tensor.from(t.dtype === 'float64' ? new Float64Array(t.size).fill(7) : new Float32Array(t.size).fill(7), t.shape as number[]);

for (const [name, make] of makes) {
  test(`forward(x, { output }) writes the same bits into the given tensor: ${name}`, async () => {
    for (const dtype of ['float32', 'float64'] as const) {
      for (const returnSequences of [true, false]) {
        const layer = make(dtype, returnSequences);
        const x = input(dtype);
        const want = layer.forward(x).output;
        const what = `${dtype}, returnSequences ${returnSequences}`;
        const out = zerosLike(want);
        const r = layer.forward(x, { output: out });
        assert.equal(r.output, out, `${what}: the result's output is the given tensor`);
        assert.deepEqual(out.data, want.data, `${what}: sync`);
        const outA = zerosLike(want);
        const ra = await layer.forwardAsync(x, { output: outA });
        assert.equal(ra.output, outA);
        assert.deepEqual(outA.data, want.data, `${what}: async`);
        const outT = zerosLike(want);
        const rt = layer.forward(x, { training: true, output: outT });
        assert.equal(rt.output, outT);
        assert.deepEqual(outT.data, want.data, `${what}: training`);
        rt.run!.release();
        // The same tensor again: overwritten, not accumulated.
        layer.forward(x, { output: out });
        assert.deepEqual(out.data, want.data, `${what}: a second call into the same tensor`);
      }
    }
  });
}

test('forward(x, { output }) refuses a wrong output with a TypeError or RangeError naming options.output', async () => {
  const layer = new LSTM({ inputSize: I, units: H, returnSequences: true, seed: 1 });
  const x = input('float32');
  const cases: [string, unknown, RegExp][] = [
    ['wrong shape', Tensor.from(new Float32Array(B * T * H), [B, T * H]), /options\.output: expected rank 3 with shape \[batch=3, steps=4, units=6\]/],
    ['wrong dtype', Tensor.from(new Float64Array(B * T * H), [B, T, H]), /options\.output: expected dtype float32/],
    ['a typed array', new Float32Array(B * T * H), /options\.output: expected a Tensor/],
  ];
  for (const [what, output, message] of cases) {
    assert.throws(() => layer.forward(x, { output: output as Tensor }), (e: unknown) => (e instanceof TypeError || e instanceof RangeError) && message.test((e as Error).message), what);
    await assert.rejects(layer.forwardAsync(x, { output: output as Tensor }), (e: unknown) => (e instanceof TypeError || e instanceof RangeError) && message.test((e as Error).message), `${what} (async)`);
  }
  // Memory shared with the input or an initial state.
  const square = new LSTM({ inputSize: H, units: H, returnSequences: true, seed: 1 });
  const xs = Tensor.from(new Float32Array(B * T * H), [B, T, H]);
  assert.throws(() => square.forward(xs, { output: xs }), /options\.output shares memory with the input/);
  const buf = new Float32Array(B * T * H + B * H);
  const h0 = Tensor.from(buf.subarray(0, B * H), [B, H]);
  const out = Tensor.from(buf.subarray(B * H - 1, B * H - 1 + B * T * H), [B, T, H]);
  assert.throws(() => square.forward(xs, { initialState: [h0, Tensor.from(new Float32Array(B * H), [B, H])], output: out }), /options\.output shares memory with the input or an initial state/);
  // mergeMode 'none' returns two outputs.
  const none = new Bidirectional(new GRU({ inputSize: I, units: H, returnSequences: true, seed: 5 }), { mergeMode: 'none' });
  assert.throws(() => none.forward(x, { output: Tensor.from(new Float32Array(B * T * 2 * H), [B, T, 2 * H]) }), /options\.output cannot be given with mergeMode 'none'/);
});
